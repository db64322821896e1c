"""The pieces of the MAIL loop that BC, MAIL-BRO and MURMAIL share.

Every interactive algorithm here runs the same outer loop: pick an opponent for
each player, sample states where that opponent's response drives play, query
the expert there, take a mirror-descent step on the squared imitation error,
and keep the last, average and a uniformly sampled iterate, logging exact Nash
gaps on a log-spaced schedule.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit

from agents import tabular
from agents.interface import PolicyProfile
from agents.sampling import sample_occupancy
from envs.markov_game import MarkovGame
from envs.validation import (
    check_discount, check_horizon, check_int, check_non_negative_int, check_positive, check_positive_int,
)
from mail.result import MailHistory, MailResult


def check_step_size(step_size: float | None) -> float | None:
    """``None`` (the default step) or a finite number > 0."""
    return None if step_size is None else check_positive(step_size, "step_size")


def default_step_size(game: MarkovGame, num_iterations: int) -> float:
    """``eta = sqrt(2 |S| log(max_i A_i) / K)`` (the theory's choice for K >= 0 iterations; K = 0 counts as 1)."""
    num_iterations = check_non_negative_int(num_iterations, "num_iterations")
    return float(np.sqrt(2.0 * game.num_states * np.log(max(max(game.num_actions), 2)) / max(num_iterations, 1)))


def horizon_multiple(gamma: float, multiple: int, name: str) -> int:
    """``ceil(multiple / (1 - gamma))`` steps, for ``gamma`` as written in decimal.

    In floating point ``1 - 0.9`` is ``0.09999999999999998``, and ``3 / (1 - 0.9)`` rounds up to
    31; the discount is read as the decimal it prints as (``repr``: 0.9 is 9/10) and the
    ceiling taken exactly, so with ``multiple = 3`` 0.9 gives 30, 0.99 gives 300 and 0.8 gives 15.
    """
    exact = Fraction(repr(check_discount(gamma)))
    return check_horizon(math.ceil(multiple / (1 - exact)), name)


def draw_opponent(player: int, num_players: int, rng: np.random.Generator) -> int:
    """The other player of a two-player game; with more, one of the others uniformly."""
    num_players = check_int(num_players, "num_players", minimum=2)
    player = check_int(player, "player", 0, num_players - 1)
    if num_players == 2:
        return 1 - player
    return int(rng.choice([p for p in range(num_players) if p != player]))


def sample_with_deviation(
    game: MarkovGame,
    packed: np.ndarray,
    player: int,
    actions: np.ndarray,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """``count`` states from the occupancy of the profile where ``player`` plays the
    deterministic ``actions`` (S,) instead of its packed policy; returns states and steps."""
    player = check_int(player, "player", 0, game.num_players - 1)
    actions = np.asarray(actions)
    if actions.shape != (game.num_states,) or actions.dtype.kind not in "iu" or (
            actions.size and not 0 <= actions.min() <= actions.max() < game.num_actions[player]):
        raise ValueError(f"actions must be one action in [0, {game.num_actions[player]}) per state "
                         f"({game.num_states},), got {actions!r}")
    deviation = packed.copy()
    deviation[player] = 0.0
    deviation[player, np.arange(game.num_states), actions] = 1.0
    sample = sample_occupancy(
        game.joint_transitions, deviation, np.asarray(game.num_actions), game.initial, game.gamma, count, rng
    )
    return sample.states, sample.steps


@njit(cache=True)
def mirror_descent_update(
    policy: np.ndarray, states: np.ndarray, actions: np.ndarray, step_size: float
) -> None:
    """In place: the batch-averaged gradient ``(pi(. | s) - onehot(a)) / B`` of the squared
    imitation error, then an exponentiated-gradient step at every state in the batch."""
    num_states, num_actions = policy.shape
    batch = states.shape[0]
    gradient = np.zeros((num_states, num_actions))
    touched = np.zeros(num_states, dtype=np.bool_)
    for b in range(batch):
        s = states[b]
        touched[s] = True
        for a in range(num_actions):
            gradient[s, a] += policy[s, a] / batch
        gradient[s, actions[b]] -= 1.0 / batch
    logits = np.empty(num_actions)
    for s in range(num_states):
        if not touched[s]:
            continue
        for a in range(num_actions):
            logits[a] = np.log(max(policy[s, a], 1e-300)) - step_size * gradient[s, a]
        top = logits.max()
        total = 0.0
        for a in range(num_actions):
            logits[a] = np.exp(logits[a] - top)
            total += logits[a]
        for a in range(num_actions):
            policy[s, a] = logits[a] / total


class IterateTracker:
    """Keeps the last iterate, and the per-state average and a uniformly sampled one of the
    iterates *played*: after K updates, ``pi_1 .. pi_K`` (the start included), each the policy
    an update's gradient was taken at; ``pi_{K+1}``, the result of the last update, is the last
    iterate only (the theory's output is the random one of ``pi_1 .. pi_K``). The sample is a
    reservoir: played iterate k replaces it with probability 1/k, so at every point it is
    uniform over the iterates played so far."""

    def __init__(self, policies: list[np.ndarray], rng: np.random.Generator) -> None:
        self._rng = rng
        self.count = 0  # iterates played
        self.last = [p.copy() for p in policies]
        self._sum = [np.zeros_like(p) for p in policies]
        self._sampled: list[np.ndarray] | None = None

    def add(self, policies: list[np.ndarray]) -> None:
        """Record an update: the previous last iterate was played, ``policies`` is the new last."""
        self.count += 1
        for total, played in zip(self._sum, self.last):
            total += played
        if self._rng.random() < 1.0 / self.count:
            self._sampled = self.last
        self.last = [p.copy() for p in policies]

    @property
    def average(self) -> list[np.ndarray]:
        return [total / self.count for total in self._sum] if self.count else self.last

    @property
    def sampled(self) -> list[np.ndarray]:
        return self._sampled if self._sampled is not None else self.last

    def result(self, history: MailHistory) -> MailResult:
        return MailResult(PolicyProfile(self.last), PolicyProfile(self.average), PolicyProfile(self.sampled), history)


def log_schedule(num_iterations: int, num_points: int = 12) -> set[int]:
    """Roughly log-spaced iterations in [0, num_iterations], always with both ends."""
    num_iterations = check_non_negative_int(num_iterations, "num_iterations")
    num_points = check_positive_int(num_points, "num_log_points")
    points = np.unique(np.round(np.geomspace(1, max(num_iterations, 1), num_points)).astype(int))
    return {0, num_iterations, *points.tolist()}


def log_point(
    history: MailHistory,
    game: MarkovGame,
    tracker: IterateTracker,
    iteration: int,
    expert_queries: int,
    oracle_calls: int,
    simulator_steps: int,
) -> None:
    history.iteration.append(iteration)
    history.expert_queries.append(int(expert_queries))
    history.oracle_calls.append(int(oracle_calls))
    history.simulator_steps.append(int(simulator_steps))
    gap_last = tabular.nash_gap(game, tracker.last).total
    history.gap_last.append(gap_last)
    if tracker.count == 0:  # nothing played yet (BC, MAIL-WARM, iteration 0): average and sample are the last
        history.gap_average.append(gap_last)
        history.gap_sampled.append(gap_last)
        return
    history.gap_average.append(tabular.nash_gap(game, tracker.average).total)
    history.gap_sampled.append(tabular.nash_gap(game, tracker.sampled).total)
