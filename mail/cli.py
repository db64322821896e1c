"""Command line of the MAIL half of the toolkit: ``python -m mail run|plot``.

(Deliberately no console script named ``mail``: it would shadow the system's mail program.)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from mail import experiment

RESULTS_CSV = "mail_results.csv"
FIGURE = "mail_nash_gap.png"


def _count(text: str) -> int:
    """An integer that may be written like 1e5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(value)


def _concentrability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (use 'inf' for infinite)") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"concentrability must be > 1 (or inf), got {text}")
    return value


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
    run.add_argument("--game", choices=experiment.GAMES, default="lower-bound",
                     help="the lower-bound game (expert tuned to --concentrability) or random zero-sum "
                     "games (one per seed, expert = Nash equilibrium); default: %(default)s")
    run.add_argument("--concentrability", type=_concentrability, default=math.inf,
                     help="lower-bound game: the expert's computed single-policy concentrability C "
                     "(> 1, or inf); default: %(default)s")
    run.add_argument("--states", type=_count, default=10, help="random zero-sum: states (default: %(default)s)")
    run.add_argument("--actions", type=_count, default=3, help="random zero-sum: actions per player (default: %(default)s)")
    run.add_argument("--algo", choices=(*experiment.ALGORITHMS, "all"), default="all",
                     help="algorithm; bc runs both default policies (uniform, first); default: %(default)s")
    run.add_argument("--queries", type=_count, default=100_000, help="largest query budget, e.g. 1e5 (default: %(default)s)")
    run.add_argument("--points", type=_count, default=9, help="budgets on the log grid from 10 (default: %(default)s)")
    run.add_argument("--seeds", type=_count, default=20, help="seeds 0..N-1 (default: %(default)s)")
    run.add_argument("--inner", choices=("ucbvi", "exact"), default="ucbvi",
                     help="MURMAIL's inner solver (default: %(default)s)")
    run.add_argument("--inner-episodes", type=_count, default=5, help="MURMAIL UCBVI episodes per response (default: %(default)s)")
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
    algos = experiment.ALGORITHMS if args.algo == "all" else (args.algo,)
    budgets = experiment.query_budgets(args.queries, args.points)
    start = time.perf_counter()
    rows = experiment.run_grid(
        args.game, args.concentrability, algos, budgets, range(args.seeds),
        num_states=args.states, num_actions=args.actions, inner=args.inner,
        inner_episodes=args.inner_episodes, progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - start
    experiment.write_csv(rows, args.out / RESULTS_CSV)
    experiment.plot(rows, args.out / FIGURE)
    print(experiment.format_table(rows))
    print(f"wrote {args.out / RESULTS_CSV} and {args.out / FIGURE} ({elapsed:.1f} s)")


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
    if args.command == "run":
        run(args)
    else:
        redraw(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
