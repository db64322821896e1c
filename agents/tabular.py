"""Exact solvers for tabular Markov games (numba-accelerated).

A policy profile is a list with one row-stochastic array of shape ``(S, A_i)``
per player. Everything here is exact up to floating point: values and
occupancies are linear solves, best responses are policy iteration on the
MDP induced by fixing the other players, and the Nash gap is the sum of the
players' best-response improvements at the initial distribution.

The jitted kernels work on the game's flattened joint actions
(:attr:`envs.MarkovGame.joint_transitions`, shape ``(S, J, S)``) and on the
policies packed into one zero-padded array of shape ``(n, S, max A_i)``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numba import njit
from scipy.optimize import linprog

from agents.interface import PolicyProfile, TabularPolicy
from envs.markov_game import MarkovGame
from envs.validation import (
    check_discount, check_distribution_rows, check_finite_array, check_int, check_positive, check_positive_int,
)

#: What the solvers take as a profile: a PolicyProfile, or one (S, A_i) array or
#: TabularPolicy per player (a single one for an MDP).
Profile = PolicyProfile | Sequence[np.ndarray | TabularPolicy] | TabularPolicy | np.ndarray

__all__ = [
    "BestResponse",
    "Concentrability",
    "NashGap",
    "ZeroSumEquilibrium",
    "best_response",
    "best_response_kernel",
    "check_policies",
    "concentrability",
    "induced_mdp",
    "joint_action_table",
    "nash_gap",
    "pack_policies",
    "occupancy",
    "solve_mdp",
    "uniform_policies",
    "values",
    "zero_sum_equilibrium",
]

#: A best-response action must beat the incumbent's Q value by more than this to
#: replace it; without a margin, ties broken by rounding can cycle policy iteration.
IMPROVEMENT_TOLERANCE = 1e-11
#: Relative accuracy to which policy evaluation certifies values (see ``_evaluate``).
EVALUATION_TOLERANCE = 1e-13
#: Value-iteration sweeps tried before policy evaluation falls back to an LU solve.
MAX_EVALUATION_SWEEPS = 200
#: Actions whose Q value is within this of the best are "optimal" (concentrability).
OPTIMAL_ACTION_TOLERANCE = 1e-9
#: Occupancies below this are treated as exactly zero (concentrability ratios).
ZERO_OCCUPANCY = 1e-12


# --------------------------------------------------------------------- kernels
@njit(cache=True)
def _joint_action_table(num_actions: np.ndarray) -> np.ndarray:
    """``table[j, i]`` is player i's action in flat joint action j (C order)."""
    num_players = num_actions.shape[0]
    num_joint = 1
    for count in num_actions:
        num_joint *= count
    table = np.empty((num_joint, num_players), dtype=np.int64)
    for j in range(num_joint):
        remainder = j
        for i in range(num_players - 1, -1, -1):
            table[j, i] = remainder % num_actions[i]
            remainder //= num_actions[i]
    return table


@njit(cache=True)
def _joint_weights(packed: np.ndarray, table: np.ndarray, excluded: int) -> np.ndarray:
    """``w[s, j] = prod_{i != excluded} pi_i(a_i(j) | s)``; ``excluded = -1`` keeps every player."""
    num_players, num_states, _ = packed.shape
    num_joint = table.shape[0]
    weights = np.ones((num_states, num_joint))
    for s in range(num_states):
        for j in range(num_joint):
            w = 1.0
            for i in range(num_players):
                if i != excluded:
                    w *= packed[i, s, table[j, i]]
            weights[s, j] = w
    return weights


@njit(cache=True, fastmath={"contract"})
def _axpy(target: np.ndarray, weight: float, source: np.ndarray) -> None:
    """``target += weight * source`` (contraction into FMAs allowed)."""
    for t in range(target.shape[0]):
        target[t] += weight * source[t]


@njit(cache=True)
def _profile_kernels(
    joint_transitions: np.ndarray,
    joint_rewards: np.ndarray,
    packed: np.ndarray,
    table: np.ndarray,
    with_induced: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Everything a profile induces, in one pass over the transition tensor.

    Returns the state kernel ``P_pi`` (S, S), the rewards ``r_pi`` (n, S) and,
    if ``with_induced``, every player's induced MDP: transitions
    ``(n, S, max A, S)`` and rewards ``(n, S, max A)`` (padded actions stay 0).
    The tensor is large and read once: at S = 500 the pass is memory-bound, so
    fusing the n + 1 contractions is what makes the Nash gap cheap.
    """
    num_states, num_joint, _ = joint_transitions.shape
    num_players, _, max_actions = packed.shape
    kernel = np.zeros((num_states, num_states))
    rewards = np.zeros((num_players, num_states))
    induced_size = num_states if with_induced else 0
    induced_transitions = np.zeros((num_players, induced_size, max_actions, induced_size))
    induced_rewards = np.zeros((num_players, induced_size, max_actions))
    others = np.empty(num_players)
    for s in range(num_states):
        for j in range(num_joint):
            # others[i] = prod_{k != i} pi_k(a_k(j) | s), without dividing by pi_i.
            joint = 1.0
            for i in range(num_players):
                others[i] = 1.0
            for i in range(num_players):
                p = packed[i, s, table[j, i]]
                joint *= p
                for k in range(num_players):
                    if k != i:
                        others[k] *= p
            row = joint_transitions[s, j]
            if not with_induced:
                if joint != 0.0:
                    _axpy(kernel[s], joint, row)
            else:
                for i in range(num_players):
                    w = others[i]
                    if w == 0.0:
                        continue
                    a = table[j, i]
                    _axpy(induced_transitions[i, s, a], w, row)
                    induced_rewards[i, s, a] += w * joint_rewards[i, s, j]
            for i in range(num_players):
                rewards[i, s] += joint * joint_rewards[i, s, j]
        if with_induced:
            # P_pi(s) = sum_a pi_0(a | s) P_0(s, a): A_0 row updates instead of J.
            for a in range(max_actions):
                w = packed[0, s, a]
                if w != 0.0:
                    _axpy(kernel[s], w, induced_transitions[0, s, a])
    return kernel, rewards, induced_transitions, induced_rewards


@njit(cache=True)
def _induced_mdp_kernel(
    joint_transitions: np.ndarray,
    joint_reward: np.ndarray,
    weights: np.ndarray,
    own_action: np.ndarray,
    num_own_actions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """MDP of one player when the others are folded into the dynamics.

    ``weights[s, j]`` is the others' probability of their part of joint action j,
    ``own_action[j]`` the player's own action in it.
    """
    num_states, num_joint, _ = joint_transitions.shape
    transitions = np.zeros((num_states, num_own_actions, num_states))
    rewards = np.zeros((num_states, num_own_actions))
    for s in range(num_states):
        for j in range(num_joint):
            w = weights[s, j]
            if w == 0.0:
                continue
            a = own_action[j]
            for t in range(num_states):
                transitions[s, a, t] += w * joint_transitions[s, j, t]
            rewards[s, a] += w * joint_reward[s, j]
    return transitions, rewards


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(row: np.ndarray, vector: np.ndarray) -> float:
    """Dot product as a plain loop (reassociation lets LLVM vectorise it).

    The kernels avoid BLAS on purpose: numpy and scipy each ship an OpenBLAS
    whose idle threads spin after every call, and two spinning pools on a
    two-core machine halve the speed of everything else.
    """
    total = 0.0
    for k in range(row.shape[0]):
        total += row[k] * vector[k]
    return total


@njit(cache=True)
def _solve_direct(kernel: np.ndarray, rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Solve ``(I - gamma P) V = r`` by LU factorisation (one or several reward columns)."""
    num_states = kernel.shape[0]
    system = -gamma * kernel
    for s in range(num_states):
        system[s, s] += 1.0
    return np.linalg.solve(system, rewards)


@njit(cache=True)
def _evaluate(
    transitions: np.ndarray, policy: np.ndarray, rewards: np.ndarray, gamma: float
) -> np.ndarray:
    """Exact evaluation of a deterministic policy: ``V = (I - gamma P)^-1 r``, ``r`` of shape (S, m).

    ``P(s) = transitions[s, policy[s]]`` (a plain kernel is ``kernel[:, None]``
    with a zero policy), read in place rather than gathered.

    Value iteration with the MacQueen-Porteus bounds: with ``delta = V_{k+1} - V_k``,
    the fixed point lies in ``V_{k+1} + gamma / (1 - gamma) [min delta, max delta]``
    because ``P`` is stochastic. The width of that box shrinks with the chain's
    mixing, not just with gamma, so on well-mixing chains a handful of
    matrix-vector products (O(S^2) each) certify the solution to
    :data:`EVALUATION_TOLERANCE`; slow-mixing chains fall back to an O(S^3) LU
    solve after :data:`MAX_EVALUATION_SWEEPS` sweeps (or S / 8, whichever is
    smaller: beyond that the LU is cheaper).
    """
    num_states, num_columns = rewards.shape
    max_sweeps = min(MAX_EVALUATION_SWEEPS, num_states // 8)
    factor = gamma / (1.0 - gamma)
    current = rewards.T.copy()  # (m, S): each column contiguous; never a view of rewards
    following = np.empty_like(current)
    for _ in range(max_sweeps):
        converged = True
        for c in range(num_columns):
            low = np.inf
            high = -np.inf
            scale = 1.0
            for s in range(num_states):
                following[c, s] = rewards[s, c] + gamma * _dot(transitions[s, policy[s]], current[c])
                delta = following[c, s] - current[c, s]
                low = min(low, delta)
                high = max(high, delta)
                scale = max(scale, abs(following[c, s]))
            shift = 0.5 * factor * (low + high)
            for s in range(num_states):
                current[c, s] = following[c, s] + shift
            if 0.5 * factor * (high - low) > EVALUATION_TOLERANCE * scale:
                converged = False
        if converged:
            return np.ascontiguousarray(current.T)
    kernel = np.empty((num_states, num_states))
    for s in range(num_states):
        kernel[s] = transitions[s, policy[s]]
    return _solve_direct(kernel, rewards, gamma)


@njit(cache=True)
def _q_values(
    transitions: np.ndarray, rewards: np.ndarray, gamma: float, values: np.ndarray
) -> np.ndarray:
    """``Q(s, a) = r(s, a) + gamma sum_s' P(s' | s, a) V(s')``."""
    num_states, num_actions, _ = transitions.shape
    q = np.empty((num_states, num_actions))
    for s in range(num_states):
        for a in range(num_actions):
            q[s, a] = rewards[s, a] + gamma * _dot(transitions[s, a], values)
    return q


@njit(cache=True)
def _policy_iteration(
    transitions: np.ndarray,
    rewards: np.ndarray,
    gamma: float,
    allowed: np.ndarray,
    initial_values: np.ndarray,
    max_iterations: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Howard's policy iteration restricted to the ``allowed`` (S, A) actions.

    Starts from the greedy policy for ``initial_values`` (a good guess, such as
    the values of the policy being improved on, saves evaluations). Returns the
    deterministic policy, its values, its Q values and the number of
    evaluations (-1 if ``max_iterations`` ran out). Evaluations are exact (see
    :func:`_evaluate`), so the policy is optimal once no action improves on it
    by more than :data:`IMPROVEMENT_TOLERANCE`.
    """
    num_states, num_actions, _ = transitions.shape
    q = _q_values(transitions, rewards, gamma, initial_values)
    policy = np.empty(num_states, dtype=np.int64)
    for s in range(num_states):
        best = -1
        for a in range(num_actions):
            if allowed[s, a] and (best < 0 or q[s, a] > q[s, best]):
                best = a
        policy[s] = best
    reward_pi = np.empty((num_states, 1))
    values = np.zeros(num_states)
    for iteration in range(max_iterations):
        for s in range(num_states):
            reward_pi[s, 0] = rewards[s, policy[s]]
        values = _evaluate(transitions, policy, reward_pi, gamma)[:, 0].copy()
        q = _q_values(transitions, rewards, gamma, values)
        changed = False
        for s in range(num_states):
            best = policy[s]
            for a in range(num_actions):
                if allowed[s, a] and q[s, a] > q[s, best] + IMPROVEMENT_TOLERANCE * (
                    1.0 + abs(q[s, best])
                ):
                    best = a
            if best != policy[s]:
                policy[s] = best
                changed = True
        if not changed:
            return policy, values, q, iteration + 1
    return policy, values, q, -1


@njit(cache=True)
def _max_occupancy(
    transitions: np.ndarray,
    gamma: float,
    allowed: np.ndarray,
    initial: np.ndarray,
    max_iterations: int,
) -> np.ndarray:
    """``out[t] = max_pi d^pi(t)`` over policies using only ``allowed`` actions."""
    num_states, num_actions, _ = transitions.shape
    best = np.zeros(num_states)
    start = np.zeros(num_states)
    for target in range(num_states):
        rewards = np.zeros((num_states, num_actions))
        rewards[target, :] = 1.0 - gamma
        _, values, _, iterations = _policy_iteration(
            transitions, rewards, gamma, allowed, start, max_iterations
        )
        if iterations < 0:
            raise RuntimeError("policy iteration did not converge")
        best[target] = initial @ values
    return best


@njit(cache=True)
def best_response_kernel(
    joint_transitions: np.ndarray,
    joint_reward: np.ndarray,
    packed: np.ndarray,
    table: np.ndarray,
    player: int,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Jitted best response for inner loops: no input checks, arrays as the kernels take them.

    ``packed`` is the zero-padded profile (n, S, max A), ``table`` the joint-action
    table of :func:`joint_action_table`, ``joint_reward`` the player's (S, J)
    rewards. Returns the best-response actions (S,) and their values (S,).
    """
    num_actions = 0
    for j in range(table.shape[0]):
        num_actions = max(num_actions, table[j, player] + 1)
    weights = _joint_weights(packed, table, player)
    transitions, rewards = _induced_mdp_kernel(
        joint_transitions, joint_reward, weights, table[:, player].copy(), num_actions
    )
    allowed = np.ones((transitions.shape[0], num_actions), dtype=np.bool_)
    actions, values, _, iterations = _policy_iteration(
        transitions, rewards, gamma, allowed, np.zeros(transitions.shape[0]), 10_000
    )
    if iterations < 0:
        raise RuntimeError("policy iteration did not converge")
    return actions, values


def joint_action_table(game: MarkovGame) -> np.ndarray:
    """``table[j, i]``: player i's action in flat joint action j, shape (J, n)."""
    return _joint_action_table(np.asarray(game.num_actions, dtype=np.int64))


def pack_policies(game: MarkovGame, policies: Profile) -> np.ndarray:
    """A profile as one zero-padded array (n, S, max A_i), the layout the kernels take."""
    packed = np.zeros((game.num_players, game.num_states, max(game.num_actions)))
    for i, policy in enumerate(policies):
        table = np.asarray(policy)
        packed[i, :, : table.shape[1]] = table
    return packed


# ------------------------------------------------------------------- helpers
def _evaluate_kernel(kernel: np.ndarray, rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Values (S, n) of a state kernel (S, S) for reward rows (n, S)."""
    num_states = kernel.shape[0]
    return _evaluate(
        kernel.reshape(num_states, 1, num_states),
        np.zeros(num_states, dtype=np.int64),
        np.ascontiguousarray(rewards.T),
        gamma,
    )


def check_policies(game: MarkovGame, policies: Profile) -> list[np.ndarray]:
    """Validate a policy profile and return it as a list of float64 arrays.

    Raises
    ------
    ValueError
        If the number of policies, a shape, or a probability row is wrong; the
        message names the player and the offending index.
    """
    if isinstance(policies, TabularPolicy) or (isinstance(policies, np.ndarray) and policies.ndim == 2):
        policies = [policies]
    if len(policies) != game.num_players:
        raise ValueError(
            f"expected one policy per player ({game.num_players}), got {len(policies)}"
        )
    checked = []
    for i, policy in enumerate(policies):
        policy = np.asarray(policy, dtype=np.float64)
        expected = (game.num_states, game.num_actions[i])
        if policy.shape != expected:
            raise ValueError(
                f"policy of player {i} must have shape (S, A_{i}) = {expected}, got {policy.shape}"
            )
        check_distribution_rows(policy, f"policies[{i}]")
        checked.append(policy)
    return checked


def uniform_policies(game: MarkovGame) -> list[np.ndarray]:
    """The uniformly random policy of every player."""
    return [np.full((game.num_states, a), 1.0 / a) for a in game.num_actions]


def _check_player(game: MarkovGame, player: int) -> int:
    return check_int(player, "player", 0, game.num_players - 1)


# --------------------------------------------------------------------- values
def policy_kernel(game: MarkovGame, policies: Profile) -> tuple[np.ndarray, np.ndarray]:
    """State transition matrix ``P_pi`` (S, S) and rewards ``r_pi`` (n, S) of a profile."""
    policies = check_policies(game, policies)
    kernel, rewards, _, _ = _profile_kernels(
        game.joint_transitions, game.joint_rewards, pack_policies(game, policies), joint_action_table(game), False
    )
    return kernel, rewards


def values(game: MarkovGame, policies: Profile) -> np.ndarray:
    """Every player's value in every state, shape ``(n, S)``: ``(I - gamma P_pi)^-1 r_pi``."""
    kernel, rewards = policy_kernel(game, policies)
    return np.ascontiguousarray(_evaluate_kernel(kernel, rewards, game.gamma).T)


def occupancy(game: MarkovGame, policies: Profile) -> np.ndarray:
    """Normalised discounted state occupancy ``(1 - gamma) (I - gamma P_pi^T)^-1 rho_0``, shape ``(S,)``."""
    kernel, _ = policy_kernel(game, policies)
    d = (1.0 - game.gamma) * _solve_direct(
        np.ascontiguousarray(kernel.T), game.initial.copy(), game.gamma
    )
    # Rounding can leave -1e-18 where a state is unreachable.
    return np.maximum(d, 0.0)


# ------------------------------------------------------------- best response
def induced_mdp(
    game: MarkovGame, policies: Profile, player: int
) -> tuple[np.ndarray, np.ndarray]:
    """The MDP of ``player`` when the other players follow ``policies``.

    Returns
    -------
    transitions, rewards:
        ``P_i(s' | s, a_i) = E_{a_-i ~ pi_-i(s)} P(s' | s, a)``, shape ``(S, A_i, S)``,
        and ``r_i(s, a_i)`` likewise, shape ``(S, A_i)``. The player's own entry
        of ``policies`` is ignored.
    """
    policies = check_policies(game, policies)
    player = _check_player(game, player)
    table = joint_action_table(game)
    weights = _joint_weights(pack_policies(game, policies), table, player)
    return _induced_mdp_kernel(
        game.joint_transitions,
        np.ascontiguousarray(game.joint_rewards[player]),
        weights,
        np.ascontiguousarray(table[:, player]),
        game.num_actions[player],
    )


def solve_mdp(
    transitions: np.ndarray,
    rewards: np.ndarray,
    gamma: float,
    allowed: np.ndarray | None = None,
    max_iterations: int = 10_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve a tabular MDP exactly by policy iteration.

    Parameters
    ----------
    transitions:
        Shape ``(S, A, S)``, row-stochastic.
    rewards:
        Shape ``(S, A)``.
    gamma:
        Discount factor in ``[0, 1)``.
    allowed:
        Optional boolean mask ``(S, A)`` of usable actions (at least one per state).
    max_iterations:
        Bound on policy-improvement steps (policy iteration needs few).

    Returns
    -------
    policy, values, q:
        Deterministic optimal policy as action indices ``(S,)``, its values ``(S,)``
        and its Q values ``(S, A)``.
    """
    transitions = np.ascontiguousarray(transitions, dtype=np.float64)
    rewards = np.ascontiguousarray(rewards, dtype=np.float64)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2] or 0 in transitions.shape:
        raise ValueError(f"transitions must have shape (S, A, S), got {transitions.shape}")
    if rewards.shape != transitions.shape[:2]:
        raise ValueError(f"rewards must have shape {transitions.shape[:2]}, got {rewards.shape}")
    check_distribution_rows(transitions, "transitions")
    check_finite_array(rewards, "rewards")
    gamma = check_discount(gamma)
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    if allowed is None:
        allowed = np.ones(rewards.shape, dtype=np.bool_)
    allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
    if allowed.shape != rewards.shape or not allowed.any(axis=1).all():
        raise ValueError("allowed must have shape (S, A) with at least one action per state")
    policy, state_values, q, iterations = _policy_iteration(
        transitions, rewards, gamma, allowed, np.zeros(rewards.shape[0]), max_iterations
    )
    if iterations < 0:
        raise RuntimeError(f"policy iteration did not converge in {max_iterations} steps")
    return policy, state_values, q


class BestResponse(NamedTuple):
    """A best response: deterministic ``policy`` (S, A_i) and its ``value`` at the initial distribution."""

    policy: np.ndarray
    value: float


def _one_hot(actions: np.ndarray, num_actions: int) -> np.ndarray:
    policy = np.zeros((actions.shape[0], num_actions))
    policy[np.arange(actions.shape[0]), actions] = 1.0
    return policy


def best_response(game: MarkovGame, policies: Profile, player: int) -> BestResponse:
    """Exact best response of ``player`` against the others' ``policies``.

    Solves the induced MDP by policy iteration; ``value`` is the best-response
    value at the initial distribution, ``max_pi_i V_i^{(pi_i, pi_-i)}(rho_0)``.
    """
    policies = check_policies(game, policies)
    player = _check_player(game, player)
    actions, state_values = best_response_kernel(
        game.joint_transitions,
        np.ascontiguousarray(game.joint_rewards[player]),
        pack_policies(game, policies),
        joint_action_table(game),
        player,
        game.gamma,
    )
    return BestResponse(_one_hot(actions, game.num_actions[player]), float(game.initial @ state_values))


class NashGap(NamedTuple):
    """``total = sum_i per_player[i]``; ``per_player[i] = max_pi_i' V_i(pi_i', pi_-i) - V_i(pi)`` at rho_0."""

    total: float
    per_player: np.ndarray


def nash_gap(game: MarkovGame, policies: Profile) -> NashGap:
    """Nash gap of a policy profile: the sum over players of best-response improvements.

    Each improvement is non-negative up to solver rounding (about 1e-12); for a
    two-player zero-sum game the total equals
    ``max_mu' V(mu', nu) - min_nu' V(mu, nu')``.
    """
    policies = check_policies(game, policies)
    kernel, rewards, induced_transitions, induced_rewards = _profile_kernels(
        game.joint_transitions, game.joint_rewards, pack_policies(game, policies), joint_action_table(game), True
    )
    profile_values = _evaluate_kernel(kernel, rewards, game.gamma)
    improvements = np.empty(game.num_players)
    for i, count in enumerate(game.num_actions):
        transitions = np.ascontiguousarray(induced_transitions[i, :, :count])
        allowed = np.ones((game.num_states, count), dtype=np.bool_)
        # Starting from the greedy improvement of pi_i saves an evaluation.
        _, br_values, _, iterations = _policy_iteration(
            transitions,
            np.ascontiguousarray(induced_rewards[i, :, :count]),
            game.gamma,
            allowed,
            np.ascontiguousarray(profile_values[:, i]),
            10_000,
        )
        if iterations < 0:
            raise RuntimeError("policy iteration did not converge")
        improvements[i] = game.initial @ (br_values - profile_values[:, i])
    return NashGap(float(improvements.sum()), improvements)


# ------------------------------------------------------------ concentrability
class Concentrability(NamedTuple):
    """Concentrability coefficients of an expert profile (``inf`` where unbounded).

    ``single_policy``: max over players and best-response deviations of
    ``||d^{(pi_i', pi_E,-i)} / d^E||_inf``; ``all_policy``: the same max over all
    deviations. ``per_player_*`` hold each player's term.
    """

    single_policy: float
    all_policy: float
    per_player_single: np.ndarray
    per_player_all: np.ndarray


def _max_ratio(numerator: np.ndarray, expert: np.ndarray) -> float:
    reached = numerator > ZERO_OCCUPANCY
    if np.any(reached & (expert <= ZERO_OCCUPANCY)):
        return float("inf")
    if not np.any(reached):
        return 0.0
    return float(np.max(numerator[reached] / expert[reached]))


def concentrability(
    game: MarkovGame, expert_policies: Profile, max_iterations: int = 10_000
) -> Concentrability:
    """Single-policy and all-policy deviation concentrability of an expert profile.

    For each player and target state ``t``, ``max_pi_i' d^{(pi_i', pi_E,-i)}(t)``
    is the optimal value of the induced MDP with reward ``(1 - gamma) 1{s = t}``;
    for the single-policy coefficient the deviation may only use actions that
    are optimal (Q within :data:`OPTIMAL_ACTION_TOLERANCE`) in the player's
    best-response MDP. Ratios use ``x / 0 = inf`` for ``x > 0`` and ``0 / 0 = 0``,
    with occupancies below :data:`ZERO_OCCUPANCY` counted as zero. ``max_iterations``
    (>= 1) bounds every policy iteration.
    """
    expert_policies = check_policies(game, expert_policies)
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    expert_occupancy = occupancy(game, expert_policies)
    single, full = [], []
    for i in range(game.num_players):
        transitions, rewards = induced_mdp(game, expert_policies, i)
        _, _, q = solve_mdp(transitions, rewards, game.gamma, max_iterations=max_iterations)
        optimal = q >= q.max(axis=1, keepdims=True) - OPTIMAL_ACTION_TOLERANCE
        everything = np.ones_like(optimal)
        for allowed, out in ((optimal, single), (everything, full)):
            reach = _max_occupancy(transitions, game.gamma, allowed, game.initial.copy(), max_iterations)
            out.append(_max_ratio(reach, expert_occupancy))
    single_arr, full_arr = np.array(single), np.array(full)
    return Concentrability(float(single_arr.max()), float(full_arr.max()), single_arr, full_arr)


# ------------------------------------------------------- zero-sum equilibrium
def solve_matrix_game(payoff: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Value and optimal mixed strategies of a zero-sum matrix game (row player maximises).

    One linear program (scipy's HiGHS): ``max v`` s.t. ``payoff^T x >= v``,
    ``x`` in the simplex. The column player's strategy is the LP's dual.
    """
    payoff = check_finite_array(payoff, "payoff")
    if payoff.ndim != 2 or 0 in payoff.shape:
        raise ValueError(f"payoff must be a non-empty matrix (A, B), got shape {payoff.shape}")
    num_rows, num_cols = payoff.shape
    objective = np.zeros(num_rows + 1)
    objective[-1] = -1.0
    constraints = np.hstack([-payoff.T, np.ones((num_cols, 1))])
    simplex = np.ones((1, num_rows + 1))
    simplex[0, -1] = 0.0
    bounds = [(0.0, None)] * num_rows + [(None, None)]
    result = linprog(
        objective,
        A_ub=constraints,
        b_ub=np.zeros(num_cols),
        A_eq=simplex,
        b_eq=np.ones(1),
        bounds=bounds,
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"matrix-game LP failed: {result.message}")
    row = np.clip(result.x[:num_rows], 0.0, None)
    col = np.clip(-result.ineqlin.marginals, 0.0, None)
    return float(result.x[-1]), row / row.sum(), col / col.sum()


class ZeroSumEquilibrium(NamedTuple):
    """Result of :func:`zero_sum_equilibrium`."""

    policies: list[np.ndarray]
    values: np.ndarray
    nash_gap: float
    iterations: int


def zero_sum_equilibrium(
    game: MarkovGame, tol: float = 1e-8, max_iterations: int = 100_000
) -> ZeroSumEquilibrium:
    """Nash equilibrium of a two-player zero-sum game by Shapley iteration.

    Each iteration solves the matrix game ``Q(s)[a, b] = r(s, a, b) + gamma
    sum_s' P(s' | s, a, b) V(s')`` of every state by linear programming and sets
    ``V(s)`` to its value. It stops as soon as the exact Nash gap of the
    per-state equilibrium strategies is at most ``tol``, so the returned
    profile is certified, not just converged.

    Parameters
    ----------
    game:
        A two-player zero-sum game.
    tol:
        Nash gap (> 0) at which to stop.
    max_iterations:
        Shapley iterations (>= 1) before giving up with a ``RuntimeError``.

    Returns
    -------
    ZeroSumEquilibrium
        ``policies = [mu, nu]``, the max player's ``values`` (S,) of that profile,
        its exact ``nash_gap`` and the number of Shapley ``iterations``.
    """
    if game.num_players != 2 or not game.is_zero_sum():
        raise ValueError("zero_sum_equilibrium needs a two-player zero-sum game (rewards[1] == -rewards[0])")
    tol = check_positive(tol, "tol")
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    num_states = game.num_states
    reward = game.rewards[0]
    state_values = np.zeros(num_states)
    mu = np.zeros((num_states, game.num_actions[0]))
    nu = np.zeros((num_states, game.num_actions[1]))
    for iteration in range(1, max_iterations + 1):
        q = reward + game.gamma * game.transitions @ state_values
        for s in range(num_states):
            state_values[s], mu[s], nu[s] = solve_matrix_game(q[s])
        gap = nash_gap(game, [mu, nu]).total
        if gap <= tol:
            profile_values = values(game, [mu, nu])[0]
            return ZeroSumEquilibrium([mu.copy(), nu.copy()], profile_values, gap, iteration)
    raise RuntimeError(
        f"Shapley iteration did not reach Nash gap {tol:g} in {max_iterations} iterations "
        f"(last gap {gap:.3g})"
    )
