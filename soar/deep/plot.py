"""Learning curves of ``soar train`` runs: return against environment steps, grouped over seeds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from agents.logger import read_log
from soar.deep.config import TrainConfig, read_config


@dataclass(frozen=True)
class Run:
    """One run folder: its settings, evaluation rows and the expert's return."""

    path: Path
    config: TrainConfig
    steps: np.ndarray
    returns: np.ndarray
    expert_return: float

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
                        np.array([r["return_mean"] for r in rows]), float(expert)))
    return runs


def summarise(runs: list[Run]) -> dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per group: steps every seed reached, mean return and 95% t half-width over seeds, number of seeds."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    summary = {}
    for group, members in sorted(groups.items()):
        common = sorted(set.intersection(*(set(m.steps.tolist()) for m in members)))
        table = np.array([[m.returns[list(m.steps).index(s)] for s in common] for m in members])
        mean = table.mean(axis=0)
        if len(members) > 1:
            half = stats.t.ppf(0.975, len(members) - 1) * table.std(axis=0, ddof=1) / np.sqrt(len(members))
        else:
            half = np.zeros_like(mean)
        summary[group] = (np.array(common), mean, half, len(members))
    return summary


def plot_runs(runs: list[Run], path: Path) -> None:
    """One panel per environment; a line per (method, critics) with its 95% band; the expert dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(runs)
    environments = sorted({group[0] for group in summary})
    figure, axes = plt.subplots(1, len(environments), figsize=(5.5 * len(environments), 4), squeeze=False)
    for axis, env_id in zip(axes[0], environments):
        for (env, method, critics), (steps, mean, half, seeds) in summary.items():
            if env != env_id:
                continue
            label = f"{method} {'SOAR L=' + str(critics) if critics > 1 else 'base (L=1)'} ({seeds} seed{'s' * (seeds > 1)})"
            line, = axis.plot(steps, mean, label=label)
            axis.fill_between(steps, mean - half, mean + half, alpha=0.2, color=line.get_color(), linewidth=0)
        expert = np.mean([run.expert_return for run in runs if run.config.env_id == env_id])
        axis.axhline(expert, color="black", linestyle="--", linewidth=1, label=f"expert ({expert:.0f})")
        axis.set_title(env_id)
        axis.set_xlabel("environment steps used for learning")
        axis.set_ylabel("deterministic return (band: 95% t-interval over seeds)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
