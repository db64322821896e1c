"""Command line of the MAIL half of the toolkit: ``python -m mail run|plot``.

(Deliberately no console script named ``mail``: it would shadow the system's mail program.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.config import add_arguments, from_arguments
from agents.run_folder import StopOnInterrupt, cli_errors, prepare_output_dir
from mail import experiment

RESULTS_CSV = "mail_results.csv"
FIGURE = "mail_nash_gap.png"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mail",
        description="Multi-agent imitation learning from expert queries: BC, MAIL-BRO, MURMAIL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="Nash gap against expert queries",
        description="Run the chosen algorithms for every seed and a log-spaced grid of query budgets "
        f"up to --queries (each budget a separate run); write {RESULTS_CSV} (tidy: one row per run) "
        f"and {FIGURE} into --out.",
    )
    add_arguments(run, experiment.GridConfig)
    run.add_argument("--out", type=Path, required=True, help="output directory")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    redraw = commands.add_parser("plot", help="redraw the figure of a results directory",
                                 description=f"Redraw {FIGURE} from {RESULTS_CSV} in DIR.")
    redraw.add_argument("dir", type=Path, help="a directory written by 'run'")
    redraw.add_argument("--policy", choices=("sampled", "last", "average"), default="sampled",
                        help="which reported policy's Nash gap to plot (default: %(default)s, the one the theory covers)")
    return parser


def run(args: argparse.Namespace) -> None:
    if args.queries < 10:
        raise SystemExit("error: --queries must be at least 10")
    config = from_arguments(experiment.GridConfig, args)
    try:
        prepare_output_dir(args.out)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    start = time.perf_counter()
    rows: list[dict] = []
    with StopOnInterrupt() as interrupt:
        experiment.run_grid(config, progress=not args.no_progress, rows=rows)
    elapsed = time.perf_counter() - start
    if not rows:
        raise SystemExit("interrupted before the first run finished; nothing written")
    experiment.write_csv(rows, args.out / RESULTS_CSV)
    experiment.plot(rows, args.out / FIGURE)
    print(experiment.format_table(rows))
    print(f"wrote {args.out / RESULTS_CSV} and {args.out / FIGURE} ({elapsed:.1f} s)")
    if interrupt.happened:
        print(f"interrupted: wrote the {len(rows)} rows of the runs that finished", file=sys.stderr)
        raise SystemExit(130)


def redraw(args: argparse.Namespace) -> None:
    path = args.dir / RESULTS_CSV
    if not path.exists():
        raise SystemExit(f"error: {path} not found (run 'python -m mail run --out {args.dir}' first)")
    try:
        rows = experiment.read_csv(path)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    experiment.plot(rows, args.dir / FIGURE, policy=args.policy)
    print(f"wrote {args.dir / FIGURE}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("python -m mail"):
        if args.command == "run":
            run(args)
        else:
            redraw(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
