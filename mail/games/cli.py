"""``python -m mail games``: explore-then-clone and BC on PettingZoo's Tic-Tac-Toe and Connect Four.

Only the parser lives at module level (no torch, no PettingZoo); the algorithms are imported
when the command runs, so ``python -m mail run|plot`` never loads them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.config import add_arguments, check_new_file, from_arguments
from agents.run_folder import StopOnInterrupt, prepare_output_dir
from mail.games.config import GamesConfig

RESULTS_CSV = "games_results.csv"


def figure_name(game: str) -> str:
    """``games_tictactoe.png`` or ``games_connect4.png``."""
    return f"games_{game}.png"


def add_games_command(commands: argparse._SubParsersAction) -> None:
    """Add the ``games`` subcommand to ``python -m mail``'s subparsers."""
    games = commands.add_parser(
        "games",
        help="explore-then-clone and BC on Tic-Tac-Toe and Connect Four",
        description="For every seed and query budget (each budget a separate run): explore-then-clone (a reward-free "
        "DQN explorer with an elliptical bonus, the expert queried at every position it reaches, then a masked "
        "classifier) and BC (the same classifier on expert self-play games, as many moves as queries). Tic-Tac-Toe: "
        "exact exploitability; Connect Four: win/draw/loss against the solver. Writes "
        f"{RESULTS_CSV} (one row per run and opponent) and games_GAME.png into --out, never over existing ones "
        "unless --force. Options that do not apply to the chosen game or algorithm are refused.",
    )
    add_arguments(games, GamesConfig, only_given=True)
    games.add_argument("--out", type=Path, required=True, help="output directory")
    games.add_argument("--force", action="store_true", help="replace the results and figure if they exist")
    games.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    games.set_defaults(handler=run_games, parser=games)


def run_games(args: argparse.Namespace) -> None:
    config = from_arguments(GamesConfig, args)
    out = prepare_output_dir(args.out)  # a bad --out fails now, not after the runs
    csv_path = check_new_file(out / RESULTS_CSV, args.force)
    figure = check_new_file(out / figure_name(config.game), args.force)
    import torch  # the algorithms need torch: loaded only now

    from mail.games import experiment

    torch.set_num_threads(1)  # networks this small gain nothing from more threads
    start = time.perf_counter()
    rows: list[dict] = []
    with StopOnInterrupt() as interrupt:
        experiment.run_grid(config, progress=not args.no_progress, rows=rows)
    elapsed = time.perf_counter() - start
    if not rows:
        raise SystemExit("interrupted before the first run finished; nothing written")
    experiment.write_csv(rows, csv_path)
    experiment.plot(rows, figure)
    print(experiment.format_table(rows))
    print(f"wrote {csv_path} and {figure} ({elapsed:.1f} s)")
    if interrupt.happened:
        print(f"interrupted: wrote the {len(rows)} rows of the runs that finished", file=sys.stderr)
        raise SystemExit(130)
