"""Tabular SOAR-IL: critics, updates, environments, command line."""

import numpy as np
import pytest

from agents import tabular as solvers
from agents.sampling import sample_occupancy, sample_trajectories
from agents.tabular_demonstrations import TabularDemonstrations
from envs import mdps
from soar import cli, experiment
from soar import tabular as soar


def test_optimistic_q_hand_computed():
    cost = np.array([[0.2, 0.5]])
    next_values = np.array([[[1.0, 3.0]], [[3.0, 5.0]]])  # L = 2: mean [2, 4], population std [1, 1]
    q = soar.optimistic_q(cost, next_values, gamma=0.5, optimism=0.5)
    # 0.2 + 0.5 (2 - 0.5) = 0.95; 0.5 + 0.5 (4 - 0.5) = 2.25, clipped to 1 / (1 - 0.5) = 2.
    np.testing.assert_allclose(q, [[0.95, 2.0]])
    np.testing.assert_allclose(soar.min_q(cost, next_values, gamma=0.5), [[0.7, 2.0]])
    q_ucb = soar.ucb_q(cost, np.array([[2.0, 4.0]]), np.array([[4.0, 0.0]]), gamma=0.5, optimism=0.25)
    # bonus = 0.25 / (0.5 sqrt(N)): 0.25 for N = 4, 0.5 for N = 0 (counted as 1).
    np.testing.assert_allclose(q_ucb, [[0.2 + 1.0 - 0.25, 2.0]])


def test_empirical_models_are_uniform_where_unvisited():
    counts = np.zeros((2, 2, 3))
    counts[0, 1] = [1, 3, 0]
    models = soar.empirical_models(counts)
    np.testing.assert_allclose(models[0, 1], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(models[1, 0], [1 / 3] * 3)


@pytest.mark.parametrize("L, learner_samples, optimism", [(1, 7, 0.0), (1, 0, 0.0), (3, 7, 0.5), (3, 0, 0.5)])
def test_the_loop_written_out_with_plain_numpy(L, learner_samples, optimism):
    mdp = mdps.river_swim()
    expert = soar.optimal_policy(mdp)
    data = soar.sample_expert_data(mdp, expert, 50, seed=1)
    result = soar.soar_il(mdp, data, num_critics=L, num_iterations=30, optimism=optimism, seed=7,
                          learner_samples=learner_samples)
    # The loop written out: one count table per model, each fed every transition of its own trajectory.
    # The samplers are tested on their own (tests/test_sampling.py), so this reuses them with the same generator.
    rng = np.random.default_rng(7)
    S, A, gamma = mdp.num_states, 2, mdp.gamma
    expert_occ = np.zeros((S, A))
    np.add.at(expert_occ, (data.states, data.actions[:, 0]), 1 / len(data))
    cost, policy, values = np.full((S, A), 0.5), np.full((S, A), 0.5), np.zeros(S)
    counts = np.zeros((L, S, A, S))
    steps = 0
    for _ in range(30):
        if learner_samples:
            fresh = sample_occupancy(mdp.transitions, policy[None], np.array([A]), mdp.initial, gamma,
                                     learner_samples, rng, with_actions=True)
            steps += fresh.steps
        paths = sample_trajectories(mdp.transitions, policy[None], np.array([A]), mdp.initial, gamma, L, rng)
        steps += len(paths.states)
        visited = fresh if learner_samples else paths
        learner_occ = np.zeros((S, A))
        for s, a in zip(visited.states, visited.joint_actions):
            learner_occ[s, a] += 1
        # Fresh states are i.i.d. samples of d^pi; a trajectory's visits count (1 - gamma) each, per trajectory.
        learner_occ *= 1 / len(visited.states) if learner_samples else (1 - gamma) / L
        cost = np.clip(cost - 0.9 * (expert_occ - learner_occ), 0, 1)
        for l, s, a, s_next in zip(paths.trajectory, paths.states, paths.joint_actions, paths.next_states):
            counts[l, s, a, s_next] += 1
        totals = counts.sum(axis=3, keepdims=True)
        models = np.where(totals > 0, counts / np.maximum(totals, 1), 1 / S)
        backups = models @ values  # (L, S, A)
        q = np.clip(cost + gamma * (backups.mean(axis=0) - optimism * backups.std(axis=0)), 0, 1 / (1 - gamma))
        values = (policy * q).sum(axis=1)
        policy = policy * np.exp(-4.0 * q)
        policy /= policy.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.policy, policy, atol=1e-12)
    np.testing.assert_allclose(result.cost, cost, atol=1e-12)
    np.testing.assert_allclose(result.critic.q, np.clip(cost + gamma * backups, 0, 1 / (1 - gamma)), atol=1e-12)
    assert result.history.samples[-1] == 30 * L and result.history.learner_samples[-1] == 30 * learner_samples
    assert result.history.env_steps[-1] == steps
    if L == 1:  # one critic: the std is 0, so optimism changes nothing
        again = soar.soar_il(mdp, data, num_critics=1, num_iterations=30, optimism=5.0, seed=7,
                             learner_samples=learner_samples)
        np.testing.assert_allclose(again.policy, result.policy, atol=1e-12)


def test_the_occupancy_from_the_models_trajectories_is_unbiased():
    """With learner_samples=0 and one trajectory a run, the cost step's learner occupancy, read back
    from one small unclipped cost step, averages to the exact occupancy of the uniform policy.
    (Normalising by the trajectory's length would average 0.78 for the first state, not 0.68.)"""
    mdp = mdps.two_state_mdp()
    data = soar.sample_expert_data(mdp, soar.optimal_policy(mdp), 10, seed=0)
    expert_occ = np.zeros((2, 20))
    np.add.at(expert_occ, (data.states, data.actions[:, 0]), 1 / len(data))
    step, runs = 1e-3, 2000
    estimates = np.array([
        ((soar.soar_il(mdp, data, num_critics=1, num_iterations=1, cost_step=step, learner_samples=0,
                       seed=seed).cost - 0.5) / step + expert_occ).sum(axis=1)
        for seed in range(runs)])
    exact = solvers.occupancy(mdp, [np.full((2, 20), 1 / 20)])
    standard_error = estimates.std(axis=0) / np.sqrt(runs)
    assert np.all(np.abs(estimates.mean(axis=0) - exact) < 4 * standard_error)


@pytest.mark.parametrize("critic", soar.CRITICS)
def test_two_state_mdp_reaches_expert_value(critic):
    mdp = mdps.two_state_mdp()
    expert = soar.optimal_policy(mdp)
    expert_value = soar.policy_value(mdp, expert)
    data = soar.sample_expert_data(mdp, expert, 100, seed=0)
    result = soar.soar_il(mdp, data, num_critics=3, num_iterations=100, seed=0, critic=critic)
    assert result.history.value[-1] >= 0.98 * expert_value
    assert result.history.value[-1] > soar.policy_value(mdp, np.full((2, 20), 1 / 20)) + 20
    assert result.history.samples[-1] == 300  # L samples per iteration
    assert result.history.env_steps[-1] >= 300


def test_history_values_are_exact_values_of_the_policy():
    mdp = mdps.river_swim()
    data = soar.sample_expert_data(mdp, soar.optimal_policy(mdp), 20, seed=0)
    result = soar.soar_il(mdp, data, num_critics=2, num_iterations=10, log_every=5, seed=3)
    assert result.history.iteration == [5, 10]
    # Independent: the value of the final policy by a power series.
    P = np.einsum("sa,sat->st", result.policy, mdp.transitions)
    r = (result.policy * mdp.rewards[0]).sum(axis=1)
    v, term = np.zeros(mdp.num_states), r.copy()
    for _ in range(4000):
        v += term
        term = mdp.gamma * P @ term
    assert result.history.value[-1] == pytest.approx(mdp.initial @ v, abs=1e-9)


def test_expert_data_follows_expert_occupancy():
    mdp = mdps.river_swim()
    expert = soar.optimal_policy(mdp)
    data = soar.sample_expert_data(mdp, expert, 20_000, seed=0)
    assert np.all(data.actions == 1)  # the optimal RiverSwim policy always swims right
    frequencies = np.bincount(data.states, minlength=mdp.num_states) / len(data)
    exact = solvers.occupancy(mdp, [expert])
    assert np.all(np.abs(frequencies - exact) <= 4 * np.sqrt(exact * (1 - exact) / len(data)) + 1e-12)


def test_state_only_cost_is_the_same_for_every_action():
    mdp = mdps.river_swim()
    data = soar.sample_expert_data(mdp, soar.optimal_policy(mdp), 30, seed=0)
    result = soar.soar_il(mdp, data, num_critics=2, num_iterations=5, occupancy="state", seed=0)
    np.testing.assert_allclose(result.cost[:, 0], result.cost[:, 1])


def test_environments():
    two = mdps.two_state_mdp()
    assert soar.optimal_policy(two).probabilities[0, 0] == 1.0
    river = mdps.river_swim()
    np.testing.assert_array_equal(soar.optimal_policy(river).probabilities[:, 1], np.ones(6))
    grid = mdps.random_gridworld(size=5, seed=3)
    uniform = np.full((grid.num_states, 4), 0.25)
    assert soar.policy_value(grid, soar.optimal_policy(grid)) > soar.policy_value(grid, uniform)
    np.testing.assert_array_equal(
        mdps.random_gridworld(seed=3).transitions, grid.transitions
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_critics=0), "num_critics must be an integer >= 1"),
        (dict(optimism=-0.1), "optimism must be a finite number >= 0"),
        (dict(std_clip=-1.0), "std_clip must be a number >= 0 or inf"),
        (dict(num_iterations=2.5), "num_iterations must be an integer >= 1, got 2.5"),
        (dict(critic="max"), "critic must be one of"),
        (dict(occupancy="action"), "occupancy must be one of"),
        (dict(expert_data=TabularDemonstrations(np.array([0, 7]), np.array([0, 0]))), r"states must lie in \[0, 2\)"),
        (dict(expert_data=TabularDemonstrations(np.array([0, 1]), np.array([0, 25]))),
         r"actions of player 0 must lie in \[0, 20\)"),
        (dict(expert_data=TabularDemonstrations(np.array([0, 1]), np.array([[0, 0], [1, 1]]))), "2 players' actions"),
        (dict(expert_data=TabularDemonstrations(np.array([], int), np.array([], int))), "holds no samples"),
        (dict(expert_data=(np.array([0]), np.array([0]))), "must be TabularDemonstrations"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    mdp = mdps.two_state_mdp()
    arguments = dict(expert_data=TabularDemonstrations(np.array([0, 1]), np.array([0, 0])))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        soar.soar_il(mdp, **arguments)


def test_threshold_table_on_hand_made_runs():
    def run(L, seed, values):
        return [dict(num_critics=L, seed=seed, iteration=k + 1, samples=(k + 1) * L, env_steps=(k + 1) * 100 + L,
                     value=v, expert_value=10.0) for k, v in enumerate(values)]

    rows = run(1, 0, [1, 9.6, 10]) + run(1, 1, [1, 2, 3]) + run(2, 0, [9.5, 10, 10])
    table = {row.num_critics: row for row in experiment.threshold_table(rows)}
    assert (table[1].reached, table[1].runs, table[1].samples_median, table[1].iterations_median) == (1, 2, 2, 2)
    assert (table[2].samples_median, table[2].iterations_median) == (2, 1)
    assert (table[1].env_steps_median, table[2].env_steps_median) == (201, 102)
    assert table[1].final_value == pytest.approx(6.5)
    text = experiment.format_threshold_table(experiment.threshold_table(rows))
    assert "| 1 | 1/2 | 2 [2, 2] | 2 | 201 | 6.50 |" in text and "| 2 | 1/1 | 2 [2, 2] | 1 | 102 | 10.00 |" in text


def test_cli_writes_csv_plot_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["tabular", "--env", "river-swim", "--critics", "1", "2", "--seeds", "2",
                     "--iterations", "5", "--out", str(out), "--no-progress"]) == 0
    rows = experiment.read_csv(out / "soar_tabular.csv")
    assert len(rows) == 2 * 2 * 5
    assert {row["num_critics"] for row in rows} == {1, 2}
    assert (out / "soar_tabular.png").stat().st_size > 10_000
    assert "| 2 |" in (out / "summary.md").read_text()
    assert "expert value" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tabular", "--out", "x", "--critics", "0"], "must be an integer >= 1, got 0"),
        (["tabular", "--out", "x", "--optimism", "-1"], "must be a finite number >= 0, got -1"),
        (["tabular", "--out", "x", "--env", "moon"], "invalid choice"),
        (["tabular", "--out", "x", "--bogus"], "unrecognized arguments"),
    ],
)
def test_cli_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_read_csv_rejects_other_files(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        experiment.read_csv(path)
