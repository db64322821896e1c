"""Reproduce the MAIL paper's Fig. 2 analogue, with MAIL-WARM: Nash gap against expert queries.

    python scripts/reproduce_mail.py [--seeds 20] [--queries 1e5] [--out runs/mail]
    python scripts/reproduce_mail.py --out docs/mail  # the published run of the README
    python scripts/reproduce_mail.py --quick          # the reduced run of `make demo`
    python scripts/reproduce_mail.py --settings grid-race lower-bound-inf --seeds 5 --out docs/mail_warm

BC (both default policies at unvisited states), MAIL-BRO, MURMAIL (UCBVI inner loop) and
MAIL-WARM on the lower-bound game (c = 0.5, gamma = 0.9) with experts whose computed
concentrability is C in {2, 1e3, 1e4, inf} and on random zero-sum games (10 states, 3 actions,
one game per seed, expert = Nash equilibrium); ``--settings grid-race`` adds the 3 x 3 grid race
(72 states, expert = Nash equilibrium, C = inf; MAIL-BRO's best responses make it the slowest
setting: about a minute per run at 1e5 queries here). Budgets are log-spaced from 10 queries; every budget is a separate
run. Writes ``mail_nash_gap.png`` (sampled iterate, the one the theory covers),
``mail_nash_gap_last.png`` (last iterate), ``results.md`` (tables) and the tidy CSV under
``OUT/csv/``. ``--quick`` changes only the defaults (5 seeds, budgets up to 1e4 on 5 points,
``runs/mail_quick``): options given with it are kept.

The CSV is rewritten after each setting and algorithm (Ctrl-C keeps what finished). With
``--resume`` a run whose (setting, algorithm, seed, budget) the CSV already holds is not run
again, so an interrupted reproduction, or one given a new algorithm or setting, only computes
what is missing; resume only with the code that wrote the CSV (its rows record no version).
Without it an existing CSV is replaced. The figure and tables show the runs of this
invocation's grid; with ``--resume`` rows of other grids stay in the CSV. One process at a
time writes a folder (a lock refuses a second).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from agents.checkpoints import write_text_atomic
from agents.config import ArgumentParser, at_least, positive_int, run_command
from agents.run_folder import RunLock, prepare_output_dir
from mail import experiment
from mail.experiment import GridConfig

#: The settings, by command-line name: (game, target concentrability of the lower-bound expert).
SETTINGS = {"lower-bound-2": ("lower-bound", 2.0), "lower-bound-1e3": ("lower-bound", 1e3),
            "lower-bound-1e4": ("lower-bound", 1e4), "lower-bound-inf": ("lower-bound", math.inf),
            "random-zero-sum": ("random-zero-sum", None), "grid-race": ("grid-race", None)}
#: Defaults of a full run and of --quick; an option the user gives wins over both.
DEFAULTS = {"seeds": GridConfig().seeds, "queries": GridConfig().queries, "points": GridConfig().points,
            "out": Path("runs/mail"), "settings": [name for name in SETTINGS if name != "grid-race"],
            "algos": list(experiment.ALGORITHMS)}
QUICK = {**DEFAULTS, "seeds": 5, "queries": 10_000, "points": 5, "out": Path("runs/mail_quick")}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="reproduce_mail.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, help=f"seeds per setting (default: {DEFAULTS['seeds']}; "
                        f"--quick: {QUICK['seeds']})")
    parser.add_argument("--queries", type=at_least(experiment.MIN_QUERIES),
                        help=f"largest budget (default: {DEFAULTS['queries']}; --quick: {QUICK['queries']})")
    parser.add_argument("--points", type=at_least(2),
                        help=f"budgets on the log grid (default: {DEFAULTS['points']}; --quick: {QUICK['points']})")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), metavar="SETTING",
                        help=f"settings to run, of {', '.join(SETTINGS)} (default: all but grid-race)")
    parser.add_argument("--algos", nargs="+", choices=experiment.ALGORITHMS, metavar="ALGO",
                        help=f"algorithms to run, of {', '.join(experiment.ALGORITHMS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="the reduced run's defaults (see above)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs OUT/csv/mail_results.csv holds and run only the missing ones "
                        "(default: run everything and replace the CSV)")
    parser.add_argument("--out", type=Path, help=f"output directory (default: {DEFAULTS['out']}; --quick: "
                        f"{QUICK['out']}); the README's published results are --out docs/mail")
    return parser


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """The options given, and for the others the defaults of the full or the --quick run."""
    defaults = QUICK if args.quick else DEFAULTS
    return argparse.Namespace(resume=args.resume,
                              **{name: default if getattr(args, name) is None else getattr(args, name)
                                 for name, default in defaults.items()})


def _same_setting(row: dict, game: str, concentrability: float | None) -> bool:
    return row["game"] == game and (concentrability is None or row["target_c"] == concentrability)


def reproduce(options: argparse.Namespace) -> None:
    out = options.out
    prepare_output_dir(out)  # a bad --out fails now, not after the runs
    with RunLock(out):
        _reproduce(options, out)


def _reproduce(options: argparse.Namespace, out: Path) -> None:
    csv_path = out / "csv" / "mail_results.csv"
    stored = experiment.read_csv(csv_path) if options.resume and csv_path.exists() else []
    budgets = experiment.query_budgets(options.queries, options.points)
    seeds = range(options.seeds)
    start = time.perf_counter()
    shown = []
    for name in dict.fromkeys(options.settings):
        game, concentrability = SETTINGS[name]
        mine = [row for row in stored if _same_setting(row, game, concentrability)]
        for algo in dict.fromkeys(options.algos):
            done = {(experiment.algorithm_of(r["algo"]), r["seed"], r["budget"]) for r in mine}
            grid = dict(game=game, seeds=options.seeds, queries=options.queries, points=options.points, algo=algo)
            if concentrability is not None:  # the other games have none to set
                grid["concentrability"] = concentrability
            new: list[dict] = []
            try:
                experiment.run_grid(GridConfig(**grid), rows=new, done=done)
            finally:  # Ctrl-C included: what finished is kept for the next invocation
                if new:
                    stored += new
                    mine += new
                    experiment.write_csv(stored, csv_path)
        shown += [row for row in mine if experiment.algorithm_of(row["algo"]) in options.algos
                  and row["seed"] in seeds and row["budget"] in budgets]
    elapsed = time.perf_counter() - start
    experiment.plot(shown, out / "mail_nash_gap.png", policy="sampled")
    experiment.plot(shown, out / "mail_nash_gap_last.png", policy="last")
    table = experiment.format_table(shown)
    compute = sum(row["seconds"] for row in shown)
    resumed = ", runs already in the CSV were not run again" if options.resume else ""
    header = (f"# Nash gap against expert queries\n\n{options.seeds} seeds, budgets {budgets}. The runs shown took "
              f"{compute:.0f} s in all on this machine (the sum of their own clocks; this invocation "
              f"{elapsed:.0f} s{resumed}).\n\n")
    write_text_atomic(out / "results.md", header + table + "\n![Nash gap](mail_nash_gap.png)\n")
    print(table)
    print(f"wrote {out}/mail_nash_gap.png, mail_nash_gap_last.png, results.md ({elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    options = resolve(parser.parse_args(argv))
    run_command(parser, lambda: reproduce(options))


if __name__ == "__main__":
    main()
