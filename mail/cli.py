"""Command line of the MAIL half of the toolkit: ``python -m mail run|plot|games``.

(Deliberately no console script named ``mail``: it would shadow the system's mail program.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.config import ArgumentParser, add_arguments, check_new_file, from_arguments, run_command
from agents.run_folder import StopOnInterrupt, prepare_output_dir
from mail import experiment

RESULTS_CSV = "mail_results.csv"
FIGURE = "mail_nash_gap.png"
POLICIES = ("sampled", "last", "average")


def figure_name(policy: str) -> str:
    """The figure of ``policy``'s Nash gap: ``mail_nash_gap.png`` for the sampled iterate,
    ``mail_nash_gap_last.png`` and ``mail_nash_gap_average.png`` for the others."""
    return FIGURE if policy == "sampled" else FIGURE.replace(".png", f"_{policy}.png")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m mail",
        description="Multi-agent imitation learning from expert queries: BC, MAIL-BRO, MURMAIL, MAIL-WARM.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="Nash gap against expert queries",
        description="Run the chosen algorithms for every seed and a log-spaced grid of query budgets "
        f"up to --queries (each budget a separate run); write {RESULTS_CSV} (tidy: one row per run) "
        f"and {FIGURE} into --out. Options that do not apply to the chosen game or algorithm are refused.",
    )
    # Only the options given reach the config, so that one that does not apply to the run is refused.
    add_arguments(run, experiment.GridConfig, only_given=True)
    run.add_argument("--out", type=Path, required=True, help="output directory")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.set_defaults(handler=run_grid, parser=run)
    redraw = commands.add_parser(
        "plot", help="redraw a figure of a results directory",
        description=f"Draw the Nash gap of one reported policy from {RESULTS_CSV} in DIR, into DIR/{FIGURE} "
        f"(sampled iterate), DIR/{figure_name('last')} or DIR/{figure_name('average')}, or --out. An existing "
        "figure is never replaced unless --force.",
    )
    redraw.add_argument("dir", type=Path, help="a directory written by 'run'")
    redraw.add_argument("--policy", choices=POLICIES, default="sampled",
                        help="which reported policy's Nash gap to plot (default: %(default)s, the one the theory covers)")
    redraw.add_argument("--out", type=Path, default=None, help="figure file (default: in DIR, named after --policy)")
    redraw.add_argument("--force", action="store_true", help="replace the figure if it exists")
    redraw.set_defaults(handler=redraw_figure, parser=redraw)
    # explore-then-clone and BC on PettingZoo games (mail/games/cli.py: torch loads only when it runs)
    from mail.games.cli import add_games_command

    add_games_command(commands)
    return parser


def run_grid(args: argparse.Namespace) -> None:
    config = from_arguments(experiment.GridConfig, args)
    prepare_output_dir(args.out)  # a bad --out fails now, not after the runs
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


def redraw_figure(args: argparse.Namespace) -> None:
    path = args.dir / RESULTS_CSV
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (run 'python -m mail run --out {args.dir}' first)")
    out = check_new_file(args.out or args.dir / figure_name(args.policy), args.force)
    rows = experiment.read_csv(path)
    experiment.plot(rows, out, policy=args.policy)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input ends it with one line ``python -m mail COMMAND: message``, never a traceback."""
    args = build_parser().parse_args(argv)
    run_command(args.parser, lambda: args.handler(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
