"""Reproduce the MAIL paper's Fig. 2 analogue: Nash gap against expert queries.

    python scripts/reproduce_mail.py [--seeds 20] [--queries 1e5] [--out runs/mail]
    python scripts/reproduce_mail.py --out docs/mail  # the published run of the README
    python scripts/reproduce_mail.py --quick          # the reduced run of `make demo`

BC (both default policies at unvisited states), MAIL-BRO and MURMAIL (UCBVI
inner loop) on the lower-bound game (c = 0.5, gamma = 0.9) with experts whose
computed concentrability is C in {2, 1e3, 1e4, inf}, and on random zero-sum
games (10 states, 3 actions, one game per seed, expert = Nash equilibrium).
Budgets are log-spaced from 10 queries; every budget is a separate run. Writes
``mail_nash_gap.png`` (sampled iterate, the one the theory covers),
``mail_nash_gap_last.png`` (last iterate), ``results.md`` (tables) and the tidy
CSV under ``OUT/csv/``. ``--quick`` changes only the defaults (5 seeds, budgets up
to 1e4 on 5 points, ``runs/mail_quick``): options given with it are kept.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from agents.config import ArgumentParser, at_least, positive_int, run_command
from mail import experiment
from mail.experiment import GridConfig

SETTINGS = [("lower-bound", 2.0), ("lower-bound", 1e3), ("lower-bound", 1e4), ("lower-bound", math.inf),
            ("random-zero-sum", None)]
#: Defaults of a full run and of --quick; an option the user gives wins over both.
DEFAULTS = {"seeds": GridConfig().seeds, "queries": GridConfig().queries, "points": GridConfig().points,
            "out": Path("runs/mail")}
QUICK = {"seeds": 5, "queries": 10_000, "points": 5, "out": Path("runs/mail_quick")}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="reproduce_mail.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, help=f"seeds per setting (default: {DEFAULTS['seeds']}; "
                        f"--quick: {QUICK['seeds']})")
    parser.add_argument("--queries", type=at_least(experiment.MIN_QUERIES),
                        help=f"largest budget (default: {DEFAULTS['queries']}; --quick: {QUICK['queries']})")
    parser.add_argument("--points", type=at_least(2),
                        help=f"budgets on the log grid (default: {DEFAULTS['points']}; --quick: {QUICK['points']})")
    parser.add_argument("--quick", action="store_true", help="the reduced run's defaults (see above)")
    parser.add_argument("--out", type=Path, help=f"output directory (default: {DEFAULTS['out']}; --quick: "
                        f"{QUICK['out']}); the README's published results are --out docs/mail")
    return parser


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """The options given, and for the others the defaults of the full or the --quick run."""
    defaults = QUICK if args.quick else DEFAULTS
    return argparse.Namespace(**{name: default if getattr(args, name) is None else getattr(args, name)
                                 for name, default in defaults.items()})


def reproduce(options: argparse.Namespace) -> None:
    out = options.out
    out.mkdir(parents=True, exist_ok=True)  # a bad --out fails now, not after the runs
    budgets = experiment.query_budgets(options.queries, options.points)
    start = time.perf_counter()
    rows = []
    for game, concentrability in SETTINGS:
        grid = dict(game=game, seeds=options.seeds, queries=options.queries, points=options.points)
        if concentrability is not None:  # the random games have none to set
            grid["concentrability"] = concentrability
        rows += experiment.run_grid(GridConfig(**grid))
    elapsed = time.perf_counter() - start
    experiment.write_csv(rows, out / "csv" / "mail_results.csv")
    experiment.plot(rows, out / "mail_nash_gap.png", policy="sampled")
    experiment.plot(rows, out / "mail_nash_gap_last.png", policy="last")
    table = experiment.format_table(rows)
    header = (f"# Nash gap against expert queries\n\n{options.seeds} seeds, budgets {budgets}, "
              f"{elapsed:.0f} s on this machine.\n\n")
    (out / "results.md").write_text(header + table + "\n![Nash gap](mail_nash_gap.png)\n")
    print(table)
    print(f"wrote {out}/mail_nash_gap.png, mail_nash_gap_last.png, results.md ({elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    options = resolve(parser.parse_args(argv))
    run_command(parser, lambda: reproduce(options))


if __name__ == "__main__":
    main()
