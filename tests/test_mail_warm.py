"""MAIL-WARM and the grid race: the game against the spec's published numbers, query counting,
coverage of the states a deviator reaches, the planner's closed forms and the Nash gap."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from agents import tabular
from envs import games
from mail import ExpertOracle, bc, cli, expert_dataset, experiment, mail_warm
from mail.mail_warm import default_horizon, exploration_q, queries_per_episode_round

mail_warm_module = sys.modules["mail.mail_warm"]
ROOT = Path(__file__).parents[1]

GRID = games.grid_race()
GRID_EXPERT = tabular.zero_sum_equilibrium(GRID).policies


def grid_state(p1: tuple[int, int], p2: tuple[int, int]) -> int:
    """The documented index of the state with player 1 on ``p1`` and player 2 on ``p2`` (3 x 3 grid)."""
    a, b = 3 * p1[0] + p1[1], 3 * p2[0] + p2[1]
    return a * 8 + (b if b < a else b - 1)


UP, DOWN, LEFT, RIGHT = range(4)


def next_state(state: int, a: int, b: int) -> int:
    row = GRID.transitions[state, a, b]
    assert row.max() == 1.0  # deterministic moves
    return int(row.argmax())


# ------------------------------------------------------------------ the grid race
def test_grid_race_moves_walls_and_collisions_by_hand():
    start = grid_state((1, 0), (2, 1))
    assert GRID.num_states == 72 and GRID.initial[start] == 1.0
    # player 1 right to (1, 1) while player 2 moves left to (2, 0)
    assert next_state(start, RIGHT, LEFT) == grid_state((1, 1), (2, 0))
    # walls: player 1 left from column 0, player 2 down from row 2: nobody moves
    assert next_state(start, LEFT, DOWN) == start
    # both into (1, 1): both stay
    assert next_state(start, RIGHT, UP) == start
    # a swap: (1, 0) <-> (1, 1) is refused for both
    side_by_side = grid_state((1, 0), (1, 1))
    assert next_state(side_by_side, RIGHT, LEFT) == side_by_side
    # into the cell the other is leaving: allowed
    assert next_state(side_by_side, RIGHT, RIGHT) == grid_state((1, 1), (1, 2))
    # the goal (0, 2) absorbs and pays +1 / -1 per step to player 1
    won, lost = grid_state((0, 2), (2, 2)), grid_state((1, 1), (0, 2))
    for state, reward in ((won, 1.0), (lost, -1.0)):
        assert np.all(GRID.transitions[state, :, :, state] == 1.0)
        assert np.all(GRID.rewards[0, state] == reward) and np.all(GRID.rewards[1, state] == -reward)


def test_grid_race_matches_the_spec_numbers():
    """shared/spec/mail-warm.md: value 0 at the start, the equilibrium visits 3 of the 72 states,
    BC with unlimited self-play data has Nash gap 13.85 ("first" default) and 9.15 ("uniform")."""
    equilibrium = tabular.zero_sum_equilibrium(GRID)
    assert abs(GRID.initial @ equilibrium.values) < 1e-9
    visited = tabular.occupancy(GRID, equilibrium.policies) > 0
    assert visited.sum() == 3
    for default, published in (("first", 13.85), ("uniform", 9.15)):
        fallback = np.eye(4)[0] if default == "first" else np.full(4, 0.25)
        clone = [np.where(visited[:, None], policy, fallback) for policy in equilibrium.policies]
        assert round(tabular.nash_gap(GRID, clone).total, 2) == published
        data = expert_dataset(GRID, equilibrium.policies, 20_000, seed=0)
        assert round(bc(GRID, data, default=default).history.gap_last[-1], 2) == published


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=1), "size must be at least 2"),
    (dict(goal=(3, 0)), r"goal must be a \(row, column\) cell of the 3 x 3 grid"),
    (dict(goal=5), r"goal must be a \(row, column\) cell"),
    (dict(goal=(True, False)), r"goal must be a \(row, column\) cell"),
    (dict(starts=((1, 0),)), "starts must be the two players' "),
    (dict(starts=((1, 0), (1, 0))), "starts must be two distinct cells off the goal"),
    (dict(starts=((0, 2), (1, 0))), "starts must be two distinct cells off the goal"),
    (dict(gamma=1.0), "gamma"),
])
def test_grid_race_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        games.grid_race(**kwargs)


# ------------------------------------------------------------------ the explorer's planner
@pytest.mark.parametrize("gamma, horizon", [(0.9, 10), (0.99, 100), (0.8, 5), (0.5, 2)])
def test_default_horizon_is_the_exact_ceiling_of_the_effective_horizon(gamma, horizon):
    assert default_horizon(gamma) == horizon


def test_untried_pairs_are_worth_the_horizon():
    q = exploration_q(np.zeros((3, 2, 3)), 10.0, 0.9, 10)
    assert np.all(q == 10.0)


@pytest.mark.parametrize("visits", [1, 4, 25, 400])
def test_planner_closed_forms_on_one_state(visits):
    """One state looping on itself. With action 1 untried, V = H and
    Q(s, 0) = u / H + gamma H; with both tried N times, Q is the bonus summed over H sweeps,
    u / H (1 - gamma^H) / (1 - gamma)."""
    beta, gamma, horizon = 10.0, 0.9, 10
    bonus = min(beta / math.sqrt(visits), horizon) / horizon
    counts = np.zeros((1, 2, 1))
    counts[0, 0, 0] = visits
    q = exploration_q(counts, beta, gamma, horizon)
    assert q[0, 1] == horizon
    assert q[0, 0] == pytest.approx(bonus + gamma * horizon, rel=1e-12)
    counts[0, 1, 0] = visits
    q = exploration_q(counts, beta, gamma, horizon)
    assert q[0] == pytest.approx([bonus * (1 - gamma**horizon) / (1 - gamma)] * 2, rel=1e-12)


# ------------------------------------------------------------------ queries and coverage
class RecordingOracle(ExpertOracle):
    """An expert oracle that also remembers where it was asked and what it answered there."""

    def __init__(self, policies, seed=None):
        super().__init__(policies, seed)
        self.asked: list[tuple[int, int]] = []
        self.answers: list[np.ndarray] = []

    def query_many(self, player, states):
        states = np.asarray(states).ravel()
        self.asked += [(int(player), int(s)) for s in states]
        return super().query_many(player, states)

    def query_all(self, state):
        self.asked += [(player, int(state)) for player in range(self.num_players)]
        self.answers.append(super().query_all(state))
        return self.answers[-1].copy()


@pytest.mark.parametrize("episodes", [0, 1, 3])
def test_every_visited_state_costs_one_query_per_player(episodes):
    oracle = RecordingOracle(GRID_EXPERT, seed=0)
    result = mail_warm(GRID, oracle, episodes, seed=0)
    horizon = default_horizon(GRID.gamma)
    steps = 2 * episodes * horizon  # one episode per deviator per round
    assert result.history.simulator_steps[-1] == steps
    assert oracle.total_queries == result.history.expert_queries[-1] == 2 * steps
    assert oracle.total_queries == episodes * queries_per_episode_round(GRID)
    # the queries are the states of H-step episodes: each starts where rho_0 does, and each next
    # state follows from the previous one with the non-deviating player playing its answer
    states = np.array([s for _, s in oracle.asked])[::2].reshape(-1, horizon) if steps else np.zeros((0, horizon))
    assert len(states) == 2 * episodes
    for episode, visited in enumerate(states.astype(int)):
        deviator = episode % 2  # round robin
        assert GRID.initial[visited[0]] > 0
        for t, (state, following) in enumerate(zip(visited, visited[1:])):
            answer = oracle.answers[episode * horizon + t][1 - deviator]
            moves = GRID.transitions[state, :, answer] if deviator == 0 else GRID.transitions[state, answer, :]
            assert moves[:, following].max() > 0


def reachable_by_one_deviator(game, expert):
    """Brute force: states some single player's deviation can reach while the other follows the expert."""
    reached = set(np.flatnonzero(game.initial > 0))
    frontier = list(reached)
    while frontier:
        s = frontier.pop()
        for deviator in range(2):
            follower = 1 - deviator
            for a_dev in range(game.num_actions[deviator]):
                for a_fol in np.flatnonzero(expert[follower][s] > 0):
                    joint = (a_dev, a_fol) if deviator == 0 else (a_fol, a_dev)
                    for t in np.flatnonzero(game.transitions[(s, *joint)] > 0):
                        if int(t) not in reached:
                            reached.add(int(t))
                            frontier.append(int(t))
    return reached


def test_exploration_reaches_every_state_a_deviator_can_where_self_play_cannot():
    """The lower-bound game at C = inf: the expert only plays s0 -> s2 -> s3; a deviator also
    reaches s1 and Cp (never X1, X2, which need both to deviate)."""
    game, expert = games.lower_bound_game(), games.lower_bound_expert(1.0)
    reachable = reachable_by_one_deviator(game, expert)
    assert reachable == {games.S0, games.S1, games.S2, games.S3, games.CP}
    oracle = RecordingOracle(expert, seed=1)
    result = mail_warm(game, oracle, 3, seed=1)
    assert {s for _, s in oracle.asked} == reachable
    self_play = expert_dataset(game, expert, 10_000, seed=1)
    assert set(self_play.states.tolist()) == {games.S0, games.S2, games.S3}
    # knowing the expert wherever a deviator goes is knowing enough: the gap is the expert's, 0
    assert result.history.gap_last[-1] < 1e-9
    assert bc(game, self_play).history.gap_last[-1] > 1.0


def test_grid_race_gap_falls_to_the_experts_where_bc_stays_flat():
    """Once every state a deviator can reach is queried, the clone equals the (deterministic
    there) expert on them and its Nash gap is the expert's (about 0); BC stays at 9.15."""
    reachable = sorted(reachable_by_one_deviator(GRID, GRID_EXPERT))
    assert all(np.isin(policy[reachable], (0.0, 1.0)).all() for policy in GRID_EXPERT)
    for seed in range(3):
        result = mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=seed), 40, seed=seed, num_log_points=4)
        gaps = result.history.gap_last
        assert gaps[0] > 9.0 and gaps[-1] < 1e-6 and result.history.expert_queries[-1] == 1600
    data = expert_dataset(GRID, GRID_EXPERT, 1600, seed=0)
    assert bc(GRID, data).history.gap_last[-1] > 9.0


def test_runs_are_reproducible_and_profiles_valid():
    first = mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=3), 4, seed=3)
    second = mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=3), 4, seed=3)
    assert first.history.gap_last == second.history.gap_last
    for a, b in zip(first.policies, second.policies):
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.allclose(np.asarray(a).sum(axis=1), 1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_episodes=-1), "num_episodes"),
    (dict(num_episodes=2.5), "num_episodes"),
    (dict(bonus_scale=0.0), "bonus_scale"),
    (dict(horizon=0), "horizon"),
    (dict(default="last"), "default"),
])
def test_bad_arguments_are_named(kwargs, message):
    arguments = dict(num_episodes=1) | kwargs
    with pytest.raises(ValueError, match=message):
        mail_warm(GRID, ExpertOracle(GRID_EXPERT, seed=0), **arguments)


def test_an_oracle_for_another_game_is_refused():
    with pytest.raises(ValueError, match="the oracle's expert is for a game with 7 states"):
        mail_warm(GRID, ExpertOracle(games.lower_bound_expert(1.0)), 1)


def test_three_players_take_turns_deviating(monkeypatch):
    game = games.random_game(4, (2, 3, 2), num_players=3, zero_sum=False, seed=0)
    expert = tabular.uniform_policies(game)
    planned = []
    plan = mail_warm_module._exploration_q

    def recording_plan(counts, *args):
        planned.append(counts.shape[1])  # the deviator's number of actions
        return plan(counts, *args)

    monkeypatch.setattr(mail_warm_module, "_exploration_q", recording_plan)
    oracle = ExpertOracle(expert, seed=0)
    result = mail_warm(game, oracle, 2, horizon=5, seed=0)
    assert planned == [2, 3, 2, 2, 3, 2]
    assert oracle.total_queries == 3 * 3 * 2 * 5 == result.history.expert_queries[-1]
    assert oracle.queries.tolist() == [30, 30, 30]


def test_command_line_runs_mail_warm_on_the_grid_race(tmp_path, capsys):
    assert cli.main(["run", "--game", "grid-race", "--algo", "mail-warm", "--bonus-scale", "5", "--seeds", "1",
                     "--queries", "400", "--points", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| mail-warm |" in out and (tmp_path / "mail_nash_gap.png").exists()


def test_query_all_answers_every_player_from_its_expert_and_counts():
    first, second = np.array([[0.3, 0.7], [1.0, 0.0]]), np.array([[0.0, 0.0, 1.0], [0.5, 0.25, 0.25]])
    oracle = ExpertOracle([first, second], seed=0)
    answers = np.array([oracle.query_all(1) for _ in range(20_000)])
    assert oracle.queries.tolist() == [20_000, 20_000]
    assert np.all(answers[:, 0] == 0)  # player 1's expert always plays action 0 at state 1
    frequencies = np.bincount(answers[:, 1], minlength=3) / len(answers)
    assert np.all(np.abs(frequencies - [0.5, 0.25, 0.25]) < 4 * np.sqrt(0.25 / len(answers)))
    for bad in (2, [1, 0], 0.5):
        with pytest.raises(ValueError, match=r"state must be an integer in \[0, 1\]"):
            oracle.query_all(bad)
    assert oracle.queries.tolist() == [20_000, 20_000]  # refused queries are not counted


# ------------------------------------------------------------------ the reproduction script
def load_reproduce_mail():
    spec = importlib.util.spec_from_file_location("reproduce_mail", ROOT / "scripts" / "reproduce_mail.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_row(algo, seed, budget, gap=1.0):
    return dict(algo=algo, seed=seed, budget=budget, iterations=1, expert_queries=budget, oracle_calls=0,
                simulator_steps=0, gap_last=gap, gap_average=gap, gap_sampled=gap, seconds=0.5)


def test_resume_runs_only_what_is_missing_and_shows_only_this_grid(tmp_path, monkeypatch):
    script = load_reproduce_mail()
    calls = []

    def counting_run_one(setting, algo, budget, seed, *args):
        calls.append((algo, seed, budget))
        return [fake_row("bc-uniform", seed, budget), fake_row("bc-first", seed, budget)] if algo == "bc" \
            else [fake_row(algo, seed, budget)]

    monkeypatch.setattr(experiment, "run_one", counting_run_one)
    argv = ["--settings", "grid-race", "--algos", "bc", "mail-warm", "--seeds", "2", "--queries", "100",
            "--points", "2", "--out", str(tmp_path)]
    # a CSV holding: one run of this grid, one of another setting, one of another budget
    stored = [dict(game="grid-race", target_c=math.nan, c_single=math.inf, c_all=math.inf, **fake_row("mail-warm", 0, 10)),
              dict(game="lower-bound", target_c=2.0, c_single=2.0, c_all=2.0, **fake_row("mail-warm", 0, 10)),
              dict(game="grid-race", target_c=math.nan, c_single=math.inf, c_all=math.inf,
                   **fake_row("mail-warm", 1, 5000, gap=99.0))]
    csv_path = tmp_path / "csv" / "mail_results.csv"
    experiment.write_csv(stored, csv_path)
    script.main([*argv, "--resume"])
    expected = {(algo, seed, budget) for algo in ("bc", "mail-warm") for seed in (0, 1) for budget in (10, 100)}
    assert set(calls) == expected - {("mail-warm", 0, 10)} and len(calls) == 7
    rows = experiment.read_csv(csv_path)
    assert len(rows) == 3 + 2 * 4 + 3  # stored, BC's two rows per run, the new MAIL-WARM runs
    assert "99.000" not in (tmp_path / "results.md").read_text()  # another grid's budget is not shown
    assert "lower-bound" not in (tmp_path / "results.md").read_text()
    calls.clear()
    script.main([*argv, "--resume"])
    assert calls == []  # everything is there
    script.main(argv)  # without --resume: everything again, and the CSV replaced
    assert len(calls) == 8 and len(experiment.read_csv(csv_path)) == 12


def test_an_interrupted_reproduction_keeps_the_finished_runs(tmp_path, monkeypatch):
    script = load_reproduce_mail()
    count = []

    def interrupted_after_three(setting, algo, budget, seed, *args):
        if len(count) == 3:
            raise KeyboardInterrupt
        count.append(1)
        return [fake_row(algo, seed, budget)]

    monkeypatch.setattr(experiment, "run_one", interrupted_after_three)
    with pytest.raises(SystemExit) as stop:
        script.main(["--settings", "grid-race", "--algos", "mail-warm", "--seeds", "3", "--queries", "100",
                     "--points", "2", "--out", str(tmp_path)])
    assert stop.value.code == 130
    assert len(experiment.read_csv(tmp_path / "csv" / "mail_results.csv")) == 3


def test_a_second_reproduction_into_the_same_folder_is_refused(tmp_path):
    from agents.run_folder import RunLock
    script = load_reproduce_mail()
    with RunLock(tmp_path), pytest.raises(SystemExit) as stop:
        script.main(["--settings", "grid-race", "--seeds", "1", "--queries", "10", "--points", "2",
                     "--out", str(tmp_path)])
    assert "in use by another process" in str(stop.value.code)


@pytest.mark.parametrize("row_algo, algo", [("bc-uniform", "bc"), ("bc-first", "bc"), ("mail-bro", "mail-bro"),
                                            ("murmail", "murmail"), ("murmail-exact", "murmail"),
                                            ("mail-warm", "mail-warm")])
def test_rows_name_their_algorithm(row_algo, algo):
    assert experiment.algorithm_of(row_algo) == algo


def test_panel_titles_keep_their_names():
    assert experiment.panel_key({"game": "random-zero-sum"}) == "random zero-sum"
    assert experiment.panel_key({"game": "grid-race"}) == "grid race"


@pytest.mark.parametrize("algo, function", [("mail-bro", "mail_bro"), ("murmail", "murmail"),
                                            ("mail-warm", "mail_warm")])
def test_the_oracle_and_the_learner_draw_from_different_streams(monkeypatch, algo, function):
    # One seed for both would replay the oracle's uniforms in the learner's rollouts.
    seen = {}

    def capture(game, oracle, iterations, **kwargs):
        seen["oracle"] = oracle._rng.random(64)
        seen["learner"] = np.random.default_rng(kwargs["seed"]).random(64)
        raise StopIteration

    monkeypatch.setattr(experiment, function, capture)
    setting = experiment.make_setting("lower-bound", 2.0)
    with pytest.raises(StopIteration):
        experiment.run_one(setting, algo, 100, seed=3)
    assert not np.allclose(seen["oracle"], seen["learner"])
