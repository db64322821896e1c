"""Statistics of a benchmark: IQM, stratified bootstrap intervals, performance profiles, steps to a target.

Following Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice"): the
interquartile mean (the mean of the middle 50% of runs, robust to a failed seed), and 95%
intervals from a *stratified* bootstrap, which resamples runs within each task (environment)
independently, so every environment keeps its number of runs in every resample. The
resampling is :func:`scipy.stats.bootstrap` given one sample per task.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from agents.plotting import evaluation_grid


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean after trimming 25% at each end."""
    return stats.trim_mean(values, 0.25, axis=axis)


def mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def stratified_interval(
    tasks: Sequence[Sequence[float]], statistic: Callable[..., np.ndarray], confidence: float = 0.95,
    resamples: int = 5000, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over all runs, resampling within each task.

    ``tasks`` holds one sequence of run scores per task; ``statistic(values, axis)`` is
    computed on all tasks' runs pooled. A task with one run enters every resample as it is;
    ``(nan, nan)`` when there is nothing to resample (every task has one run).
    """
    samples = [np.asarray(t, dtype=np.float64) for t in tasks if len(t)]
    varying = tuple(s for s in samples if len(s) > 1)
    # A task with one run is the same in every resample (scipy refuses a one-element sample): it stays fixed.
    fixed = np.concatenate([s for s in samples if len(s) == 1]) if len(varying) < len(samples) else np.zeros(0)
    if not varying:
        return math.nan, math.nan

    def pooled(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        constant = np.broadcast_to(fixed, (*resampled[0].shape[:-1], len(fixed)))
        return statistic(np.concatenate([*resampled, constant], axis=-1), axis=-1)

    result = stats.bootstrap(varying, pooled, confidence_level=confidence, n_resamples=resamples, method="percentile",
                             vectorized=True, paired=False, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def performance_profile(scores: Sequence[float], thresholds: np.ndarray) -> np.ndarray:
    """Fraction of ``scores`` above each threshold tau (the run-score distribution of Agarwal et al.)."""
    scores = np.asarray(scores, dtype=np.float64)
    return (scores[None, :] > np.asarray(thresholds, dtype=np.float64)[:, None]).mean(axis=1)


def first_step_reaching(steps: Sequence[int], curve: Sequence[float], target: float) -> int | None:
    """The first of ``steps`` where ``curve`` is at least ``target`` (``None`` if it never is)."""
    for step, value in zip(steps, curve):
        if value >= target:
            return int(step)
    return None


def mean_curve(runs: Sequence[tuple[Sequence[int], Sequence[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over runs on their common grid (:func:`agents.plotting.evaluation_grid`: each run's
    latest evaluation at every step some run evaluated at)."""
    grid, at = evaluation_grid([steps for steps, _ in runs])
    table = np.array([np.asarray(values, dtype=np.float64)[i] for (_, values), i in zip(runs, at)])
    return grid, table.mean(axis=0)


def steps_ratio(base: Sequence[tuple[Sequence[int], Sequence[float]]],
                soar: Sequence[tuple[Sequence[int], Sequence[float]]]) -> dict[str, float | int | None]:
    """How many environment steps SOAR needs to reach its base method's final return.

    On mean curves over seeds: ``target`` is the base's final mean return (at its last
    evaluation, ``base_budget`` steps); ``soar_steps`` the first evaluation where SOAR's
    mean curve reaches it. ``ratio = soar_steps / base_budget`` (the paper's "about half
    the steps" is 0.5; ``None`` if SOAR never reaches it). ``base_steps`` is where the
    base's own mean curve first reached that return (a base that peaked earlier and fell
    back reached it before its budget).
    """
    base_steps, base_curve = mean_curve(base)
    soar_steps, soar_curve = mean_curve(soar)
    target = float(base_curve[-1])
    reached_soar = first_step_reaching(soar_steps, soar_curve, target)
    budget = int(base_steps[-1])
    return {"target": target, "base_budget": budget, "base_steps": first_step_reaching(base_steps, base_curve, target),
            "soar_steps": reached_soar, "ratio": None if reached_soar is None or not budget else reached_soar / budget}
