"""Learning curves of ``soar train`` runs: return against environment steps, grouped over seeds."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents import plotting
from agents.logger import read_log
from soar.deep.config import SAC_METHODS, TrainConfig, read_config


@dataclass(frozen=True)
class Run:
    """One run folder: its settings, evaluation rows and the expert's return.

    ``lowest`` and ``highest`` are the smallest and largest episode return of each
    evaluation (NaN where the log predates them).
    """

    path: Path
    config: TrainConfig
    steps: np.ndarray
    returns: np.ndarray
    expert_return: float
    lowest: np.ndarray
    highest: np.ndarray

    @property
    def group(self) -> tuple[str, str, int]:
        return self.config.env_id, self.config.method, self.config.critics


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run folder among ``paths`` and their subfolders (a folder with config.json and logs/eval.csv)."""
    folders = []
    for path in paths:
        if not path.is_dir():
            raise ValueError(f"{path} is not a folder")
        folders += [p.parent for p in sorted(path.glob("**/config.json")) if (p.parent / "logs" / "eval.csv").exists()]
    if not folders:
        raise ValueError(f"no soar train runs (config.json with logs/eval.csv) under {[str(p) for p in paths]}")
    runs = []
    for folder in folders:
        rows = read_log(folder / "logs" / "eval.csv")
        expert = json.loads((folder / "expert.json").read_text())["return_mean"]
        runs.append(Run(folder, read_config(folder / "config.json"), np.array([r["step"] for r in rows]),
                        _column(rows, "return_mean"), float(expert),
                        _column(rows, "return_min"), _column(rows, "return_max")))
    return runs


def _column(rows: list[dict], key: str) -> np.ndarray:
    """``key`` of every row; NaN in rows that lack it (logs written before the column existed)."""
    return np.array([row.get(key, math.nan) for row in rows], dtype=np.float64)


@dataclass(frozen=True)
class Curve:
    """A group's learning curve over its seeds, on their common grid (:func:`agents.plotting.evaluation_grid`).

    ``half`` is the 95% t-interval's half-width; ``lowest`` and ``highest`` the extreme
    episode returns any seed had there (NaN where not logged): the band stays within them.
    """

    steps: np.ndarray
    mean: np.ndarray
    half: np.ndarray
    seeds: int
    lowest: np.ndarray
    highest: np.ndarray


def summarise(runs: list[Run]) -> dict[tuple[str, str, int], Curve]:
    """Per group (env, method, critics): mean return and 95% t half-width over seeds."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    summary = {}
    for group, members in sorted(groups.items()):
        common, at = plotting.evaluation_grid([m.steps for m in members])
        table = np.array([m.returns[i] for m, i in zip(members, at)])
        # fmin/fmax skip NaN (a log that predates the column): a step no seed logged stays NaN, unbounded.
        lowest = np.fmin.reduce(np.array([m.lowest[i] for m, i in zip(members, at)]), axis=0)
        highest = np.fmax.reduce(np.array([m.highest[i] for m, i in zip(members, at)]), axis=0)
        summary[group] = Curve(common, table.mean(axis=0), plotting.t_half_width(table), len(members),
                               lowest, highest)
    return summary


def plot_runs(runs: list[Run], path: Path) -> None:
    """One panel per environment; a line per (method, critics) with its 95% band; the expert dashed.

    A band is a t-interval of the mean over seeds, clipped to the range of the episode
    returns the seeds had where the logs hold it: a Gymnasium task does not state the range
    its returns can take, and a band past every return any evaluated episode had would show
    returns no policy reached. Each panel's legend, right of it, says what the band is.
    """
    summary = summarise(runs)
    environments = sorted({group[0] for group in summary})
    figure, axes = plotting.new_figure(1, len(environments), width=8 * len(environments), height=4)
    for axis, env_id in zip(axes[0], environments):
        seeds, clipped = [], False
        panel = [(key, curve) for key, curve in summary.items() if key[0] == env_id]
        for index, ((env, method, critics), curve) in enumerate(panel):
            color = f"C{index % 10}"  # one colour per group, whether drawn as a curve or as a level
            variant = "" if method not in SAC_METHODS else f" SOAR L={critics}" if critics > 1 else " base (L=1)"
            label = f"{method}{variant} ({plotting.count_text(curve.seeds, 'seeds')})"
            if curve.steps.tolist() == [0]:  # bc: one evaluation, no environment step learnt from
                axis.axhline(curve.mean[0], color=color, linestyle=":", linewidth=1.5, label=f"{label}, no env steps")
                continue
            line, = axis.plot(curve.steps, curve.mean, color=color, label=label)
            if curve.seeds > 1:
                low, high = plotting.clipped_band(curve.mean, curve.half, curve.lowest, curve.highest)
                plotting.draw_band(axis, curve.steps, low, high, line.get_color())
                seeds.append(curve.seeds)
                clipped = clipped or not np.isnan(curve.lowest).all()
        expert = np.mean([run.expert_return for run in runs if run.config.env_id == env_id])
        axis.axhline(expert, color="black", linestyle="--", linewidth=1, label=f"expert ({expert:.0f})")
        axis.set_title(env_id)
        axis.set_xlabel("environment steps used for learning")
        plotting.steps_in_thousands(axis)
        axis.set_ylabel("deterministic return")
        axis.grid(alpha=0.3)
        extra = []
        if seeds:
            text = plotting.band_text(plotting.t_interval_text(0.95, seeds),
                                      "the episode returns seen" if clipped else "")
            extra.append(plotting.band_handle(text))
        plotting.legend_outside(axis, extra=extra, fontsize=7)
    plotting.save_figure(figure, path)
