"""Run the deep SOAR imitation experiments of the README and write their tables and curves.

    python scripts/reproduce_soar_deep.py idp hopper [--jobs 2] [--runs runs/il] [--out runs/il/report]
    python scripts/reproduce_soar_deep.py hopper --report-only     # tables and figure from what exists
    python scripts/reproduce_soar_deep.py baselines --methods bc dagger   # only some methods' runs

Suites (every run is ``soar train`` with the environment's YAML defaults, one bundled trajectory,
one torch thread):

- ``hopper``: Hopper-v5, ``ml-irl-sa``, base (L = 1) against SOAR (L = 4), seeds 0, 1, 2, 200k steps.
- ``idp``: InvertedDoublePendulum-v5, ml-irl-sa, csil, ml-irl and f-irl with L = 1 and L = 4, seed 0,
  100k steps.
- ``baselines``: Hopper-v5, ``bc``, ``dagger``, ``gail``, ``airl``, ``sqil`` and ``opt-ail`` (L = 1),
  seeds 0 and 1, 200k steps; its report adds the ``hopper`` suite's rows for comparison. ``bc``
  learns from no environment step: its one evaluation (step 0) fills every column. ``dagger``
  labels every state it visits, so its expert queries equal its environment steps.

Runs go to ``RUNS/SUITE/METHOD-L{critics}-s{seed}``; at most ``--jobs`` run at once, each its own
process. Several drivers may share the suites: each skips the runs another one is running. A run
folder that already holds a run is resumed (``soar train --resume``), so killing
this script and starting it again loses at most the steps since each run's last checkpoint; a
finished run is left as it is. The report (``OUT/SUITE.md`` and ``OUT/SUITE.png``) gives, per
method and ensemble size, the mean deterministic evaluation return over seeds at the suite's
report steps, the best return, and each run's wall time (the runs' own clocks, which exclude time
spent killed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.config import ArgumentParser, positive_int, run_command
from agents.logger import read_log
from agents.run_folder import RunLock



@dataclass(frozen=True)
class Job:
    """One ``soar train`` run of a suite."""

    env_id: str
    method: str
    critics: int
    seed: int
    steps: int

    @property
    def name(self) -> str:
        return f"{self.method}-L{self.critics}-s{self.seed}"


@dataclass(frozen=True)
class Suite:
    jobs: tuple[Job, ...]
    report_steps: tuple[int, ...]
    title: str
    compare: tuple[str, ...] = ()  # suites whose runs the report shows too (run by their own suite)


#: Methods that train no critic: no --critics, and bc no --steps (it uses no environment step).
NO_CRITICS = ("bc", "dagger")


SUITES = {
    "hopper": Suite(
        tuple(Job("Hopper-v5", "ml-irl-sa", critics, seed, 200_000) for seed in (0, 1, 2) for critics in (1, 4)),
        (50_000, 100_000, 200_000),
        "Hopper-v5, ml-irl-sa, 1 bundled trajectory, base (L=1) vs SOAR (L=4), seeds 0-2",
    ),
    "idp": Suite(
        tuple(Job("InvertedDoublePendulum-v5", method, critics, 0, 100_000) for method in ("ml-irl-sa", "csil", "ml-irl", "f-irl")
              for critics in (1, 4)),
        (25_000, 50_000, 100_000),
        "InvertedDoublePendulum-v5, every method, 1 bundled trajectory, L=1 and L=4, seed 0",
    ),
    "baselines": Suite(
        tuple(Job("Hopper-v5", method, 1, seed, 0 if method == "bc" else 200_000)
              for seed in (0, 1) for method in ("bc", "dagger", "gail", "airl", "sqil", "opt-ail")),
        (50_000, 100_000, 200_000),
        "Hopper-v5, imitation baselines on the same SAC, 1 bundled trajectory, seeds 0-1 (ml-irl-sa rows: seeds 0-2)",
        compare=("hopper",),
    ),
}


def command(job: Job, folder: Path) -> list[str]:
    """The ``soar train`` command line of ``job``: a resume when ``folder`` already holds the run."""
    soar = [sys.executable, "-m", "soar"]
    steps = [] if job.method == "bc" else ["--steps", str(job.steps)]
    if (folder / "config.json").exists():
        return [*soar, "train", "--resume", str(folder), *steps, "--no-progress"]
    critics = [] if job.method in NO_CRITICS else ["--critics", str(job.critics)]
    return [*soar, "train", "--env", job.env_id, "--method", job.method, *critics, "--demos", "bundled",
            "--trajectories", "1", *steps, "--seed", str(job.seed), "--threads", "1", "--no-progress",
            "--out", str(folder)]


def finished(job: Job, folder: Path) -> bool:
    progress = folder / "checkpoint" / "progress.json"
    return (folder / "final_policy.pt").exists() and progress.exists() and \
        json.loads(progress.read_text())["step"] >= job.steps


def claim(folder: Path) -> RunLock | None:
    """Hold ``folder``'s claim (a lock beside it) for this driver, or ``None`` if another driver holds it.

    Several drivers may then share a queue: each skips the runs another is running.
    """
    claims = folder.parent / ".claims" / folder.name
    claims.mkdir(parents=True, exist_ok=True)
    try:
        held = RunLock(claims).acquire()
    except ValueError:
        return None
    if folder.is_dir():  # a soar train process started by hand (or an older driver) holds the folder itself
        try:
            RunLock(folder).acquire().release()
        except ValueError:
            held.release()
            return None
    return held


def run_jobs(work: list[tuple[Job, Path]], jobs: int) -> None:
    """Run every unfinished (job, run folder), at most ``jobs`` at a time; output goes to ``FOLDER.log``.

    A run another driver is running (its claim is held) is skipped.
    """
    pending = [(job, folder) for job, folder in work if not finished(job, folder)]
    running: list[tuple[Job, subprocess.Popen, RunLock]] = []
    failed = []
    while pending or running:
        while pending and len(running) < jobs:
            job, folder = pending.pop(0)
            folder.parent.mkdir(parents=True, exist_ok=True)
            held = claim(folder)
            if held is None or finished(job, folder):
                if held is not None:
                    held.release()
                print(f"skip {job.name}: {'finished' if held else 'another driver is running it'}", flush=True)
                continue
            argv = command(job, folder)
            print(f"start {job.name}: {' '.join(argv[1:])}", flush=True)
            with open(folder.with_suffix(".log"), "a") as log:
                running.append((job, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), held))
        time.sleep(5)
        for entry in list(running):
            job, process, held = entry
            if process.poll() is not None:
                held.release()
                running.remove(entry)
                print(f"{'done' if process.returncode == 0 else 'FAILED'} {job.name} (exit {process.returncode})",
                      flush=True)
                if process.returncode != 0:
                    failed.append(job.name)
    if failed:
        raise SystemExit(f"failed runs (see their .log files beside the run folders): {', '.join(failed)}")


def report(suite: Suite, name: str, runs: Path, out: Path) -> str:
    """Markdown table of the suite's runs (mean return over seeds at the report steps) and their curves.

    ``runs`` is the parent of every suite's folder (``runs/SUITE/RUN``); the suites ``compare``
    names add their rows after the suite's own.
    """
    groups: dict[tuple[str, int], list[tuple[Job, Path]]] = {}
    for suite_name in (name, *suite.compare):
        for job in SUITES[suite_name].jobs:
            groups.setdefault((job.method, job.critics), []).append((job, runs / suite_name / job.name))
    expert = None
    header = (["method", "L", "seeds"] + [f"{s // 1000}k" for s in suite.report_steps]
              + ["best", "steps to 90% of the expert", "wall time per run"])
    lines = [f"## {suite.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (method, critics), members in groups.items():
        at_step = {s: [] for s in suite.report_steps}
        best, walls, seeds, to_90 = [], [], 0, []
        for job, folder in members:
            if not (folder / "logs" / "eval.csv").exists():
                continue
            seeds += 1
            rows = read_log(folder / "logs" / "eval.csv")
            returns = {int(r["step"]): r["return_mean"] for r in rows}
            for s in suite.report_steps:
                if s in returns or set(returns) == {0}:  # bc: evaluated once, before (and without) any step
                    at_step[s].append(returns.get(s, returns.get(0)))
            best.append(max(returns.values()))
            expert = json.loads((folder / "expert.json").read_text())["return_mean"]
            reached = [step for step, value in sorted(returns.items()) if value >= 0.9 * expert]
            if set(returns) == {0}:  # bc: no environment step
                to_90.append("at 0 steps" if reached else "no env steps")
            else:
                to_90.append(f"{reached[0] / 1000:g}k" if reached else f"not by {max(returns) / 1000:g}k")
            timing = read_log(folder / "logs" / "time.csv") if (folder / "logs" / "time.csv").exists() else []
            progress = folder / "checkpoint" / "progress.json"
            if not timing and progress.exists():  # a run that logs no time: its last checkpoint's clock
                timing = [json.loads(progress.read_text())]
            if timing and int(timing[-1]["step"]) == 0:  # bc: the fit and one evaluation
                walls.append(f"{timing[-1]['elapsed_seconds'] / 60:.0f} min")
            elif timing:
                walls.append(f"{timing[-1]['elapsed_seconds'] / 60:.0f} min to {int(timing[-1]['step']) // 1000}k")
        cells = [method, "-" if method in NO_CRITICS else str(critics), str(seeds)]
        for s in suite.report_steps:
            values = at_step[s]
            cells.append(f"{np.mean(values):.0f}" + (f" ({len(values)})" if 0 < len(values) < seeds else "")
                         if values else "-")
        cells.append(f"{np.mean(best):.0f}" if best else "-")
        cells.append(", ".join(to_90) or "-")
        cells.append(", ".join(walls) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    if expert is not None:
        lines += ["", f"Expert (the one bundled trajectory): {expert:.1f}. Cells: mean deterministic evaluation "
                  "return over the seeds that reached that step (their number in brackets when fewer than all); "
                  "best: mean over seeds of each run's best evaluation."]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text)
    folders = [folder for members in groups.values() for _, folder in members
               if (folder / "logs" / "eval.csv").exists()]
    if folders:
        from soar.deep.plot import find_runs, plot_runs

        plot_runs(find_runs(folders), out / f"{name}.png")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="reproduce_soar_deep.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="+", choices=sorted(SUITES), help="which experiments, run in this order")
    parser.add_argument("--jobs", type=positive_int, default=2, help="runs at once, one core each (default: 2)")
    parser.add_argument("--runs", type=Path, default=Path("runs/il"), help="parent of the run folders")
    parser.add_argument("--out", type=Path, default=Path("runs/il/report"),
                        help="where the table and figure go (default: runs/il/report)")
    parser.add_argument("--methods", nargs="+", metavar="METHOD",
                        help="run only these methods' runs of the suites (the report still shows every run there is)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs that exist")
    args = parser.parse_args(argv)
    run_command(parser, lambda: reproduce(args))


def reproduce(args: argparse.Namespace) -> None:
    if not args.report_only:
        start = time.perf_counter()
        # one queue over all suites, so a core freed by the last run of one suite starts the next suite
        work = [(job, args.runs / name / job.name) for name in args.suites for job in SUITES[name].jobs
                if args.methods is None or job.method in args.methods]
        if not work:
            raise ValueError(f"no run of {' '.join(args.suites)} uses the methods {' '.join(args.methods)}")
        run_jobs(work, args.jobs)
        print(f"{' '.join(args.suites)}: {(time.perf_counter() - start) / 60:.0f} min of wall time this invocation")
    for name in args.suites:
        print(report(SUITES[name], name, args.runs, args.out))


if __name__ == "__main__":
    main()
