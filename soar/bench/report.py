"""``soar report DIR``: the tables and figures of a benchmark sweep's evaluation runs.

Per environment, method and L: the final return (last evaluation, deterministic) over the
evaluation seeds, its mean and IQM with 95% bootstrap intervals, and the expert-normalised
score (final return / the demonstrations' return). Per method and L over all environments:
mean and IQM of normalised scores with stratified bootstrap intervals. Per environment and
method: the environment steps SOAR (each L > 1) needs to reach the base method's (L = 1)
final mean return, as a ratio of the base's own (:func:`soar.bench.stats.steps_ratio`).
Selection runs are never read here (their choice is in ``selection.json``).

Writes ``DIR/report.md``, ``DIR/curves.png`` (return against steps, one panel per
environment), ``DIR/aggregate.png`` (IQM normalised score against the fraction of the
budget) and ``DIR/profiles.png`` (performance profiles of the normalised final scores).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents import plotting
from agents.checkpoints import write_text_atomic
from agents.logger import read_log
from soar.bench import stats
from soar.bench.plan import RunSpec, Sweep, evaluation_runs, unchosen_groups
from soar.bench.sweep import is_finished, read_choices, run_folder


@dataclass(frozen=True)
class RunResult:
    """One evaluation run's learning curve and its expert's return."""

    spec: RunSpec
    steps: np.ndarray
    returns: np.ndarray
    expert_return: float

    @property
    def final(self) -> float:
        return float(self.returns[-1])

    @property
    def normalised(self) -> float:
        return self.final / self.expert_return


def load_results(out: Path) -> tuple[Sweep, list[RunResult], list[RunSpec]]:
    """The sweep in ``out``, its finished evaluation runs, and the evaluation runs missing (failed or unfinished)."""
    out = Path(out)
    if not (out / "bench.json").is_file():
        raise ValueError(f"{out} holds no benchmark sweep (no bench.json); run soar bench --out {out} first")
    sweep = Sweep.from_json(json.loads((out / "bench.json").read_text()))
    chosen = read_choices(out)
    results, missing = [], []
    for env_id, method, critics in unchosen_groups(sweep, chosen):  # their clip is not chosen yet
        missing += [RunSpec(env_id, method, critics, None, seed, "evaluation", sweep.steps[env_id],
                            sweep.demos_for(env_id), sweep.trajectories) for seed in range(sweep.seeds)]
    for spec in evaluation_runs(sweep, chosen):
        folder = run_folder(out, spec)
        if not is_finished(out, spec):  # failed or still running: its last evaluation is not a final return
            missing.append(spec)
            continue
        rows = read_log(folder / "logs" / "eval.csv")
        expert = json.loads((folder / "expert.json").read_text())["return_mean"]
        results.append(RunResult(spec, np.array([int(r["step"]) for r in rows]),
                                 np.array([float(r["return_mean"]) for r in rows]), float(expert)))
    return sweep, results, missing


def _interval(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{low:.0f}, {high:.0f}]"


def _interval_normalised(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def tables(sweep: Sweep, results: list[RunResult], missing: list[RunSpec]) -> str:
    """The markdown report."""
    groups: dict[tuple[str, str, int], list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.spec.group, []).append(result)
    lines = ["## Final return per environment (evaluation seeds)", "",
             "| environment | method | L | clip | seeds | mean [95% CI] | IQM [95% CI] | normalised mean | "
             "steps |", "|---|---|---|---|---|---|---|---|---|"]
    for (env_id, method, critics), members in groups.items():
        finals = [r.final for r in members]
        clip = members[0].spec.std_clip
        lines.append(
            f"| {env_id} | {method} | {critics} | {'-' if clip is None else f'{clip:g}'} | {len(finals)} | "
            f"{np.mean(finals):.0f} {_interval(*stats.stratified_interval([finals], stats.mean))} | "
            f"{float(stats.iqm(np.array(finals))):.0f} {_interval(*stats.stratified_interval([finals], stats.iqm))} | "
            f"{np.mean([r.normalised for r in members]):.2f} | {members[0].spec.steps:,} |")
    lines += ["", "## Expert-normalised final score over environments (stratified bootstrap)", "",
              "| method | L | environments | runs | mean [95% CI] | IQM [95% CI] |", "|---|---|---|---|---|---|"]
    by_method: dict[tuple[str, int], dict[str, list[float]]] = {}
    for result in results:
        by_method.setdefault((result.spec.method, result.spec.critics), {}).setdefault(
            result.spec.env_id, []).append(result.normalised)
    for (method, critics), per_env in by_method.items():
        tasks = list(per_env.values())
        pooled = np.concatenate([np.array(t) for t in tasks])
        lines.append(f"| {method} | {critics} | {len(tasks)} | {len(pooled)} | {pooled.mean():.2f} "
                     f"{_interval_normalised(*stats.stratified_interval(tasks, stats.mean))} | "
                     f"{float(stats.iqm(pooled)):.2f} {_interval_normalised(*stats.stratified_interval(tasks, stats.iqm))} |")
    ratio_lines = []
    for (env_id, method, critics), members in groups.items():
        base = groups.get((env_id, method, 1))
        if critics == 1 or not base:
            continue
        ratio = stats.steps_ratio([(r.steps, r.returns) for r in base], [(r.steps, r.returns) for r in members])
        soar_steps = "not reached" if ratio["soar_steps"] is None else f"{ratio['soar_steps']:,}"
        value = "-" if ratio["ratio"] is None else f"{ratio['ratio']:.2f}"
        ratio_lines.append(f"| {env_id} | {method} | {critics} | {ratio['target']:.0f} | {ratio['base_budget']:,} | "
                           f"{ratio['base_steps']:,} | {soar_steps} | {value} |")
    if ratio_lines:
        lines += ["", "## Steps SOAR needs to reach its base method's final return", "",
                  "On mean curves over the evaluation seeds: the base's final mean return, the steps SOAR's mean "
                  "curve needs to reach it, and their ratio to the base's budget (the paper's claim: about 0.5). "
                  "'base first at' is where the base's own curve first reached that return.", "",
                  "| environment | method | L | base final return | base budget | base first at | SOAR steps to it "
                  "| ratio |", "|---|---|---|---|---|---|---|---|", *ratio_lines]
    if missing:
        lines += ["", f"**Missing runs ({len(missing)})**, failed or unfinished, not in the tables: "
                  + ", ".join(spec.name + (" (clip not chosen yet)" if spec.critics > 1 and spec.std_clip is None
                                         else "") for spec in missing)]
    lines += ["", f"Sweep: {json.dumps(sweep.to_json())}. Final return: the last deterministic evaluation "
              "(eval_episodes episodes, 10 by default); normalised: final return / the demonstrations' mean return. Intervals: "
              "95% percentile bootstrap (scipy.stats.bootstrap, 5000 resamples), runs resampled within each "
              "environment; '-' where every environment has one run."]
    few = sorted({len(members) for members in groups.values() if 1 < len(members) < 4})
    if few:
        # scipy's trim_mean cuts int(0.25 n) runs per end, none for n < 4; and a percentile interval of n runs
        # cannot be narrower than the range once every-run-the-lowest resamples exceed 2.5% (1/n^n, n <= 3).
        lines += ["", f"Rows of the per-environment table with {' or '.join(map(str, few))} runs: with fewer than 4, "
                  "the IQM trims no run (it equals the mean) and the 95% interval spans the lowest to the highest "
                  "run, the seeds' range rather than a confidence interval."]
    return "\n".join(lines) + "\n"


def aggregate_figure(results: list[RunResult], path: Path, points: int = 21) -> None:
    """IQM over all runs of each (method, L) of the normalised return, against the fraction of the budget."""
    fractions = np.linspace(0, 1, points)
    figure, axes = plotting.new_figure(1, 1, width=7, height=4)
    axis = axes[0][0]
    groups: dict[tuple[str, int], list[np.ndarray]] = {}
    for result in results:
        curve = np.interp(fractions * result.spec.steps, result.steps, result.returns / result.expert_return,
                          left=np.nan)
        groups.setdefault((result.spec.method, result.spec.critics), []).append(curve)
    for (method, critics), curves in groups.items():
        table = np.array(curves)
        valid = ~np.isnan(table).any(axis=0)
        axis.plot(fractions[valid], stats.iqm(table[:, valid], axis=0),
                  label=f"{method} L={critics} ({plotting.count_text(len(curves), 'runs')})")
    axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="expert")
    axis.set_xlabel("fraction of the environment-step budget")
    axis.set_ylabel("IQM of return / expert return")
    axis.grid(alpha=0.3)
    plotting.legend_outside(axis, fontsize=7)
    plotting.save_figure(figure, path)


def profiles_figure(results: list[RunResult], path: Path) -> None:
    """Performance profiles: fraction of runs whose normalised final score exceeds tau."""
    thresholds = np.linspace(0, 1.2, 121)
    figure, axes = plotting.new_figure(1, 1, width=7, height=4)
    axis = axes[0][0]
    groups: dict[tuple[str, int], list[float]] = {}
    for result in results:
        groups.setdefault((result.spec.method, result.spec.critics), []).append(result.normalised)
    for (method, critics), scores in groups.items():
        axis.plot(thresholds, stats.performance_profile(scores, thresholds),
                  label=f"{method} L={critics} ({plotting.count_text(len(scores), 'runs')})")
    axis.set_xlabel("normalised final score tau (return / expert return)")
    axis.set_ylabel("fraction of runs with score > tau")
    axis.grid(alpha=0.3)
    plotting.legend_outside(axis, fontsize=7)
    plotting.save_figure(figure, path)


#: What ``write_report`` writes into the sweep's folder.
FILES = ("report.md", "curves.png", "aggregate.png", "profiles.png")


def write_report(out: str | Path) -> str:
    """Write ``FILES`` (``report.md`` and the figures) into ``out``; returns the markdown."""
    out = Path(out)
    sweep, results, missing = load_results(out)
    if not results:
        raise ValueError(f"{out}: no evaluation run has evaluated yet")
    text = tables(sweep, results, missing)
    from soar.deep.plot import find_runs, plot_runs

    plot_runs(find_runs([run_folder(out, r.spec) for r in results]), out / "curves.png")
    aggregate_figure(results, out / "aggregate.png")
    profiles_figure(results, out / "profiles.png")
    write_text_atomic(out / "report.md", text)
    return text
