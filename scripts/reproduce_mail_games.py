"""Explore-then-clone against BC on real games: Tic-Tac-Toe (exact exploitability) and Connect Four
(win/draw/loss against the bitbully solver).

    python scripts/reproduce_mail_games.py [--out runs/mail_games]
    python scripts/reproduce_mail_games.py --out docs/mail_games   # the published run of the README
    python scripts/reproduce_mail_games.py --quick                 # about 1-2 minutes (runs/mail_games_quick)

Tic-Tac-Toe: the minimax expert (uniform over optimal moves); budgets 300 to 3e4 queries,
3 seeds; exact exploitability of the cloned policy (its distribution and its most probable
move) and its exact win/draw/loss against the expert; also explore-then-clone with a
uniformly random deviator instead of the DQN (explore-random), to see what the explorer
adds. Connect Four: the solver at temperature 1 as the expert; budgets 300 to 3000
queries, 3 seeds; 40 games (20 per seat) per run against the solver at temperatures 1
(the expert itself) and 4 (a weaker player). Both games with the expert and the uniformly
random player as references.

Resumable: each finished run is appended to ``OUT/csv/GAME.csv`` at once, and a rerun with
the same settings (more seeds or budgets allowed) skips the runs already there. Writes
``OUT/GAME.png`` and ``OUT/results.md`` (tables, wall times). ``--quick`` changes only the
defaults of the options not given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from agents.checkpoints import write_text_atomic
from agents.config import ArgumentParser, check_resumable, positive_int, run_command, write_config
from mail.games import experiment
from mail.games.config import GamesConfig

FULL = {"seeds": 3, "tictactoe": (300, 1000, 3000, 10_000, 30_000), "connect4": (300, 1000, 3000), "eval_games": 40,
        "out": Path("runs/mail_games")}
QUICK = {"seeds": 1, "tictactoe": (300, 1000), "connect4": (200,), "eval_games": 10,
         "out": Path("runs/mail_games_quick")}


def machine() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one) and its number of cores."""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="reproduce_mail_games.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, help=f"seeds per run (default: {FULL['seeds']}; --quick: "
                        f"{QUICK['seeds']})")
    parser.add_argument("--tictactoe-queries", type=positive_int, nargs="+",
                        help=f"Tic-Tac-Toe budgets (default: {FULL['tictactoe']}; --quick: {QUICK['tictactoe']})")
    parser.add_argument("--connect4-queries", type=positive_int, nargs="+",
                        help=f"Connect Four budgets (default: {FULL['connect4']}; --quick: {QUICK['connect4']})")
    parser.add_argument("--eval-games", type=positive_int, help=f"Connect Four games per opponent (default: "
                        f"{FULL['eval_games']}; --quick: {QUICK['eval_games']})")
    parser.add_argument("--games", nargs="+", choices=("tictactoe", "connect4"), default=["tictactoe", "connect4"],
                        help="which games (default: both)")
    parser.add_argument("--quick", action="store_true", help="the reduced run's defaults (see above)")
    parser.add_argument("--out", type=Path, help=f"output directory (default: {FULL['out']}; --quick: "
                        f"{QUICK['out']}); the README's published results are --out docs/mail_games")
    return parser


def configs(args: argparse.Namespace) -> tuple[Path, dict[str, GamesConfig]]:
    """The output folder and one config per game: the options given, the full or --quick defaults otherwise."""
    defaults = QUICK if args.quick else FULL
    seeds = args.seeds or defaults["seeds"]
    chosen = {
        "tictactoe": GamesConfig(game="tictactoe", queries=tuple(args.tictactoe_queries or defaults["tictactoe"]),
                                 seeds=seeds, algo=("explore-clone", "bc", "explore-random")),
        "connect4": GamesConfig(game="connect4", queries=tuple(args.connect4_queries or defaults["connect4"]),
                                seeds=seeds, eval_games=args.eval_games or defaults["eval_games"]),
    }
    return args.out or defaults["out"], {name: chosen[name] for name in args.games}


def run_game(out: Path, config: GamesConfig) -> tuple[list[dict], float]:
    """Run (or resume) one game's sweep; returns its rows and this invocation's wall time."""
    csv_path, config_path = out / "csv" / f"{config.game}.csv", out / "csv" / f"{config.game}_config.json"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if csv_path.exists():
        check_resumable(config_path, config)
        rows = experiment.read_csv(csv_path)
    else:
        write_config(config_path, config)
    done = {(r["algo"], r["budget"], r["seed"]) for r in rows}
    start = time.perf_counter()
    experiment.run_grid(config, rows=rows, done=done, on_run=lambda so_far: experiment.write_csv(so_far, csv_path))
    write_config(config_path, config)  # records added budgets and seeds
    return rows, time.perf_counter() - start


def report(out: Path, results: dict[str, tuple[list[dict], float, GamesConfig]], total: float) -> str:
    lines = ["# Explore-then-clone against BC on Tic-Tac-Toe and Connect Four", "",
             f"Machine: {machine()} (torch with one thread). "
             f"This invocation: {total:.0f} s.", ""]
    for game, (rows, seconds, config) in results.items():
        compute = sum(r["seconds"] for r in rows if r["opponent"] == rows[0]["opponent"])  # once per run
        lines += [f"## {'Tic-Tac-Toe' if game == 'tictactoe' else 'Connect Four'}", "",
                  f"Budgets {list(config.queries)}, {config.seeds} seeds; settings in `csv/{game}_config.json`. "
                  f"Sum of the runs' times (training and evaluation, resumed runs included): {compute:.0f} s; "
                  f"this invocation: {seconds:.0f} s.", "",
                  experiment.format_table(rows), f"![{game}]({game}.png)", ""]
    return "\n".join(lines)


def reproduce(args: argparse.Namespace) -> None:
    out, chosen = configs(args)
    (out / "csv").mkdir(parents=True, exist_ok=True)  # a bad --out fails now, not after the runs
    torch.set_num_threads(1)  # networks this small gain nothing from more threads
    start = time.perf_counter()
    results = {}
    for game, config in chosen.items():
        rows, seconds = run_game(out, config)
        experiment.plot(rows, out / f"{game}.png")
        results[game] = (rows, seconds, config)
        print(experiment.format_table(rows))
    total = time.perf_counter() - start
    write_text_atomic(out / "results.md", report(out, results, total))
    print(json.dumps({game: f"{seconds:.0f} s" for game, (_, seconds, _) in results.items()}))
    print(f"wrote {out}/results.md and the figures ({total:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    run_command(parser, lambda: reproduce(args))


if __name__ == "__main__":
    main()
