"""What every MAIL algorithm returns: the reported policies and a logged history."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents import tabular
from envs.markov_game import MarkovGame

#: The policies every algorithm reports: the last iterate, the per-state average of
#: the iterates, and one iterate drawn uniformly at random (what the theory covers).
REPORTED = ("last", "average", "sampled")


@dataclass
class MailHistory:
    """Logged points of a run; queries are totals over players, and ``gap_*`` the exact
    Nash gap of each reported policy at that point."""

    iteration: list[int] = field(default_factory=list)
    expert_queries: list[int] = field(default_factory=list)
    oracle_calls: list[int] = field(default_factory=list)
    simulator_steps: list[int] = field(default_factory=list)
    gap_last: list[float] = field(default_factory=list)
    gap_average: list[float] = field(default_factory=list)
    gap_sampled: list[float] = field(default_factory=list)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in vars(self).items()}


@dataclass
class MailResult:
    """Learned policies (one (S, A_i) array per player for each of :data:`REPORTED`) and history."""

    last: list[np.ndarray]
    average: list[np.ndarray]
    sampled: list[np.ndarray]
    history: MailHistory

    @property
    def policies(self) -> list[np.ndarray]:
        """The uniformly sampled iterate: the output the guarantees are about."""
        return self.sampled


class IterateTracker:
    """Keeps the last iterate, the running per-state average and a uniformly sampled
    iterate (reservoir sampling: iterate k replaces the sample with probability 1/k,
    so at every point the sample is uniform over the iterates so far)."""

    def __init__(self, policies: list[np.ndarray], rng: np.random.Generator) -> None:
        self._rng = rng
        self.count = 1
        self.last = [p.copy() for p in policies]
        self._sum = [p.copy() for p in policies]
        self.sampled = [p.copy() for p in policies]

    def add(self, policies: list[np.ndarray]) -> None:
        self.count += 1
        self.last = [p.copy() for p in policies]
        for total, policy in zip(self._sum, policies):
            total += policy
        if self._rng.random() < 1.0 / self.count:
            self.sampled = [p.copy() for p in policies]

    @property
    def average(self) -> list[np.ndarray]:
        return [total / self.count for total in self._sum]

    def result(self, history: MailHistory) -> MailResult:
        return MailResult(self.last, self.average, self.sampled, history)


def log_schedule(num_iterations: int, num_points: int = 12) -> set[int]:
    """Roughly log-spaced iterations in [0, num_iterations], always with both ends."""
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
    history.gap_last.append(tabular.nash_gap(game, tracker.last).total)
    history.gap_average.append(tabular.nash_gap(game, tracker.average).total)
    history.gap_sampled.append(tabular.nash_gap(game, tracker.sampled).total)


def check_budget(name: str, value: int) -> int:
    if int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
