"""Simulator interaction for the MAIL algorithms (numba).

Profiles are packed as (n, S, max A) arrays (:func:`agents.tabular.pack_policies`);
the simulator is the game's own model, used only to sample next states.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from agents.sampling import categorical


@njit(cache=True)
def _step(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    state: int,
    rng: np.random.Generator,
) -> int:
    joint = 0
    for i in range(packed.shape[0]):
        action = categorical(packed[i, state, : num_actions[i]], rng.random())
        joint = joint * num_actions[i] + action
    return categorical(joint_transitions[state, joint], rng.random())


@njit(cache=True)
def sample_occupancy_states(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """``count`` states ``s ~ d^pi`` by rolling the profile Geometric(1 - gamma) - 1 steps.

    Returns the states and the number of simulator steps taken.
    """
    states = np.empty(count, dtype=np.int64)
    steps = 0
    for n in range(count):
        state = categorical(initial, rng.random())
        length = rng.geometric(1.0 - gamma) - 1
        for _ in range(length):
            state = _step(joint_transitions, packed, num_actions, state, rng)
        states[n] = state
        steps += length
    return states, steps


@njit(cache=True)
def episode(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    player: int,
    player_actions: np.ndarray,
    horizon: int,
    counts: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One ``horizon``-step episode in which ``player`` follows the deterministic
    ``player_actions`` (S,) and the others their ``packed`` policies.

    Adds every observed ``(s, a_player, s')`` to ``counts`` (S, A_player, S) and
    returns the visited states (horizon,).
    """
    visited = np.empty(horizon, dtype=np.int64)
    state = categorical(initial, rng.random())
    for t in range(horizon):
        visited[t] = state
        joint = 0
        for i in range(packed.shape[0]):
            if i == player:
                action = player_actions[state]
            else:
                action = categorical(packed[i, state, : num_actions[i]], rng.random())
            joint = joint * num_actions[i] + action
        following = categorical(joint_transitions[state, joint], rng.random())
        counts[state, player_actions[state], following] += 1.0
        state = following
    return visited


@njit(cache=True)
def sample_trajectory_states(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``count`` states: every state of consecutive rollouts of Geometric(1 - gamma) - 1 steps."""
    states = np.empty(count, dtype=np.int64)
    n = 0
    while n < count:
        state = categorical(initial, rng.random())
        length = rng.geometric(1.0 - gamma) - 1
        for t in range(length + 1):
            states[n] = state
            n += 1
            if n == count:
                break
            if t < length:
                state = _step(joint_transitions, packed, num_actions, state, rng)
    return states


def sample_with_deviation(
    game,
    packed: np.ndarray,
    player: int,
    actions: np.ndarray,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """``count`` states from the occupancy of the profile where ``player`` plays the
    deterministic ``actions`` (S,) instead of its packed policy; returns states and steps."""
    deviation = packed.copy()
    deviation[player] = 0.0
    deviation[player, np.arange(game.num_states), actions] = 1.0
    return sample_occupancy_states(
        game.joint_transitions, deviation, np.asarray(game.num_actions, dtype=np.int64),
        np.ascontiguousarray(game.initial), game.gamma, count, rng,
    )
