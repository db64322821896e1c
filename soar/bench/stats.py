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
    computed on all tasks' runs pooled. ``(nan, nan)`` when there is nothing to resample
    (every task has one run).
    """
    samples = tuple(np.asarray(t, dtype=np.float64) for t in tasks if len(t))
    if not samples or all(len(s) < 2 for s in samples):
        return math.nan, math.nan

    def pooled(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(np.concatenate(resampled, axis=axis), axis=axis)

    result = stats.bootstrap(samples, pooled, confidence_level=confidence, n_resamples=resamples, method="percentile",
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
    """Mean over runs at the steps every run evaluated."""
    common = sorted(set.intersection(*(set(int(s) for s in steps) for steps, _ in runs)))
    table = np.array([[dict(zip((int(s) for s in steps), values))[s] for s in common] for steps, values in runs])
    return np.array(common), table.mean(axis=0)


def steps_ratio(base: Sequence[tuple[Sequence[int], Sequence[float]]],
                soar: Sequence[tuple[Sequence[int], Sequence[float]]]) -> dict[str, float | int | None]:
    """How many environment steps SOAR needs to reach its base method's final return, against the base's.

    On mean curves over seeds: ``target`` is the base's final mean return, ``base_steps``
    the first evaluation where the base's mean curve reaches it, ``soar_steps`` SOAR's;
    ``ratio = soar_steps / base_steps`` (the paper's "about half" is 0.5; ``None`` if SOAR
    never reaches it).
    """
    base_steps, base_curve = mean_curve(base)
    soar_steps, soar_curve = mean_curve(soar)
    target = float(base_curve[-1])
    reached_base = first_step_reaching(base_steps, base_curve, target)
    reached_soar = first_step_reaching(soar_steps, soar_curve, target)
    return {"target": target, "base_steps": reached_base, "soar_steps": reached_soar,
            "ratio": None if reached_soar is None or not reached_base else reached_soar / reached_base}
