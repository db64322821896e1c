"""Exact solvers against independent computations.

Independent means: truncated power series instead of linear solves, brute
force over every deterministic policy instead of policy iteration, closed
forms for matrix games, the paper's published numbers, and the separate
numpy implementation in ``agents.tabular_numpy``. This module also runs under
``NUMBA_DISABLE_JIT=1`` (see the Makefile) so the kernels are covered as
plain Python.
"""

import itertools

import numpy as np
import pytest

from agents import tabular, tabular_numpy
from envs import games
from tests.conftest import random_profile


# ----------------------------------------------------------- brute force
def power_series_kernel(game, policies, num_terms=2000):
    """P_pi and r_pi by explicit sums over joint actions, no vectorised contraction."""
    S = game.num_states
    kernel = np.zeros((S, S))
    rewards = np.zeros((game.num_players, S))
    for s in range(S):
        for joint in itertools.product(*[range(a) for a in game.num_actions]):
            p = np.prod([policies[i][s, a] for i, a in enumerate(joint)])
            kernel[s] += p * game.transitions[(s, *joint)]
            rewards[:, s] += p * game.rewards[(slice(None), s, *joint)]
    return kernel, rewards


def power_series_values(game, policies, num_terms=3000):
    kernel, rewards = power_series_kernel(game, policies)
    total = np.zeros_like(rewards)
    term = rewards.copy()
    for _ in range(num_terms):
        total += term
        term = game.gamma * term @ kernel.T
    return total


def power_series_occupancy(game, policies, num_terms=3000):
    kernel, _ = power_series_kernel(game, policies)
    total = np.zeros(game.num_states)
    distribution = game.initial.copy()
    for k in range(num_terms):
        total += (1 - game.gamma) * game.gamma**k * distribution
        distribution = distribution @ kernel
    return total


def deterministic_policies(num_states, num_actions):
    for actions in itertools.product(range(num_actions), repeat=num_states):
        policy = np.zeros((num_states, num_actions))
        policy[np.arange(num_states), actions] = 1.0
        yield policy


def brute_force_best_value(game, policies, player):
    best = -np.inf
    for deviation in deterministic_policies(game.num_states, game.num_actions[player]):
        profile = list(policies)
        profile[player] = deviation
        best = max(best, power_series_values(game, profile, 600)[player] @ game.initial)
    return best


# ---------------------------------------------------------------- values
def test_values_and_occupancy_match_power_series(small_games, rng):
    for game in small_games:
        policies = random_profile(game, rng)
        np.testing.assert_allclose(
            tabular.values(game, policies), power_series_values(game, policies), atol=1e-10
        )
        d = tabular.occupancy(game, policies)
        np.testing.assert_allclose(d, power_series_occupancy(game, policies), atol=1e-12)
        assert d.sum() == pytest.approx(1.0, abs=1e-12)


def test_values_of_matrix_game_closed_form():
    # Matching pennies: V = (2p - 1)(2q - 1) / (1 - gamma) for P(heads) = p, q.
    game = games.matching_pennies(gamma=0.75)
    p, q = 0.3, 0.8
    v = tabular.values(game, [np.array([[p, 1 - p]]), np.array([[q, 1 - q]])])
    expected = (2 * p - 1) * (2 * q - 1) / (1 - 0.75)
    np.testing.assert_allclose(v[:, 0], [expected, -expected], atol=1e-13)


def test_values_on_slow_mixing_chain_use_the_exact_fallback():
    # A long deterministic cycle mixes slowly; values must stay exact.
    S = 64
    transitions = np.zeros((S, 1, S))
    transitions[np.arange(S), 0, (np.arange(S) + 1) % S] = 1.0
    rewards = np.zeros((1, S, 1))
    rewards[0, 0, 0] = 1.0
    from envs import MarkovGame

    game = MarkovGame(transitions, rewards, np.eye(S)[0], 0.95)
    v = tabular.values(game, [np.ones((S, 1))])
    # From state k the reward state is reached after (S - k) % S steps, then every S steps.
    k = np.arange(S)
    expected = 0.95 ** ((S - k) % S) / (1 - 0.95**S)
    np.testing.assert_allclose(v[0], expected, rtol=1e-12)


# ---------------------------------------------------------- best response
def test_best_response_matches_brute_force(small_games, rng):
    for game in small_games:
        policies = random_profile(game, rng)
        for player in range(game.num_players):
            response = tabular.best_response(game, policies, player)
            assert response.value == pytest.approx(
                brute_force_best_value(game, policies, player), abs=1e-9
            )
            profile = list(policies)
            profile[player] = response.policy
            achieved = power_series_values(game, profile)[player] @ game.initial
            assert achieved == pytest.approx(response.value, abs=1e-9)


def test_induced_mdp_matches_numpy_reference(small_games, rng):
    for game in small_games:
        policies = random_profile(game, rng)
        for player in range(game.num_players):
            ours = tabular.induced_mdp(game, policies, player)
            reference = tabular_numpy.induced_mdp(game, policies, player)
            np.testing.assert_allclose(ours[0], reference[0], atol=1e-14)
            np.testing.assert_allclose(ours[1], reference[1], atol=1e-14)


def test_solve_mdp_matches_numpy_reference_on_larger_mdp(rng):
    game = games.random_game(60, 4, num_players=1, zero_sum=False, seed=5, gamma=0.95)
    transitions, rewards = game.transitions, game.rewards[0]
    policy, state_values, q = tabular.solve_mdp(transitions, rewards, game.gamma)
    ref_policy, ref_values = tabular_numpy.solve_mdp(transitions, rewards, game.gamma)
    np.testing.assert_allclose(state_values, ref_values, atol=1e-10)
    np.testing.assert_array_equal(policy, ref_policy)
    # Bellman optimality holds.
    np.testing.assert_allclose(q.max(axis=1), state_values, atol=1e-10)


# --------------------------------------------------------------- Nash gap
@pytest.mark.parametrize("p, q", [(0.5, 0.5), (0.2, 0.9), (1.0, 0.0), (0.65, 0.5)])
def test_nash_gap_matching_pennies_closed_form(p, q):
    gamma = 0.9
    game = games.matching_pennies(gamma)
    gap = tabular.nash_gap(game, [np.array([[p, 1 - p]]), np.array([[q, 1 - q]])])
    # Max player's improvement |2q-1| - v, min player's v + |2p-1|, v = (2p-1)(2q-1).
    v = (2 * p - 1) * (2 * q - 1)
    expected = np.array([abs(2 * q - 1) - v, v + abs(2 * p - 1)]) / (1 - gamma)
    np.testing.assert_allclose(gap.per_player, expected, atol=1e-12)
    assert gap.total == pytest.approx(expected.sum(), abs=1e-12)


def test_nash_gap_matches_brute_force_and_numpy(small_games, rng):
    for game in small_games:
        policies = random_profile(game, rng)
        gap = tabular.nash_gap(game, policies)
        current = power_series_values(game, policies) @ game.initial
        brute = [brute_force_best_value(game, policies, i) - current[i] for i in range(game.num_players)]
        np.testing.assert_allclose(gap.per_player, brute, atol=1e-9)
        assert np.all(gap.per_player >= -1e-9)
        reference_total, reference_per_player = tabular_numpy.nash_gap(game, policies)
        np.testing.assert_allclose(gap.per_player, reference_per_player, atol=1e-10)
        assert gap.total == pytest.approx(reference_total, abs=1e-10)


@pytest.mark.parametrize("c, expected", [(0.5, 1.35), (0.0, 2.7)])
def test_nash_gap_of_uniform_policy_on_lower_bound_game(c, expected):
    # Published in shared/spec/mail.md (computed exactly, gamma = 0.9).
    game = games.lower_bound_game(c=c)
    assert tabular.nash_gap(game, tabular.uniform_policies(game)).total == pytest.approx(expected, abs=1e-12)


def test_uniform_policy_is_equilibrium_of_lower_bound_game_with_c_one():
    game = games.lower_bound_game(c=1.0)
    assert tabular.nash_gap(game, tabular.uniform_policies(game)).total == pytest.approx(0.0, abs=1e-12)


def test_nash_gap_on_larger_random_game_matches_numpy(rng):
    game = games.random_game(120, 4, seed=9)
    policies = random_profile(game, rng)
    ours = tabular.nash_gap(game, policies)
    reference = tabular_numpy.nash_gap(game, policies)
    np.testing.assert_allclose(ours.per_player, reference[1], atol=1e-9)


# ------------------------------------------------------ zero-sum equilibrium
@pytest.mark.parametrize(
    "payoff, row, col, value",
    [
        # 2x2 without a saddle point: p = (d - c) / (a - b - c + d), v = (ad - bc) / (a - b - c + d).
        ([[3.0, -1.0], [-2.0, 1.0]], [3 / 7, 4 / 7], [2 / 7, 5 / 7], 1 / 7),
        ([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], [1 / 3] * 3, [1 / 3] * 3, 0.0),
        # Saddle point at (row 1, column 0).
        ([[1.0, 4.0], [2.0, 3.0]], [0.0, 1.0], [1.0, 0.0], 2.0),
    ],
)
def test_matrix_game_closed_forms(payoff, row, col, value):
    v, x, y = tabular.solve_matrix_game(np.array(payoff))
    assert v == pytest.approx(value, abs=1e-9)
    np.testing.assert_allclose(x, row, atol=1e-9)
    np.testing.assert_allclose(y, col, atol=1e-9)
    game = games.matrix_game(np.array(payoff), gamma=0.5)
    equilibrium = tabular.zero_sum_equilibrium(game)
    assert equilibrium.values[0] == pytest.approx(value / 0.5, abs=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_sum_equilibrium_of_random_games(seed):
    game = games.random_game(10, 3, seed=seed)
    equilibrium = tabular.zero_sum_equilibrium(game, tol=1e-8)
    total, per_player = tabular_numpy.nash_gap(game, equilibrium.policies)
    assert total <= 1e-8
    assert np.all(per_player >= -1e-10)
    # The equilibrium value satisfies Shapley's fixed point, state by state.
    q = game.rewards[0] + game.gamma * game.transitions @ equilibrium.values
    for s in range(game.num_states):
        assert tabular.solve_matrix_game(q[s])[0] == pytest.approx(equilibrium.values[s], abs=1e-8)


def test_zero_sum_equilibrium_rejects_general_sum():
    with pytest.raises(ValueError, match="zero-sum"):
        tabular.zero_sum_equilibrium(games.random_game(3, 2, zero_sum=False, seed=0))


# -------------------------------------------------------- concentrability
def brute_force_concentrability(game, expert):
    d_expert = tabular_numpy.occupancy(game, expert)
    single, full = 0.0, 0.0
    for i in range(game.num_players):
        best_value = brute_force_best_value(game, expert, i)
        for deviation in deterministic_policies(game.num_states, game.num_actions[i]):
            profile = list(expert)
            profile[i] = deviation
            d = tabular_numpy.occupancy(game, profile)
            reached = d > 1e-12
            if np.any(reached & (d_expert <= 1e-12)):
                ratio = np.inf
            else:
                ratio = np.max(d[reached] / d_expert[reached]) if reached.any() else 0.0
            full = max(full, ratio)
            if power_series_values(game, profile, 600)[i] @ game.initial >= best_value - 1e-9:
                single = max(single, ratio)
    return single, full


@pytest.mark.parametrize("weight_black", [0.5, 0.9, np.sqrt(1 - 1e-3), 1.0])
def test_concentrability_of_lower_bound_expert_closed_form(weight_black):
    # Deviating to a1 at s0 reaches s1 surely: ratio 1 / (1 - lambda^2); a3 reaches s2
    # with probability lambda against lambda^2: ratio 1 / lambda. Every action at s0 is
    # a best response (the game's value is 0), so both coefficients agree.
    game = games.lower_bound_game()
    result = tabular.concentrability(game, games.lower_bound_expert(weight_black))
    lam = weight_black
    expected = np.inf if lam == 1.0 else max(1 / (1 - lam**2), 1 / lam)
    assert result.single_policy == pytest.approx(expected, rel=1e-9)
    assert result.all_policy == pytest.approx(expected, rel=1e-9)


def test_concentrability_matches_brute_force(rng):
    game = games.random_game(3, 2, seed=7)
    # A sparse expert (some actions never played) so that the coefficients differ.
    expert = [np.array([[1.0, 0.0], [0.3, 0.7], [0.0, 1.0]]), np.array([[0.5, 0.5], [1.0, 0.0], [0.9, 0.1]])]
    result = tabular.concentrability(game, expert)
    single, full = brute_force_concentrability(game, expert)
    assert result.all_policy == pytest.approx(full, rel=1e-9)
    assert result.single_policy == pytest.approx(single, rel=1e-9)
    assert result.single_policy <= result.all_policy


def test_concentrability_is_infinite_when_expert_misses_a_reachable_state():
    # Expert pair stays in state 0 forever; a deviation reaches state 1.
    from envs import MarkovGame

    transitions = np.zeros((2, 2, 1, 2))
    transitions[0, 0, 0, 0] = 1.0
    transitions[0, 1, 0, 1] = 1.0
    transitions[1, :, 0, 1] = 1.0
    rewards = np.zeros((2, 2, 2, 1))
    game = MarkovGame(transitions, rewards, np.array([1.0, 0.0]), 0.9)
    expert = [np.array([[1.0, 0.0], [1.0, 0.0]]), np.ones((2, 1))]
    result = tabular.concentrability(game, expert)
    assert result.all_policy == np.inf and result.single_policy == np.inf


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "policies, message",
    [
        (lambda g: [np.full((3, 2), 0.5)], "one policy per player"),
        (lambda g: [np.full((3, 2), 0.5), np.full((3, 2), 0.5)], r"player 1 must have shape"),
        (lambda g: [np.full((3, 2), 0.6), np.full((3, 3), 1 / 3)], r"policies\[0\]\[0, :\] sums to 1.2"),
        (lambda g: [np.array([[1.5, -0.5]] * 3), np.full((3, 3), 1 / 3)], r"policies\[0\]\[0, 1\] = -0.5 is negative"),
    ],
)
def test_bad_policies_raise_clear_errors(policies, message):
    game = games.random_game(3, (2, 3), seed=0)
    for solver in (tabular.values, tabular.nash_gap, tabular.occupancy):
        with pytest.raises(ValueError, match=message):
            solver(game, policies(game))


def test_bad_player_index():
    game = games.random_game(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"player must be an integer in \[0, 1\], got 2"):
        tabular.best_response(game, tabular.uniform_policies(game), 2)
