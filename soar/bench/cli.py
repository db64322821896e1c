"""``soar bench`` (run a sweep) and ``soar report`` (its tables and figures) on the command line.

Building the parser imports neither torch nor ray; the commands import what they use.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.checkpoints import copy_file_atomic
from agents.config import OptionError, non_negative_or_inf, positive_int, sigterm_as_interrupt
from soar.bench.plan import BUDGETS


def _demos_pair(text: str) -> tuple[str, str]:
    env_id, sep, source = text.partition("=")
    if not sep or not env_id or not source:
        raise argparse.ArgumentTypeError(f"--demos takes ENV=SOURCE (a file or minari:ID), got {text!r}")
    return env_id, source


def _steps_pair(text: str) -> tuple[str, int]:
    env_id, sep, steps = text.partition("=")
    if not sep or not env_id or not steps:
        raise argparse.ArgumentTypeError(f"--steps takes ENV=STEPS (e.g. MyEnv-v0=200k), got {text!r}")
    return env_id, positive_int(steps)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``report`` to the ``soar`` command line."""
    bench = commands.add_parser(
        "bench", help="multi-seed benchmark sweep of soar train runs (local process pool or a Ray cluster)",
        description="Run soar train for every environment, method, number of critics, clip and seed. When "
        "several clips are swept, each (environment, method, L > 1) chooses its clip on separate selection "
        "seeds and is reported on the evaluation seeds 0..N-1. Resumes when run again: finished runs are "
        "skipped, unfinished ones continue from their checkpoint; a failed run is retried once. Then "
        "'soar report DIR'.",
    )
    bench.add_argument("--envs", nargs="+", required=True, help="Gymnasium ids, e.g. Hopper-v5 Walker2d-v5")
    bench.add_argument("--methods", nargs="+", default=["ml-irl-sa"], help="methods on SAC (default: %(default)s)")
    bench.add_argument("--critics", nargs="+", type=positive_int, default=[1, 4],
                       help="numbers of critic pairs L (default: %(default)s)")
    bench.add_argument("--std-clip", nargs="+", type=non_negative_or_inf, default=None, dest="std_clips",
                       help="clip values sigma_clip for L > 1 (inf: no clip); several are chosen among on selection "
                       "seeds (default: 10)")
    bench.add_argument("--seeds", type=positive_int, default=5, help="evaluation seeds 0..N-1 (default: %(default)s)")
    bench.add_argument("--selection-seeds", type=positive_int, default=None,
                       help="seeds the clip is chosen on, when several are swept (default: 2)")
    bench.add_argument("--budget", choices=BUDGETS, default="short",
                       help="paper: the SOAR paper's steps (1M-3M), short: 10%% of them, smoke: 2000 steps "
                       "(default: %(default)s)")
    bench.add_argument("--steps", nargs="+", type=_steps_pair, default=[], metavar="ENV=STEPS", dest="env_steps",
                       help="steps of one run of ENV instead of the budget's (e.g. MyEnv-v0=200k: an environment "
                       "without a known budget needs it unless --budget smoke)")
    bench.add_argument("--trajectories", type=positive_int, default=1, help="expert trajectories (default: 1)")
    bench.add_argument("--demos", nargs="+", type=_demos_pair, default=[], metavar="ENV=SOURCE",
                       help="demonstrations for environments without a bundled expert (a file or minari:ID)")
    bench.add_argument("--launcher", choices=("local", "ray"), default="local",
                       help="local: a process pool on this machine; ray: tasks on a Ray cluster (default: local)")
    bench.add_argument("--address", default=None,
                       help="--launcher ray: the cluster's address ('local' starts one here; default)")
    bench.add_argument("--jobs", type=positive_int, default=None,
                       help="--launcher local: runs at once, one core each (default: the number of cores)")
    bench.add_argument("--out", type=Path, required=True, help="sweep folder")
    bench.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    bench.set_defaults(handler=run_bench, parser=bench, errors=_sweep_errors)

    report = commands.add_parser(
        "report", help="tables and figures of a soar bench sweep",
        description="Final return and expert-normalised score per environment, method and L (mean and IQM with "
        "95% stratified bootstrap intervals), the steps SOAR needs to reach its base method's final return, "
        "as DIR/report.md, and DIR/curves.png, DIR/aggregate.png, DIR/profiles.png.",
    )
    report.add_argument("dir", type=Path, help="a folder written by soar bench")
    report.add_argument("--records", type=Path, default=None, metavar="DEST",
                        help="also copy the sweep's record to DEST: the report, and per finished run its config, "
                        "logs, expert return, final policy and progress, without checkpoints (small enough to "
                        "commit; soar report reads it, and the same soar bench command completes it)")
    report.set_defaults(handler=run_report, parser=report)


def _sweep_errors() -> tuple[type[Exception], ...]:
    from soar.bench.sweep import SweepFailed

    return (SweepFailed,)


def run_bench(args: argparse.Namespace) -> None:
    from soar.bench.plan import Sweep
    from soar.bench.sweep import run_sweep

    if args.launcher != "ray" and args.address is not None:
        raise OptionError("--address is for --launcher ray")
    if args.launcher == "ray" and args.jobs is not None:
        raise OptionError("--jobs is for --launcher local (a Ray cluster runs as many tasks as it has CPUs)")
    if args.std_clips is not None and max(args.critics) == 1:
        raise OptionError("--std-clip applies to SOAR's ensemble only; add a --critics value above 1 or drop it")
    clips = tuple(args.std_clips or (10.0,))
    if args.selection_seeds is not None and not (len(clips) > 1 and max(args.critics) > 1):
        raise OptionError("--selection-seeds is for choosing among several --std-clip values; give several or drop it")
    # Absolute paths: a Ray worker's process may start elsewhere, and bench.json must name the same files.
    demos = tuple((env_id, source if source.startswith("minari:") else str(Path(source).resolve()))
                  for env_id, source in args.demos)
    try:
        sweep = Sweep(tuple(args.envs), tuple(args.methods), tuple(args.critics), clips, args.seeds,
                      args.selection_seeds or 2, args.budget, args.trajectories, demos, tuple(args.env_steps))
    except ValueError as error:
        raise OptionError(str(error)) from None
    start = time.perf_counter()
    with sigterm_as_interrupt():  # the runs stop with the sweep, at their last checkpoint
        result = run_sweep(sweep, args.out.resolve(), args.launcher, args.address, args.jobs,
                           progress=not args.no_progress)
    chosen = ", ".join(f"{env} {method} L={critics}: clip {clip:g}"
                       for (env, method, critics), clip in result.chosen.items())
    print(f"soar bench: {len(result.runs)} evaluation runs in {args.out} ({(time.perf_counter() - start) / 60:.1f} min "
          f"this invocation){'; chosen on selection seeds: ' + chosen if chosen else ''}; next: soar report {args.out}")


def run_report(args: argparse.Namespace) -> None:
    from soar.bench.report import FILES, write_report
    from soar.bench.sweep import export_records

    if args.records is not None:  # first: a sweep with no finished evaluation run yet still has a record
        copied, left = export_records(args.dir, args.records)
        print(f"copied the record of {len(copied)} finished runs to {args.records}"
              + (f"; left out {len(left)} unfinished: {', '.join(left)}" if left else ""))
    print(write_report(args.dir))
    print(f"wrote {', '.join(str(args.dir / name) for name in FILES)}")
    if args.records is not None:
        for name in FILES:
            copy_file_atomic(args.dir / name, args.records / name)
