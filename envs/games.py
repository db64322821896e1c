"""Constructors for the built-in tabular Markov games."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from envs.markov_game import MarkovGame
from envs.validation import (
    check_discount, check_finite, check_finite_array, check_positive_int, check_probability, check_seed,
)


def matrix_game(payoff: np.ndarray, gamma: float = 0.9) -> MarkovGame:
    """A repeated two-player zero-sum matrix game: one absorbing state.

    Parameters
    ----------
    payoff:
        Row player's payoff matrix, shape ``(A, B)``; the column player gets its negative.
    gamma:
        Discount factor; a stationary policy's value is ``payoff value / (1 - gamma)``.
    """
    payoff = check_finite_array(payoff, "payoff")
    if payoff.ndim != 2 or 0 in payoff.shape:
        raise ValueError(f"payoff must be a non-empty matrix (A, B), got shape {payoff.shape}")
    num_rows, num_cols = payoff.shape
    transitions = np.ones((1, num_rows, num_cols, 1))
    rewards = np.stack([payoff, -payoff])[:, None]
    return MarkovGame(transitions, rewards, np.ones(1), gamma)


def matching_pennies(gamma: float = 0.9) -> MarkovGame:
    """Matching pennies: the row player wins 1 when the coins match. Value 0, equilibrium uniform."""
    return matrix_game(np.array([[1.0, -1.0], [-1.0, 1.0]]), gamma)


def rock_paper_scissors(gamma: float = 0.9) -> MarkovGame:
    """Rock-paper-scissors (actions rock, paper, scissors). Value 0, equilibrium uniform."""
    payoff = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    return matrix_game(payoff, gamma)


def random_game(
    num_states: int,
    num_actions: int | Sequence[int],
    num_players: int = 2,
    zero_sum: bool = True,
    seed: int | None = None,
    gamma: float = 0.9,
) -> MarkovGame:
    """A random game: Dirichlet(1) transitions, U[-1, 1] rewards, uniform initial state.

    Parameters
    ----------
    num_states:
        Number of states ``S``.
    num_actions:
        Actions per player: one int for all players, or one per player.
    num_players:
        Number of players ``n``.
    zero_sum:
        Two players only: player 2's reward is the negative of player 1's.
    seed:
        Seed of the ``numpy.random.Generator`` that draws the game.
    gamma:
        Discount factor.
    """
    num_states = check_positive_int(num_states, "num_states")
    num_players = check_positive_int(num_players, "num_players")
    if np.ndim(num_actions) == 0:
        actions = (check_positive_int(num_actions, "num_actions"),) * num_players
    else:
        actions = tuple(check_positive_int(a, f"num_actions[{i}]") for i, a in enumerate(num_actions))
        if len(actions) != num_players:
            raise ValueError(f"num_actions has {len(actions)} entries for {num_players} players")
    if zero_sum and num_players != 2:
        raise ValueError(f"zero_sum games need exactly 2 players, got {num_players}")
    gamma = check_discount(gamma)
    rng = np.random.default_rng(check_seed(seed))
    transitions = rng.dirichlet(np.ones(num_states), size=(num_states, *actions))
    if zero_sum:
        reward = rng.uniform(-1.0, 1.0, size=(num_states, *actions))
        rewards = np.stack([reward, -reward])
    else:
        rewards = rng.uniform(-1.0, 1.0, size=(num_players, num_states, *actions))
    return MarkovGame(transitions, rewards, np.full(num_states, 1.0 / num_states), gamma)


#: Where the concentrability of :func:`lower_bound_expert`'s family is smallest (see there):
#: the weight solving ``lambda = 1 - lambda^2``, and the golden ratio, ``1 / lambda`` there.
LOWER_BOUND_MIN_WEIGHT = (math.sqrt(5.0) - 1.0) / 2.0
LOWER_BOUND_MIN_CONCENTRABILITY = (1.0 + math.sqrt(5.0)) / 2.0

#: State names of :func:`lower_bound_game`, in index order.
LOWER_BOUND_STATES = ("s0", "s1", "s2", "s3", "X1", "X2", "Cp")
S0, S1, S2, S3, X1, X2, CP = range(7)


def lower_bound_game(
    c: float = 0.5, x1_reward: float = 1.0, gamma: float = 0.9
) -> MarkovGame:
    """The two-player zero-sum lower-bound game of the MAIL paper (Fig. 1, reconstructed).

    States ``s0`` (start), ``s1``, ``s2``, ``s3``, ``X1``, ``X2``, ``Cp``
    (indices in :data:`LOWER_BOUND_STATES`); both players have actions
    ``a1, a2, a3`` (indices 0, 1, 2). From ``s0``, ``(a3, b3)`` leads to ``s2`` and
    every other pair to ``s1``. From ``s1``, ``(a1, b1)`` and ``(a2, b2)`` lead to
    ``X1``, ``(a2, b1)`` and ``(a1, b2)`` to ``X2``, anything else to ``Cp``.
    ``s2`` leads to ``s3``; ``s3``, ``X1``, ``X2``, ``Cp`` are absorbing.
    The max player earns ``x1_reward`` per step in ``X1`` and ``-c`` per step
    in ``X2`` (0 elsewhere); the min player earns the negative.

    The exact payoffs of the paper were not available; with ``c = 1`` the uniform
    policy at ``s1`` is itself an equilibrium, so the default is ``c = 0.5``.
    """
    c, x1_reward = check_finite(c, "c"), check_finite(x1_reward, "x1_reward")
    num_states, num_actions = len(LOWER_BOUND_STATES), 3
    transitions = np.zeros((num_states, num_actions, num_actions, num_states))
    transitions[S0, :, :, S1] = 1.0
    transitions[S0, 2, 2, :] = 0.0
    transitions[S0, 2, 2, S2] = 1.0
    transitions[S1, :, :, CP] = 1.0
    for a, b, target in ((0, 0, X1), (1, 1, X1), (1, 0, X2), (0, 1, X2)):
        transitions[S1, a, b, :] = 0.0
        transitions[S1, a, b, target] = 1.0
    transitions[S2, :, :, S3] = 1.0
    for absorbing in (S3, X1, X2, CP):
        transitions[absorbing, :, :, absorbing] = 1.0
    reward = np.zeros((num_states, num_actions, num_actions))
    reward[X1] = x1_reward
    reward[X2] = -c
    initial = np.zeros(num_states)
    initial[S0] = 1.0
    return MarkovGame(transitions, np.stack([reward, -reward]), initial, gamma)


def lower_bound_expert(weight_black: float) -> list[np.ndarray]:
    """The expert family of the lower-bound game.

    Both players mix at ``s0``: ``a3``/``b3`` (the "black" path ``s0 -> s2 -> s3``)
    with probability ``weight_black`` and ``a1``/``b1`` (the "blue" path
    ``s0 -> s1 -> Cp``) otherwise; both play ``(a3, b3)`` at ``s1`` and ``a1``/``b1``
    elsewhere (those states' actions do not matter). ``weight_black = 1`` never
    visits ``s1``.

    Concentrability of the family (``gamma > 0``, any ``c`` and ``x1_reward``): against the
    other expert, a player who switches to ``a3`` at ``s0`` reaches ``s2`` (and ``s3``) with
    probability ``lambda = weight_black`` where the expert profile does with ``lambda^2``,
    one who switches to ``a1`` reaches ``s1`` surely where the profile does with
    ``1 - lambda^2``, and no deviation reaches ``X1`` or ``X2`` (the other plays ``b3`` at
    ``s1``). Every deviation earns 0, so all are best responses and both coefficients are
    ``C(lambda) = max(1 / lambda, 1 / (1 - lambda^2))`` for ``0 < lambda < 1``
    (``C(0) = 1``: no one can reach ``s2`` alone; ``C(1) = inf``). Over ``0 < lambda < 1``
    it is smallest where the two terms meet, at :data:`LOWER_BOUND_MIN_WEIGHT`, with
    ``C =`` :data:`LOWER_BOUND_MIN_CONCENTRABILITY` (the golden ratio, about 1.618), and
    grows to ``inf`` on either side.
    """
    weight_black = check_probability(weight_black, "weight_black")
    policy = np.zeros((len(LOWER_BOUND_STATES), 3))
    policy[:, 0] = 1.0
    policy[S0] = [1.0 - weight_black, 0.0, weight_black]
    policy[S1] = [0.0, 0.0, 1.0]
    return [policy, policy.copy()]


#: Moves of :func:`grid_race`, in action-index order, as (row, column) steps.
GRID_RACE_MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def grid_race(
    size: int = 3,
    goal: tuple[int, int] = (0, 2),
    starts: tuple[tuple[int, int], tuple[int, int]] = ((1, 0), (2, 1)),
    gamma: float = 0.9,
) -> MarkovGame:
    """A two-player zero-sum race to a goal cell on a grid (the MAIL-WARM paper's grid world, as we read it).

    Cells are ``(row, column)`` with row 0 at the top; a state is the two players' distinct cells,
    index ``p1 * (C - 1) + (p2 if p2 < p1 else p2 - 1)`` over the ``C = size^2`` cell indices
    ``row * size + column`` (``C (C - 1)`` states, 72 for the default 3 x 3). Both players move at
    once, one of :data:`GRID_RACE_MOVES` each (actions 0-3: up, down, left, right); a move into a
    wall stays put. Collisions: when both players would land on the same cell, or would swap
    cells, both stay put (moving into the cell the other is leaving is allowed). The first to
    reach ``goal`` ends the race: every state with a player on the goal is absorbing and pays
    player 1 ``+1`` per step if player 1 is there, ``-1`` if player 2 is (player 2 gets the
    negative), so the value lies in ``[-1/(1 - gamma), 1/(1 - gamma)]``.

    With the defaults both players are three moves from the goal; the value at the start is 0,
    and a Nash equilibrium found by Shapley iteration visits only a handful of states, so
    behavioural cloning of its self-play never sees where a deviating player leads.
    """
    size = check_positive_int(size, "size")
    if size < 2:
        raise ValueError(f"size must be at least 2 (two players need two cells), got {size}")
    cells = [(r, c) for r in range(size) for c in range(size)]

    def cell_index(cell, name: str) -> int:
        if (not isinstance(cell, (tuple, list)) or len(cell) != 2
                or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in cell)
                or not all(0 <= x < size for x in cell)):
            raise ValueError(f"{name} must be a (row, column) cell of the {size} x {size} grid, got {cell!r}")
        return int(cell[0]) * size + int(cell[1])

    goal_cell = cell_index(goal, "goal")
    if not isinstance(starts, (tuple, list)) or len(starts) != 2:
        raise ValueError(f"starts must be the two players' (row, column) cells, got {starts!r}")
    start = tuple(cell_index(s, f"starts[{i}]") for i, s in enumerate(starts))
    if start[0] == start[1] or goal_cell in start:
        raise ValueError(f"starts must be two distinct cells off the goal, got {starts!r} with goal {goal!r}")
    gamma = check_discount(gamma)
    num_cells = len(cells)

    def state_index(p1: int, p2: int) -> int:
        return p1 * (num_cells - 1) + (p2 if p2 < p1 else p2 - 1)

    steps = list(GRID_RACE_MOVES.values())

    def move(cell: int, action: int) -> int:
        row, col = cells[cell]
        d_row, d_col = steps[action]
        row, col = row + d_row, col + d_col
        return row * size + col if 0 <= row < size and 0 <= col < size else cell

    num_states, num_moves = num_cells * (num_cells - 1), len(GRID_RACE_MOVES)
    transitions = np.zeros((num_states, num_moves, num_moves, num_states))
    reward = np.zeros((num_states, num_moves, num_moves))
    for p1 in range(num_cells):
        for p2 in range(num_cells):
            if p1 == p2:
                continue
            s = state_index(p1, p2)
            if goal_cell in (p1, p2):
                transitions[s, :, :, s] = 1.0
                reward[s] = 1.0 if p1 == goal_cell else -1.0
                continue
            for a in range(num_moves):
                for b in range(num_moves):
                    t1, t2 = move(p1, a), move(p2, b)
                    if t1 == t2 or (t1 == p2 and t2 == p1):
                        t1, t2 = p1, p2
                    transitions[s, a, b, state_index(t1, t2)] = 1.0
    initial = np.zeros(num_states)
    initial[state_index(*start)] = 1.0
    return MarkovGame(transitions, np.stack([reward, -reward]), initial, gamma)
