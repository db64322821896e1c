"""Tabular MDPs (one-player :class:`~envs.markov_game.MarkovGame`) for imitation experiments."""

from __future__ import annotations

import numpy as np

from envs.markov_game import MarkovGame
from envs.validation import check_discount, check_int, check_interval, check_probability, check_seed

#: Draws of walls :func:`random_gridworld` tries before it gives up on a start and goal that connect.
MAX_GRID_DRAWS = 10_000


def mdp(transitions: np.ndarray, rewards: np.ndarray, initial: np.ndarray, gamma: float) -> MarkovGame:
    """An MDP from ``transitions`` (S, A, S) and ``rewards`` (S, A)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return MarkovGame(transitions, rewards[None], initial, gamma)


def two_state_mdp(num_actions: int = 20, gamma: float = 0.99) -> MarkovGame:
    """The hard-exploration MDP of the SOAR paper's tabular experiment.

    Reward 1 in state 0 and 0 in state 1; start in state 0. In state 0,
    action 0 stays with probability 0.999899 and every other action with
    0.989899; state 1 stays with 0.989899 whatever the action. Only one of
    ``num_actions`` actions is good, and its advantage shows only in rare
    transitions.
    """
    num_actions = check_int(num_actions, "num_actions", minimum=2)
    gamma = check_discount(gamma)
    stay_good, stay_bad = 0.999899, 0.989899
    transitions = np.zeros((2, num_actions, 2))
    transitions[0, :, 0] = stay_bad
    transitions[0, 0, 0] = stay_good
    transitions[0, :, 1] = 1.0 - transitions[0, :, 0]
    transitions[1, :, 1] = stay_bad
    transitions[1, :, 0] = 1.0 - stay_bad
    rewards = np.zeros((2, num_actions))
    rewards[0] = 1.0
    return mdp(transitions, rewards, np.array([1.0, 0.0]), gamma)


def river_swim(num_states: int = 6, gamma: float = 0.95) -> MarkovGame:
    """RiverSwim (Strehl and Littman, 2008), rewards scaled to [0, 1].

    A chain of ``num_states`` states, start in state 0; action 0 (left) moves
    left surely, action 1 (right) swims against the current: in the middle it
    moves right with probability 0.35, stays with 0.6 and drifts left with
    0.05; in state 0 it moves right with 0.6 (stays 0.4); in the last state it
    stays with 0.6 (drifts left with 0.4). Reward 0.005 for ``left`` in state 0
    and 1 for ``right`` in the last state: a myopic learner settles for the
    small reward.
    """
    num_states = check_int(num_states, "num_states", minimum=3)
    gamma = check_discount(gamma)
    S = num_states
    transitions = np.zeros((S, 2, S))
    for s in range(S):
        transitions[s, 0, max(s - 1, 0)] = 1.0
    transitions[0, 1, 0], transitions[0, 1, 1] = 0.4, 0.6
    for s in range(1, S - 1):
        transitions[s, 1, s - 1], transitions[s, 1, s], transitions[s, 1, s + 1] = 0.05, 0.6, 0.35
    transitions[S - 1, 1, S - 2], transitions[S - 1, 1, S - 1] = 0.4, 0.6
    rewards = np.zeros((S, 2))
    rewards[0, 0] = 0.005
    rewards[S - 1, 1] = 1.0
    return mdp(transitions, rewards, np.eye(S)[0], gamma)


#: Moves of :func:`random_gridworld`'s actions: up, right, down, left.
GRID_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def random_gridworld(
    size: int = 5, slip: float = 0.1, wall_fraction: float = 0.15, gamma: float = 0.95, seed: int | None = 0
) -> MarkovGame:
    """A random ``size`` x ``size`` gridworld.

    Four actions (up, right, down, left); with probability ``slip`` the move is
    uniformly random instead. Moving into a wall or the border stays put. A
    seeded random set of wall cells (about ``wall_fraction`` of the grid), a
    start cell and a goal cell, all reachable from the start; reward 1 for
    every step spent in the goal cell. States index the free cells row by row.
    """
    size = check_int(size, "size", minimum=2)
    slip = check_probability(slip, "slip")
    wall_fraction = check_interval(wall_fraction, "wall_fraction", 0.0, 1.0, high_open=True)
    gamma = check_discount(gamma)
    rng = np.random.default_rng(check_seed(seed))
    for _ in range(MAX_GRID_DRAWS):
        walls = rng.random((size, size)) < wall_fraction
        free = np.argwhere(~walls)
        if len(free) < 2:
            continue
        start, goal = rng.choice(len(free), size=2, replace=False)
        if _reachable(walls, tuple(free[start]), tuple(free[goal])):
            break
    else:
        # Dense walls on a small grid almost never leave a connected start and goal: refuse rather than loop.
        raise ValueError(f"no {size} x {size} grid with wall_fraction = {wall_fraction} connected a start and a goal "
                         f"in {MAX_GRID_DRAWS} draws; use a smaller wall_fraction or a larger size")
    index = {tuple(cell): i for i, cell in enumerate(free)}
    S = len(free)
    transitions = np.zeros((S, 4, S))
    for (r, c), s in index.items():
        for action in range(4):
            for move, (dr, dc) in enumerate(GRID_MOVES):
                probability = slip / 4 + (1 - slip) * (move == action)
                target = index.get((r + dr, c + dc), s)
                transitions[s, action, target] += probability
    rewards = np.zeros((S, 4))
    rewards[goal] = 1.0
    return mdp(transitions, rewards, np.eye(S)[start], gamma)


def _reachable(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> bool:
    size = walls.shape[0]
    seen, frontier = {start}, [start]
    while frontier:
        r, c = frontier.pop()
        for dr, dc in GRID_MOVES:
            cell = (r + dr, c + dc)
            if 0 <= cell[0] < size and 0 <= cell[1] < size and not walls[cell] and cell not in seen:
                seen.add(cell)
                frontier.append(cell)
    return goal in seen
