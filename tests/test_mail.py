"""MAIL: oracle, estimators, BC, MAIL-BRO, MURMAIL, experiment and command line."""

import math
from pathlib import Path

import numpy as np
import pytest

from agents import tabular
from envs import games
from mail import ExpertOracle, TabularDemonstrations, bc, cli, expert_dataset, experiment, mail_bro, murmail
from mail.mail_bro import mirror_descent_update
from mail.murmail import default_horizon, plan_optimistic, queries_per_iteration, squared_error_estimate


# ------------------------------------------------------------------ oracle
def test_oracle_samples_the_expert_and_counts():
    policy = np.array([[0.2, 0.0, 0.8], [0.0, 1.0, 0.0]])
    oracle = ExpertOracle([policy], seed=0)
    actions = oracle.query_many(0, np.zeros(40_000, dtype=int))
    frequencies = np.bincount(actions, minlength=3) / len(actions)
    assert frequencies[1] == 0.0  # zero-probability actions are never drawn
    assert abs(frequencies[0] - 0.2) < 4 * math.sqrt(0.2 * 0.8 / len(actions))
    assert oracle.query(0, 1) == 1
    assert oracle.queries.tolist() == [40_001]


@pytest.mark.parametrize(
    "policies, message",
    [
        ([np.array([[0.5, 0.6]])], r"policies\[0\]\[0, :\] sums to 1.1"),
        ([np.array([0.5, 0.5])], r"policies\[0\] must be a non-empty \(S, A\) array"),
        ([np.full((2, 2), 0.5), np.full((3, 2), 0.5)], "disagree on the number of states"),
    ],
)
def test_oracle_rejects_bad_policies(policies, message):
    with pytest.raises(ValueError, match=message):
        ExpertOracle(policies)


def test_algorithms_reject_an_oracle_for_another_game():
    game = games.lower_bound_game()
    oracle = ExpertOracle(tabular.uniform_policies(games.random_game(4, 3, seed=0)))
    for run in (lambda: mail_bro(game, oracle, 3), lambda: murmail(game, oracle, 3), lambda: bc(game, oracle, 10)):
        with pytest.raises(ValueError, match="oracle's expert is for a game with 4 states"):
            run()


@pytest.mark.parametrize("bad", [-1, 2.5])
def test_negative_or_fractional_budgets_are_rejected(bad):
    game = games.lower_bound_game()
    oracle = ExpertOracle(games.lower_bound_expert(0.5))
    with pytest.raises(ValueError, match="num_iterations must be an integer >= 0"):
        mail_bro(game, oracle, bad)
    with pytest.raises(ValueError, match="num_iterations must be an integer >= 0"):
        murmail(game, oracle, bad)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 0"):
        bc(game, oracle, bad)


# -------------------------------------------------------------- estimators
def test_two_query_estimator_is_unbiased():
    rng = np.random.default_rng(0)
    expert = np.array([0.6, 0.3, 0.1])
    learner = np.array([0.2, 0.5, 0.3])
    exact = float(np.sum((expert - learner) ** 2))
    n = 200_000
    first = rng.choice(3, size=n, p=expert)
    second = rng.choice(3, size=n, p=expert)
    estimates = squared_error_estimate(first, second, np.tile(learner, (n, 1)))
    standard_error = estimates.std() / math.sqrt(n)
    assert abs(estimates.mean() - exact) < 4 * standard_error
    # A single pair is not the plug-in error: the estimator can be negative.
    assert estimates.min() < 0


def test_mirror_descent_update_hand_computed():
    policy = np.array([[0.5, 0.5], [0.25, 0.75]])
    mirror_descent_update(policy, np.array([0, 0]), np.array([0, 1]), 2.0)
    # Gradient at state 0: (pi - e_0)/2 + (pi - e_1)/2 = [0, 0]: no change. State 1 untouched.
    np.testing.assert_allclose(policy, [[0.5, 0.5], [0.25, 0.75]])
    mirror_descent_update(policy, np.array([1]), np.array([0]), 1.0)
    weights = np.array([0.25 * math.exp(0.75), 0.75 * math.exp(-0.75)])
    np.testing.assert_allclose(policy[1], weights / weights.sum())


def test_optimistic_planning_recovers_the_optimal_policy_with_plenty_of_data():
    mdp = games.random_game(6, 3, num_players=1, zero_sum=False, seed=4)
    transitions = mdp.transitions
    reward = np.random.default_rng(1).uniform(0, 2, size=6)
    counts = transitions * 1e8
    optimal, _, _ = tabular.solve_mdp(transitions, np.repeat(reward[:, None], 3, axis=1), mdp.gamma)
    greedy = plan_optimistic(counts, reward * 1e8, np.full(6, 1e8), mdp.gamma, 400, 1.0, 1.0)
    np.testing.assert_array_equal(greedy, optimal)


# --------------------------------------------------------------------- BC
@pytest.mark.parametrize("default, expected", [("first", 12.15), ("uniform", 1.35)])
def test_bc_at_infinite_concentrability_stays_flat(default, expected):
    # Published in shared/spec/mail.md: c = 0.5, gamma = 0.9, expert never visits s1.
    game = games.lower_bound_game()
    expert = games.lower_bound_expert(1.0)
    for n in (10, 1000, 20_000):
        result = bc(game, expert_dataset(game, expert, n, seed=n), default=default)
        assert result.history.gap_last[-1] == pytest.approx(expected, abs=1e-9)


def test_bc_estimator_counts():
    game = games.random_game(3, (2, 3), seed=0)
    data = TabularDemonstrations(np.array([0, 0, 0, 2]), np.array([[0, 2], [1, 2], [0, 0], [1, 1]]))
    result = bc(game, data, default="first")
    np.testing.assert_allclose(result.last[0], [[2 / 3, 1 / 3], [1, 0], [0, 1]])
    np.testing.assert_allclose(result.last[1], [[1 / 3, 0, 2 / 3], [1, 0, 0], [0, 1, 0]])
    assert result.history.expert_queries == [4]
    with pytest.raises(ValueError, match="actions of player 1 must lie in"):
        bc(game, TabularDemonstrations(np.array([0]), np.array([[0, 3]])))


def test_bc_gap_falls_with_finite_concentrability():
    game = games.lower_bound_game()
    expert = games.lower_bound_expert(0.5)
    gaps = {n: np.mean([bc(game, expert_dataset(game, expert, n, seed=s)).history.gap_last[-1] for s in range(5)])
            for n in (10, 3000)}
    assert gaps[3000] < 0.3 * gaps[10]


def test_bc_from_an_oracle_counts_every_rollout_query():
    game = games.lower_bound_game()
    oracle = ExpertOracle(games.lower_bound_expert(0.5), seed=0)
    result = bc(game, oracle, 50, sampling="trajectory", seed=0)
    assert result.history.expert_queries[-1] == oracle.total_queries == 2 * 50
    result = bc(game, oracle, 50, sampling="iid", seed=0)
    assert oracle.total_queries > 200  # iid rollouts query every step they skip
    assert result.history.expert_queries[-1] == oracle.total_queries - 100


# --------------------------------------------------------- interactive
def mean_final_gap(run, seeds=range(5)):
    return np.mean([run(seed).history.gap_last[-1] for seed in seeds])


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_mail_bro_gap_shrinks_with_queries(weight):
    game = games.lower_bound_game()
    expert = games.lower_bound_expert(weight)
    small = mean_final_gap(lambda s: mail_bro(game, ExpertOracle(expert, seed=s), 25, seed=s))
    large = mean_final_gap(lambda s: mail_bro(game, ExpertOracle(expert, seed=s), 2500, seed=s))
    assert large < 0.5 * small
    assert large < 0.3


@pytest.mark.parametrize("inner", ["ucbvi", "exact"])
def test_murmail_gap_shrinks_with_queries(inner):
    game = games.lower_bound_game()
    expert = games.lower_bound_expert(1.0)
    uniform_gap = 1.35
    large = mean_final_gap(
        lambda s: murmail(game, ExpertOracle(expert, seed=s), 300 if inner == "exact" else 60, inner=inner, seed=s)
    )
    assert large < 0.7 * uniform_gap


def test_mail_bro_learns_a_random_zero_sum_equilibrium():
    game = games.random_game(3, 2, seed=5)
    expert = tabular.zero_sum_equilibrium(game).policies
    start = tabular.nash_gap(game, tabular.uniform_policies(game)).total
    large = mean_final_gap(lambda s: mail_bro(game, ExpertOracle(expert, seed=s), 3000, seed=s), seeds=range(3))
    assert large < 0.25 * start


@pytest.mark.parametrize("algorithm", ["mail-bro", "murmail-ucbvi", "murmail-exact"])
def test_query_counts_match_history(algorithm):
    game = games.lower_bound_game()
    oracle = ExpertOracle(games.lower_bound_expert(0.5), seed=0)
    if algorithm == "mail-bro":
        result = mail_bro(game, oracle, 40, batch_size=3, seed=0)
        expected = 40 * 2 * 3
        assert result.history.oracle_calls[-1] == 80
    else:
        inner = algorithm.split("-")[1]
        # inner_episodes is UCBVI's: the exact variant refuses it.
        options = dict(inner_episodes=2) if inner == "ucbvi" else dict(pairs_per_state=2)
        result = murmail(game, oracle, 4, inner=inner, seed=0, **options)
        expected = 4 * queries_per_iteration(game, inner, **options)
        assert result.history.simulator_steps[-1] > 0
    assert result.history.expert_queries[-1] == oracle.total_queries == expected
    assert oracle.queries[0] == oracle.queries[1] == expected // 2
    assert result.history.iteration[0] == 0 and result.history.expert_queries[0] == 0


def test_three_player_general_sum_game():
    game = games.random_game(3, 2, num_players=3, zero_sum=False, seed=1)
    expert = [np.eye(2)[np.array([0, 1, 1])], np.eye(2)[np.array([1, 0, 0])], np.eye(2)[np.array([0, 0, 1])]]
    oracle = ExpertOracle(expert, seed=0)
    result = mail_bro(game, oracle, 1500, seed=0)
    assert oracle.queries.tolist() == [1500, 1500, 1500]
    # Imitation: the learned policies move to the (deterministic) expert.
    for learned, target in zip(result.last, expert):
        assert np.abs(learned - target).max() < 0.2
    murmail_oracle = ExpertOracle(expert, seed=0)
    murmail(game, murmail_oracle, 3, inner="exact", seed=0)
    assert murmail_oracle.total_queries == 3 * queries_per_iteration(game, "exact")


def test_reported_policies_are_valid_and_sampled_is_an_iterate():
    game = games.lower_bound_game()
    result = mail_bro(game, ExpertOracle(games.lower_bound_expert(0.5), seed=0), 30, seed=0)
    for profile in (result.last, result.average, result.sampled):
        tabular.check_policies(game, profile)
    assert result.policies is result.sampled


def test_average_and_sample_are_over_the_played_iterates_only():
    """After K updates the played iterates are pi_1 (the start) .. pi_K; pi_{K+1} is only the last."""
    from mail.loop import IterateTracker

    iterates = [[np.array([[k, 1.0 - k]])] for k in (0.0, 0.25, 0.5, 1.0)]  # pi_1 .. pi_4, K = 3 updates
    draws = np.zeros(4)
    for seed in range(3000):
        tracker = IterateTracker(iterates[0], np.random.default_rng(seed))
        for update in iterates[1:]:
            tracker.add(update)
        draws[[0.0, 0.25, 0.5, 1.0].index(tracker.sampled[0][0, 0])] += 1
    np.testing.assert_allclose(tracker.average[0], [[0.25, 0.75]])  # (0 + 0.25 + 0.5) / 3
    np.testing.assert_array_equal(tracker.last[0], [[1.0, 0.0]])
    # Uniform over pi_1, pi_2, pi_3 (indices 0, 1, 2), never pi_4.
    assert draws[3] == 0 and np.all(np.abs(draws[:3] / 3000 - 1 / 3) < 4.5 * np.sqrt(2 / 9 / 3000))
    fresh = IterateTracker(iterates[0], np.random.default_rng(0))  # nothing played: all three are the start
    assert fresh.count == 0 and fresh.average[0] is fresh.sampled[0] is fresh.last[0]


def test_a_random_game_does_not_decide_the_oracle_s_answers():
    """One default_rng(seed) for the game and the oracle tied the game's Dirichlet draws to the
    oracle's first uniforms (correlation 0.55 over these seeds); the game now has its own stream."""
    first_entry = [experiment.random_zero_sum_game(seed).joint_transitions[0, 0, 0] for seed in range(300)]
    oracle_first_uniform = [np.random.default_rng(seed).random() for seed in range(300)]  # ExpertOracle's stream
    assert abs(np.corrcoef(first_entry, oracle_first_uniform)[0, 1]) < 0.2  # sd of the estimate: about 0.06


# ------------------------------------------------------------ experiment
@pytest.mark.parametrize("target", [2.0, 1e3, 1e4])
def test_lower_bound_weight_hits_the_computed_concentrability(target):
    weight = experiment.lower_bound_weight(target)
    # Closed form for this family: C = max(1 / (1 - lambda^2), 1 / lambda).
    assert max(1 / (1 - weight**2), 1 / weight) == pytest.approx(target, rel=1e-6)
    assert experiment.lower_bound_weight(math.inf) == 1.0


def test_cli_run_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--game", "lower-bound", "--concentrability", "1e3", "--queries", "2000",
                     "--points", "3", "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    rows = experiment.read_csv(out / cli.RESULTS_CSV)
    assert {row["algo"] for row in rows} == {"bc-uniform", "bc-first", "mail-bro", "murmail", "mail-warm"}
    assert {row["budget"] for row in rows} == {10, 141, 2000}
    assert all(row["expert_queries"] <= row["budget"] for row in rows)
    assert (out / cli.FIGURE).stat().st_size > 10_000
    assert "lower-bound, C = 1000" in capsys.readouterr().out
    assert cli.main(["plot", str(out), "--policy", "last"]) == 0
    assert (out / "mail_nash_gap_last.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--out", "x", "--algo", "dagger"], "invalid choice: 'dagger'"),
        (["run", "--out", "x", "--queries", "-5"], "must be an integer >= 10, got -5"),
        (["run", "--out", "x", "--concentrability", "0.5"], "must be at least 1.618034 (or inf), got 0.5"),
        (["run", "--out", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_cli_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_plot_reports_a_missing_or_corrupt_directory(tmp_path):
    with pytest.raises(SystemExit, match="not found"):
        cli.main(["plot", str(tmp_path)])
    (tmp_path / cli.RESULTS_CSV).write_text("game,algo\nx,y\n")
    with pytest.raises(SystemExit, match="missing columns"):
        cli.main(["plot", str(tmp_path)])


# ------------------------------------------------------- MURMAIL's default horizon
@pytest.mark.parametrize("gamma, horizon", [(0.9, 30), (0.99, 300), (0.8, 15), (0.95, 60), (0.5, 6), (0.0, 3)])
def test_default_horizon_is_the_exact_ceiling(gamma, horizon):
    # ceil(3 / (1 - gamma)) by hand; floating point gives 31 at 0.9 (3 / 0.09999999999999998) and 16 at 0.8.
    assert default_horizon(gamma) == horizon


def test_murmail_iteration_costs_602_queries_on_the_lower_bound_game():
    # Two players, each 2 queries per step of 5 UCBVI episodes of 30 steps, plus the update's query.
    game = games.lower_bound_game()
    assert queries_per_iteration(game) == 2 * (2 * 5 * 30 + 1) == 602
    oracle = ExpertOracle(games.lower_bound_expert(0.5), seed=0)
    result = murmail(game, oracle, 1, seed=0, num_log_points=2)
    assert oracle.total_queries == result.history.expert_queries[-1] == 602
    assert result.history.simulator_steps[-1] >= 2 * 5 * 30  # the episodes, plus the update's rollout
    # The README quotes the same number.
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "each iteration costs 602 queries here" in readme


# ------------------------------------------- the expert family's reachable concentrability
def test_the_family_minimum_is_the_golden_ratio_by_the_exact_solver():
    game = games.lower_bound_game()
    weights = np.linspace(0.05, 0.95, 91)
    computed = [tabular.concentrability(game, games.lower_bound_expert(w)).single_policy for w in weights]
    minimum = games.LOWER_BOUND_MIN_CONCENTRABILITY
    assert min(computed) >= minimum - 1e-9
    at_minimum = tabular.concentrability(game, games.lower_bound_expert(games.LOWER_BOUND_MIN_WEIGHT))
    assert at_minimum.single_policy == pytest.approx(minimum, rel=1e-9) == (1 + 5**0.5) / 2
    assert at_minimum.all_policy == pytest.approx(minimum, rel=1e-9)


def test_concentrability_below_the_minimum_is_refused_and_not_offered(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "(> 1, or inf)" not in help_text and "at least 1.6180" in " ".join(help_text.split())
    for target in (1.0, 1.5, 1.61):
        with pytest.raises(ValueError, match=r"concentrability must be at least 1.618034 \(or inf\), got .*golden"):
            experiment.GridConfig(concentrability=target)
        with pytest.raises(ValueError, match="target must be at least 1.618034"):
            experiment.lower_bound_weight(target)


@pytest.mark.parametrize("target", [1.6181, 1.62, 1.624])
def test_targets_just_above_the_minimum_are_reached(target):
    # Below C(0.62) = 1.6244 the old search bracket [0.62, 1) refused these though the family reaches them.
    weight = experiment.lower_bound_weight(target)
    game = games.lower_bound_game()
    assert tabular.concentrability(game, games.lower_bound_expert(weight)).single_policy == pytest.approx(target, rel=1e-9)
    assert weight >= games.LOWER_BOUND_MIN_WEIGHT
