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

from mail import experiment
from mail.cli import _count

SETTINGS = [("lower-bound", 2.0), ("lower-bound", 1e3), ("lower-bound", 1e4), ("lower-bound", math.inf),
            ("random-zero-sum", math.nan)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=_count, default=20, help="seeds per setting (default: 20)")
    parser.add_argument("--queries", type=_count, default=100_000, help="largest budget (default: 1e5)")
    parser.add_argument("--points", type=_count, default=9, help="budgets on the log grid (default: 9)")
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
        rows += experiment.run_grid(game, concentrability, experiment.ALGORITHMS, budgets, range(args.seeds))
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
