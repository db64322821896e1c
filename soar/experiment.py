"""Tabular SOAR sweeps: run over ensemble sizes and seeds, summarise, save, plot."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from agents import plotting, records
from agents.config import (
    changed_settings, check_applicable, check_settings, non_negative_float, non_negative_int, non_negative_or_inf,
    positive_float, positive_int, setting,
)
from envs import mdps
from envs.markov_game import MarkovGame
from envs.validation import check_interval, check_non_negative_int, check_positive_int
from soar import tabular

#: Built-in environments of the tabular experiments.
ENVIRONMENTS: dict[str, Callable[[], MarkovGame]] = {
    "two-state": mdps.two_state_mdp,
    "river-swim": mdps.river_swim,
    "gridworld": mdps.random_gridworld,
}

#: Columns of a sweep CSV and their types.
CSV_FIELDS = {
    "env": str, "critic": str, "occupancy": str, "optimism": float, "std_clip": float, "num_critics": int, "seed": int,
    "iteration": int, "samples": int, "learner_samples": int, "env_steps": int, "value": float, "expert_value": float,
    "cost_loss": float,
}


@dataclass(frozen=True)
class SweepConfig:
    """Settings shared by every run of a sweep (defaults: the reference experiment).

    Values are checked on construction (``ValueError`` naming the setting), and a setting
    changed from its default where the critic does not use it is refused.
    """

    env: str = setting("two-state", choices=tuple(sorted(ENVIRONMENTS)), help="tabular MDP")
    critic: str = setting("optimistic", choices=tabular.CRITICS,
                          help="optimistic (mean - optimism std), min over the ensemble, or a count-based ucb bonus")
    occupancy: str = setting("state-action", choices=tabular.OCCUPANCIES, help="occupancy matched by the cost update")
    optimism: float = setting(1e-3, parse=non_negative_float,
                              help="optimistic and ucb critics: weight of the ensemble's std (the paper's beta; "
                              "ucb: bonus scale)",
                              applies=(lambda c: c.critic != "min", "by the optimistic and ucb critics only"))
    std_clip: float = setting(math.inf, parse=non_negative_or_inf,
                              help="optimistic critic: upper clip of the ensemble's std",
                              applies=(lambda c: c.critic == "optimistic", "by the optimistic critic only"))
    iterations: int = setting(100, parse=positive_int, help="primal-dual iterations per run")
    expert_samples: int = setting(100, parse=positive_int, help="expert state-action samples")
    learner_samples: int = setting(100, parse=non_negative_int,
                                   help="fresh learner states per iteration for the cost step's occupancy (0: the "
                                   "models' trajectories instead)")
    cost_step: float = setting(0.9, parse=positive_float, help="cost step size eta_c")
    policy_step: float = setting(4.0, parse=positive_float, help="mirror-descent step size eta")

    def __post_init__(self) -> None:
        check_settings(self)
        check_applicable(self, changed_settings(self))

    def make_env(self) -> MarkovGame:
        return ENVIRONMENTS[self.env]()


def run_sweep(
    config: SweepConfig, num_critics: Sequence[int], seeds: Sequence[int], progress: bool = True,
    rows: list[dict] | None = None,
) -> list[dict]:
    """Run tabular SOAR for every ensemble size and seed; one row per logged point.

    Seed ``s`` draws both the expert dataset and the run, so every ensemble size
    sees the same expert data for the same seed. ``num_critics`` (integers >= 1) and
    ``seeds`` (integers >= 0) must not be empty. ``rows`` (default: a new
    list) receives each run's rows as soon as it finishes, so a caller interrupted by Ctrl-C keeps them.
    """
    if not isinstance(config, SweepConfig):
        raise ValueError(f"config must be a SweepConfig, got {type(config).__name__}")
    num_critics = _non_empty([check_positive_int(L, "num_critics") for L in num_critics], "num_critics")
    seeds = _non_empty([check_non_negative_int(seed, "seeds") for seed in seeds], "seeds")
    mdp = config.make_env()
    expert = tabular.optimal_policy(mdp)
    expert_value = tabular.policy_value(mdp, expert)
    rows = [] if rows is None else rows
    jobs = [(L, seed) for L in num_critics for seed in seeds]
    for L, seed in tqdm(jobs, desc=f"SOAR {config.env}", disable=not progress):
        data = tabular.sample_expert_data(mdp, expert, config.expert_samples, seed=seed)
        result = tabular.soar_il(
            mdp, data, num_critics=L, num_iterations=config.iterations,
            cost_step=config.cost_step, policy_step=config.policy_step, optimism=config.optimism, std_clip=config.std_clip,
            seed=seed, critic=config.critic, occupancy=config.occupancy, learner_samples=config.learner_samples,
        )
        h = result.history
        rows.extend([dict(
            env=config.env, critic=config.critic, occupancy=config.occupancy, optimism=config.optimism,
            std_clip=config.std_clip,
            num_critics=L, seed=seed, iteration=k, samples=n, learner_samples=m, env_steps=steps, value=value,
            expert_value=expert_value, cost_loss=loss,
        ) for k, n, m, steps, value, loss in zip(h.iteration, h.samples, h.learner_samples, h.env_steps, h.value,
                                                 h.cost_loss)])
    return rows


def _non_empty(values: list, name: str) -> list:
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def write_csv(rows: list[dict], path: Path) -> None:
    records.write_rows(rows, path, CSV_FIELDS)


def read_csv(path: Path) -> list[dict]:
    """Read a sweep CSV; raises ``ValueError`` naming the file and what is wrong with it."""
    return records.read_rows(path, CSV_FIELDS, "SOAR sweep")


def _runs(rows: list[dict]) -> dict[int, dict[int, list[dict]]]:
    runs: dict[int, dict[int, list[dict]]] = {}
    for row in rows:
        runs.setdefault(row["num_critics"], {}).setdefault(row["seed"], []).append(row)
    return runs


@dataclass(frozen=True)
class ThresholdRow:
    """Samples and iterations a run needed to first reach ``fraction`` of the expert's value."""

    num_critics: int
    reached: int
    runs: int
    samples_median: float
    samples_iqr: tuple[float, float]
    iterations_median: float
    env_steps_median: float
    final_value: float


def threshold_table(rows: list[dict], fraction: float = 0.95) -> list[ThresholdRow]:
    """Per ensemble size: median (over runs that got there) samples and iterations to
    ``fraction`` (in (0, 1]) x expert value, how many runs got there, and the mean final value."""
    fraction = check_interval(fraction, "fraction", 0.0, 1.0, low_open=True)
    table = []
    for L, by_seed in sorted(_runs(rows).items()):
        samples, iterations, steps, finals = [], [], [], []
        for run in by_seed.values():
            target = fraction * run[0]["expert_value"]
            hits = [row for row in run if row["value"] >= target]
            if hits:
                samples.append(hits[0]["samples"])
                iterations.append(hits[0]["iteration"])
                steps.append(hits[0]["env_steps"])
            finals.append(run[-1]["value"])
        table.append(ThresholdRow(
            L, len(samples), len(by_seed),
            float(np.median(samples)) if samples else float("nan"),
            (float(np.percentile(samples, 25)), float(np.percentile(samples, 75))) if samples else (np.nan, np.nan),
            float(np.median(iterations)) if iterations else float("nan"),
            float(np.median(steps)) if steps else float("nan"),
            float(np.mean(finals)),
        ))
    return table


def format_threshold_table(table: list[ThresholdRow], fraction: float = 0.95) -> str:
    """A markdown table of :func:`threshold_table`."""
    fraction = check_interval(fraction, "fraction", 0.0, 1.0, low_open=True)
    percent = f"{fraction:.0%}"
    lines = [
        f"| L | runs reaching {percent} | model trajectories to {percent}: median [IQR] | iterations to {percent}: "
        f"median | environment steps to {percent}: median | final value (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        if row.reached:
            samples = f"{row.samples_median:.0f} [{row.samples_iqr[0]:.0f}, {row.samples_iqr[1]:.0f}]"
            iterations, steps = f"{row.iterations_median:.0f}", f"{row.env_steps_median:,.0f}"
        else:
            samples = iterations = steps = "never"
        lines.append(
            f"| {row.num_critics} | {row.reached}/{row.runs} | {samples} | {iterations} | {steps} | "
            f"{row.final_value:.2f} |"
        )
    return "\n".join(lines)


def plot_sweep(rows: list[dict], path: Path, title: str | None = None) -> None:
    """True value against MDP samples (left) and iterations (right): mean and 95%
    t-interval over seeds, one curve per ensemble size, with the expert's value.

    The bands are clipped to the values a policy of the MDP can have (:func:`soar.tabular.value_range`);
    the legend, right of the panels, says what they are.
    """
    _non_empty(rows, "rows")
    from matplotlib import colormaps

    runs_by_size = sorted(_runs(rows).items())
    lower, upper = tabular.value_range(SweepConfig(env=rows[0]["env"]).make_env())
    figure, axes = plotting.new_figure(1, 2, width=13, height=4.2, sharey=True)
    axes = axes[0]
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(runs_by_size)))
    expert_value = rows[0]["expert_value"]
    seeds = []
    for axis, x, label in zip(axes, ("samples", "iteration"), ("model trajectories (L per iteration)", "iterations")):
        for color, (L, by_seed) in zip(colors, runs_by_size):
            runs = list(by_seed.values())
            length = min(len(run) for run in runs)
            xs = np.array([row[x] for row in runs[0][:length]])
            values = np.array([[row["value"] for row in run[:length]] for run in runs])
            mean = values.mean(axis=0)
            axis.plot(xs, mean, color=color, label=f"L = {L}", linewidth=1.2)
            if len(runs) > 1:
                low, high = plotting.clipped_band(mean, plotting.t_half_width(values), lower, upper)
                plotting.draw_band(axis, xs, low, high, color, alpha=0.12)
                seeds.append(len(runs))
        axis.axhline(expert_value, color="black", linestyle="--", label="expert")
        axis.axhline(0.95 * expert_value, color="gray", linestyle=":", label="95% of expert")
        axis.set_xlabel(label)
        axis.set_xscale("log")
    axes[0].set_ylabel("true value of the policy")
    bands = plotting.band_text(plotting.t_interval_text(0.95, seeds),
                               f"the values a policy can have,\n[{lower:.3g}, {upper:.3g}]") if seeds else None
    plotting.legend_outside(figure, extra=[plotting.band_handle(bands)] if bands else [])
    figure.suptitle(title or f"tabular SOAR on {rows[0]['env']}")
    plotting.save_figure(figure, path)
