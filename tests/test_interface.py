"""The shared policy/critic interface: tabular policies, profiles, critics, demonstrations, one evaluation path."""

import subprocess
import sys
from importlib.metadata import version

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test
from scipy import stats

import agents
import envs
import mail
import soar
from agents import tabular
from agents.interface import Critic, Policy, PolicyProfile, TabularCritic, TabularPolicy
from agents.rollout import collect, evaluate
from agents.tabular_demonstrations import TabularDemonstrations
from envs import games
from envs.gym_env import TabularMDPEnv
from envs.mdps import mdp


def chain_mdp(num_states=4):
    """Deterministic chain: action 1 moves right (reward 1 when it does), action 0 stays (reward 0)."""
    S = num_states
    transitions = np.zeros((S, 2, S))
    rewards = np.zeros((S, 2))
    for s in range(S):
        transitions[s, 0, s] = 1.0
        transitions[s, 1, min(s + 1, S - 1)] = 1.0
        rewards[s, 1] = 1.0 if s < S - 1 else 0.0
    return mdp(transitions, rewards, np.eye(S)[0], 0.9)


def finite_horizon_returns(game, profile, horizon):
    """Exact expected undiscounted return of every player over ``horizon`` steps: sum_t rho P^t r."""
    kernel, rewards = tabular.policy_kernel(game, profile)
    distribution, total = game.initial.copy(), np.zeros(game.num_players)
    for _ in range(horizon):
        total += rewards @ distribution
        distribution = distribution @ kernel
    return total


# ------------------------------------------------------------------ imports
def test_the_tabular_side_never_imports_torch():
    code = (
        "import sys\n"
        "import envs, envs.gym_env, envs.parallel, envs.games, envs.mdps\n"
        "import agents.tabular, agents.interface, agents.sampling, agents.rollout, agents.tabular_demonstrations\n"
        "import agents.config, agents.optimism, agents.logger, agents.checkpoints, agents.harness, agents.experts\n"
        "import soar.tabular, soar.experiment, soar.cli\n"
        "import mail, mail.cli, mail.experiment\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print(len(loaded)); sys.exit(1 if loaded else 0)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_every_package_reports_the_installed_version():
    assert agents.__version__ == envs.__version__ == soar.__version__ == mail.__version__ == version("soar-mail")


# ----------------------------------------------------------- tabular policy
def test_tabular_policy_samples_its_probabilities():
    probabilities = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    policy = TabularPolicy(probabilities)
    actions = policy.act(np.zeros(30_000, dtype=int), rng=np.random.default_rng(0))
    counts = np.bincount(actions, minlength=3)
    assert stats.chisquare(counts, 30_000 * probabilities[0]).pvalue > 1e-3
    assert np.all(policy.act(np.ones(1000, dtype=int), rng=np.random.default_rng(1)) == 0)
    np.testing.assert_allclose(policy.log_prob([0, 0], [1, 2]), np.log([0.5, 0.3]))
    assert policy.act(0, deterministic=True) == 1
    action, state = policy.predict(0, deterministic=True)
    assert action == 1 and state is None


@pytest.mark.parametrize(
    "table, message",
    [
        (np.array([[0.5, 0.6]]), r"policy\[0, :\] sums to 1.1"),
        (np.array([[1.2, -0.2]]), r"policy\[0, 1\] = -0.2 is negative"),
        (np.ones(3), r"non-empty \(S, A\) array"),
        (np.array([[np.nan, 1.0]]), "not finite"),
    ],
)
def test_tabular_policy_rejects_non_stochastic_tables(table, message):
    with pytest.raises(ValueError, match=message):
        TabularPolicy(table)


def test_tabular_policy_is_read_only_and_rejects_foreign_states():
    policy = TabularPolicy(np.full((3, 2), 0.5))
    with pytest.raises(ValueError):
        policy.probabilities[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"states must lie in \[0, 3\)"):
        policy.act(3)
    with pytest.raises(ValueError, match="integer states"):
        policy.act(0.5)


def test_tabular_critic_indexes_ensembles():
    q = np.arange(12.0).reshape(2, 3, 2)
    critic = TabularCritic(q)
    np.testing.assert_array_equal(critic.q_values([0, 2], [1, 0]), [[1.0, 4.0], [7.0, 10.0]])
    assert critic.num_members == 2 and TabularCritic(q[0]).num_members == 1
    assert isinstance(critic, Critic)


# ------------------------------------------------------------------ profiles
def test_profile_acts_jointly_and_scores_the_product():
    first, second = np.array([[0.25, 0.75], [1.0, 0.0]]), np.array([[0.5, 0.2, 0.3], [0.0, 0.0, 1.0]])
    profile = PolicyProfile([first, TabularPolicy(second)])
    assert isinstance(profile, Policy) and profile.num_players == 2 and profile.num_actions == (2, 3)
    joint = profile.act(np.zeros(20_000, dtype=int), rng=np.random.default_rng(0))
    assert joint.shape == (20_000, 2)
    counts = np.zeros((2, 3))
    np.add.at(counts, (joint[:, 0], joint[:, 1]), 1.0)
    assert stats.chisquare(counts.ravel(), 20_000 * np.outer(first[0], second[0]).ravel()).pvalue > 1e-3
    np.testing.assert_allclose(profile.log_prob([0, 1], [[1, 2], [0, 2]]), [np.log(0.75 * 0.3), 0.0])
    np.testing.assert_array_equal(profile.predict(1, deterministic=True)[0], [0, 2])
    with pytest.raises(ValueError, match="disagree on the number of states"):
        PolicyProfile([first, np.full((3, 2), 0.5)])


def test_solvers_and_oracle_accept_a_profile_or_arrays():
    game = games.random_game(5, (2, 3), seed=0)
    rng = np.random.default_rng(0)
    arrays = [rng.dirichlet(np.ones(a), size=5) for a in game.num_actions]
    profile = PolicyProfile(arrays)
    assert tabular.nash_gap(game, profile).total == tabular.nash_gap(game, arrays).total
    np.testing.assert_array_equal(tabular.values(game, profile), tabular.values(game, list(profile)))
    oracle = mail.ExpertOracle(profile, seed=0)
    oracle.check_game(game)
    assert oracle.num_actions == (2, 3)


def test_profile_file_round_trip_and_rejections(tmp_path):
    profile = PolicyProfile([np.array([[0.25, 0.75]]), np.array([[1.0, 0.0, 0.0]])])
    profile.save(tmp_path / "profile.npz")
    loaded = PolicyProfile.load(tmp_path / "profile.npz")
    for a, b in zip(loaded.arrays, profile.arrays):
        np.testing.assert_array_equal(a, b)
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "foreign.npz", player_0=np.eye(2))
    for name in ("objects.npy", "foreign.npz", "missing.npz"):
        with pytest.raises(ValueError, match="cannot read a policy profile"):
            PolicyProfile.load(tmp_path / name)


def test_mail_and_soar_return_typed_policies():
    game = games.random_game(4, 2, seed=1)
    expert = tabular.zero_sum_equilibrium(game).policies
    result = mail.mail_bro(game, mail.ExpertOracle(expert, seed=0), 20, seed=0)
    for reported in (result.last, result.average, result.sampled):
        assert isinstance(reported, PolicyProfile) and reported.num_players == 2
    assert result.policies is result.sampled
    from soar import tabular as soar_tabular

    chain = chain_mdp()
    data = soar_tabular.sample_expert_data(chain, soar_tabular.optimal_policy(chain), 50, seed=0)
    learned = soar_tabular.soar_il(chain, data, num_critics=3, num_iterations=5, seed=0)
    assert isinstance(learned.policy, TabularPolicy) and isinstance(learned.critic, TabularCritic)
    assert learned.critic.q.shape == (3, 4, 2)


# ------------------------------------------------------------ demonstrations
def test_tabular_demonstrations_round_trip_and_validation(tmp_path):
    data = TabularDemonstrations(np.array([0, 2, 1]), np.array([[1, 0], [0, 2], [1, 1]]), source="test")
    data.save(tmp_path / "demos.npz")
    loaded = TabularDemonstrations.load(tmp_path / "demos.npz")
    np.testing.assert_array_equal(loaded.states, data.states)
    np.testing.assert_array_equal(loaded.actions, data.actions)
    assert loaded.source == "test" and len(loaded.head(2)) == 2
    with pytest.raises(ValueError, match="read-only"):
        loaded.states[0] = 1
    game = games.random_game(3, (2, 2), seed=0)
    with pytest.raises(ValueError, match=r"actions of player 1 must lie in \[0, 2\)"):
        data.check_game(game)
    with pytest.raises(ValueError, match="one joint action per state"):
        TabularDemonstrations(np.array([0, 1]), np.array([[0, 0]]))
    with pytest.raises(ValueError, match="must be >= 0"):
        TabularDemonstrations(np.array([-1]), np.array([0]))
    np.savez(tmp_path / "objects.npz", states=np.array([{"x": 1}], dtype=object), actions=np.zeros((1, 1), int),
             format=np.array("soar-mail/tabular-demonstrations/1"))
    with pytest.raises(ValueError, match="is not a tabular demonstration file"):
        TabularDemonstrations.load(tmp_path / "objects.npz")


# ---------------------------------------------------------- one evaluation
def test_collect_and_evaluate_a_tabular_policy_on_a_chain():
    env = TabularMDPEnv(chain_mdp(4), max_steps=6)
    always_right = TabularPolicy(np.tile([0.0, 1.0], (4, 1)))
    (trajectory,) = collect(always_right, env, episodes=1)
    np.testing.assert_array_equal(trajectory.obs[:, 0], [0, 1, 2, 3, 3, 3, 3])
    np.testing.assert_array_equal(trajectory.rewards, [1, 1, 1, 0, 0, 0])
    assert trajectory.truncated and not trajectory.terminated
    # Undiscounted return: 3 moves right pay 1 each, whatever the horizon beyond 3.
    np.testing.assert_array_equal(evaluate(always_right, env, episodes=3), [3.0, 3.0, 3.0])


def test_one_evaluation_call_for_a_tabular_policy_a_mail_profile_and_a_gaussian_policy():
    # A tabular policy on the Gymnasium view of an MDP: the exact finite-horizon return.
    chain = chain_mdp(6)
    half = TabularPolicy(np.tile([0.5, 0.5], (6, 1)))
    returns = evaluate(half, TabularMDPEnv(chain, max_steps=8), episodes=3000, seed=0, deterministic=False)
    exact = finite_horizon_returns(chain, [half], 8)[0]
    assert returns.shape == (3000,)
    assert abs(returns.mean() - exact) < 4.5 * returns.std() / np.sqrt(3000)

    # A MAIL-learned profile on the PettingZoo view of a game: per-player returns, exact expectation.
    game = games.random_game(4, (2, 3), seed=2)
    expert = tabular.zero_sum_equilibrium(game).policies
    profile = mail.bc(game, mail.expert_dataset(game, expert, 200, seed=0)).policies
    returns = evaluate(profile, game.parallel_env(max_steps=10), episodes=3000, seed=0, deterministic=False)
    exact = finite_horizon_returns(game, profile, 10)
    assert returns.shape == (3000, 2)
    assert np.all(np.abs(returns.mean(axis=0) - exact) < 4.5 * returns.std(axis=0) / np.sqrt(3000))

    # The bundled MuJoCo expert: InvertedPendulum-v5 balanced for all 1000 steps.
    from agents.experts import bundled_policy

    returns = evaluate(bundled_policy("InvertedPendulum-v5"), gym.make("InvertedPendulum-v5"), episodes=2)
    np.testing.assert_array_equal(returns, [1000.0, 1000.0])


def test_profile_rollouts_become_tabular_demonstrations():
    game = games.random_game(5, (2, 2), seed=3)
    profile = PolicyProfile(tabular.uniform_policies(game))
    trajectories = collect(profile, game.parallel_env(max_steps=7), episodes=4, seed=1)
    assert [t.rewards.shape for t in trajectories] == [(7, 2)] * 4
    data = TabularDemonstrations.from_trajectories(trajectories)
    assert len(data) == 28 and data.num_players == 2
    data.check_game(game)
    # Consecutive states of one episode follow transitions of positive probability.
    first = trajectories[0]
    for t in range(7):
        s, (a, b), s_next = int(first.obs[t, 0]), first.acts[t].astype(int), int(first.obs[t + 1, 0])
        assert game.transitions[s, a, b, s_next] > 0


def test_views_step_through_the_game_and_keep_their_own_state():
    game = games.random_game(6, (2, 2), seed=4)
    env = game.parallel_env(max_steps=20)
    parallel_api_test(env, num_cycles=30)
    # The same seed gives the same episode as the game's own simulator.
    simulator = game.simulator()
    observations, _ = env.reset(seed=11)
    assert observations["player_0"] == simulator.reset(seed=11)
    for _ in range(5):
        actions = {"player_0": 1, "player_1": 0}
        observations, rewards, *_ = env.step(actions)
        state, expected = simulator.step([1, 0])
        assert observations["player_0"] == state and rewards["player_1"] == expected[1]
    assert game.state is None  # the game's own simulator was never touched
    gym_env = TabularMDPEnv(chain_mdp(3), max_steps=2)
    gym_env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        gym_env.step(5)
