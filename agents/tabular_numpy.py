"""Plain vectorised numpy versions of the exact solvers in :mod:`agents.tabular`.

Written independently of the jitted kernels (einsum over the unflattened
tensors instead of loops over flat joint actions) and kept deliberately
simple: the tests use it as a second implementation to check the numbers,
and ``scripts/bench_tabular.py`` times the jitted solvers against it.
"""

from __future__ import annotations

import string
from typing import Sequence

import numpy as np

from envs.markov_game import MarkovGame
from envs.validation import check_discount, check_int, check_positive_int


def joint_policy(policies: Sequence[np.ndarray]) -> np.ndarray:
    """Product policy over joint actions, shape ``(S, A_1, ..., A_n)``."""
    letters = string.ascii_lowercase[: len(policies)]
    spec = ",".join(f"s{c}" for c in letters) + "->s" + letters
    return np.einsum(spec, *policies)


def policy_kernel(game: MarkovGame, policies: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """State kernel ``P_pi`` (S, S) and rewards ``r_pi`` (n, S) of a profile."""
    joint = joint_policy(policies).reshape(game.num_states, -1)
    kernel = np.einsum("sj,sjt->st", joint, game.joint_transitions)
    rewards = np.einsum("sj,isj->is", joint, game.joint_rewards)
    return kernel, rewards


def values(game: MarkovGame, policies: Sequence[np.ndarray]) -> np.ndarray:
    """Values of every player, shape ``(n, S)``."""
    kernel, rewards = policy_kernel(game, policies)
    system = np.eye(game.num_states) - game.gamma * kernel
    return np.linalg.solve(system, rewards.T).T


def occupancy(game: MarkovGame, policies: Sequence[np.ndarray]) -> np.ndarray:
    """Normalised discounted state occupancy from the initial distribution."""
    kernel, _ = policy_kernel(game, policies)
    system = np.eye(game.num_states) - game.gamma * kernel.T
    return (1.0 - game.gamma) * np.linalg.solve(system, game.initial)


def induced_mdp(
    game: MarkovGame, policies: Sequence[np.ndarray], player: int
) -> tuple[np.ndarray, np.ndarray]:
    """Player ``player``'s MDP with the other players folded into the dynamics."""
    num_players = game.num_players
    player = check_int(player, "player", 0, num_players - 1)
    others = [i for i in range(num_players) if i != player]
    # Move the player's axis next to the state axis, then contract the rest.
    transitions = np.moveaxis(game.transitions, player + 1, 1)
    rewards = np.moveaxis(game.rewards[player], player + 1, 1)
    if others:
        weights = joint_policy([policies[i] for i in others])
        letters = string.ascii_uppercase[: len(others)]  # lower case s, a, t are taken
        transitions = np.einsum(f"sa{letters}t,s{letters}->sat", transitions, weights)
        rewards = np.einsum(f"sa{letters},s{letters}->sa", rewards, weights)
    return transitions, rewards


def solve_mdp(
    transitions: np.ndarray, rewards: np.ndarray, gamma: float, max_iterations: int = 10_000
) -> tuple[np.ndarray, np.ndarray]:
    """Howard's policy iteration; returns the deterministic policy (S,) and its values (S,)."""
    gamma = check_discount(gamma)
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    num_states = rewards.shape[0]
    states = np.arange(num_states)
    policy = rewards.argmax(axis=1)
    for _ in range(max_iterations):
        system = np.eye(num_states) - gamma * transitions[states, policy]
        state_values = np.linalg.solve(system, rewards[states, policy])
        q = rewards + gamma * transitions @ state_values
        incumbent = q[states, policy]
        improves = q.max(axis=1) > incumbent + 1e-12 * (1.0 + np.abs(incumbent))
        if not improves.any():
            return policy, state_values
        policy = np.where(improves, q.argmax(axis=1), policy)
    raise RuntimeError("policy iteration did not converge")


def best_response(
    game: MarkovGame, policies: Sequence[np.ndarray], player: int
) -> tuple[np.ndarray, float]:
    """Best response as action indices (S,) and its value at the initial distribution."""
    transitions, rewards = induced_mdp(game, policies, player)
    policy, state_values = solve_mdp(transitions, rewards, game.gamma)
    return policy, float(game.initial @ state_values)


def nash_gap(game: MarkovGame, policies: Sequence[np.ndarray]) -> tuple[float, np.ndarray]:
    """Total Nash gap and per-player improvements at the initial distribution."""
    current = values(game, policies) @ game.initial
    gaps = np.array(
        [best_response(game, policies, i)[1] - current[i] for i in range(game.num_players)]
    )
    return float(gaps.sum()), gaps
