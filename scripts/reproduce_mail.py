"""Reproduce the MAIL paper's Fig. 2 analogue: Nash gap against expert queries.

    python scripts/reproduce_mail.py [--seeds 20] [--queries 1e5] [--out docs/mail]
    python scripts/reproduce_mail.py --quick          # the reduced run of `make demo`

BC (both default policies at unvisited states), MAIL-BRO and MURMAIL (UCBVI
inner loop) on the lower-bound game (c = 0.5, gamma = 0.9) with experts whose
computed concentrability is C in {2, 1e3, 1e4, inf}, and on random zero-sum
games (10 states, 3 actions, one game per seed, expert = Nash equilibrium).
Budgets are log-spaced from 10 queries; every budget is a separate run. Writes
``mail_nash_gap.png`` (sampled iterate, the one the theory covers),
``mail_nash_gap_last.png`` (last iterate), ``results.md`` (tables) and the tidy
CSV under ``OUT/csv/``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from agents.config import positive_int
from mail import experiment
from mail.experiment import GridConfig

SETTINGS = [("lower-bound", 2.0), ("lower-bound", 1e3), ("lower-bound", 1e4), ("lower-bound", math.inf),
            ("random-zero-sum", math.nan)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = GridConfig()
    parser.add_argument("--seeds", type=positive_int, default=defaults.seeds,
                        help="seeds per setting (default: %(default)s)")
    parser.add_argument("--queries", type=positive_int, default=defaults.queries,
                        help="largest budget (default: %(default)s)")
    parser.add_argument("--points", type=positive_int, default=defaults.points,
                        help="budgets on the log grid (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="reduced run: 5 seeds, budgets up to 1e4")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: docs/mail, or runs/mail_quick)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.queries, args.points = 5, 10_000, 5
    out = args.out or Path("runs/mail_quick" if args.quick else "docs/mail")
    budgets = experiment.query_budgets(args.queries, args.points)
    start = time.perf_counter()
    rows = []
    for game, concentrability in SETTINGS:
        config = GridConfig(game=game, concentrability=concentrability, seeds=args.seeds, queries=args.queries,
                            points=args.points)
        rows += experiment.run_grid(config)
    elapsed = time.perf_counter() - start
    experiment.write_csv(rows, out / "csv" / "mail_results.csv")
    experiment.plot(rows, out / "mail_nash_gap.png", policy="sampled")
    experiment.plot(rows, out / "mail_nash_gap_last.png", policy="last")
    table = experiment.format_table(rows)
    header = (f"# Nash gap against expert queries\n\n{args.seeds} seeds, budgets {budgets}, "
              f"{elapsed:.0f} s on this machine.\n\n")
    (out / "results.md").write_text(header + table + "\n![Nash gap](mail_nash_gap.png)\n")
    print(table)
    print(f"wrote {out}/mail_nash_gap.png, mail_nash_gap_last.png, results.md ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
