"""The games experiment: explore-then-clone against BC on Tic-Tac-Toe and Connect Four, per query budget.

Every (algorithm, seed, budget) is a separate run. Tic-Tac-Toe runs are scored exactly:
the exploitability of the cloned policy (its distribution, and its most probable move),
and its win/draw/loss probabilities against the minimax expert. Connect Four runs are
scored by games against the solver at each opponent temperature, half in each seat, the
cloned policy sampling its moves. Reference rows (budget 0): the expert itself and the
uniformly random legal player, scored the same way.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from agents import plotting, records
from agents.interface import Policy
from mail.games import tictactoe
from mail.games.bc import bc
from mail.games.clone import CloneConfig, CloneResult
from mail.games.common import MovePolicy, get_game, play_game, policy_player, split_observation
from mail.games.config import ALGORITHMS, GamesConfig
from mail.games.connect_four import SolverExpert
from mail.games.explore_clone import ExploreConfig, explore_then_clone

#: Columns of a results CSV: one row per run and opponent (Tic-Tac-Toe: the minimax expert, exact).
CSV_FIELDS = {
    "game": str, "algo": str, "seed": int, "budget": int, "queries": int, "positions": int, "games": int,
    "switches": int, "seconds": float, "opponent": str, "eval_games": int, "win": float, "draw": float,
    "loss": float, "exploitability": float, "exploitability_greedy": float, "br_first": float, "br_second": float,
}
REFERENCES = ("expert", "random")
#: The classifier's settings in every run (tests shrink them).
CLONE_CONFIG = CloneConfig()
COLORS = {"explore-clone": "tab:blue", "bc": "tab:orange", "explore-random": "tab:purple", "expert": "tab:green",
          "random": "tab:gray"}


class UniformPolicy(MovePolicy):
    """The uniformly random legal player (a reference), over either game's observation dicts."""

    def __init__(self, game_name: str) -> None:
        self.game = get_game(game_name)

    def _rows(self, obs) -> tuple[np.ndarray, bool]:
        _, masks, single = split_observation(obs, self.game)
        return masks / masks.sum(1, keepdims=True), single



def make_expert(config: GamesConfig) -> Policy:
    """The game's expert: exact minimax (Tic-Tac-Toe) or the solver at the expert temperature (Connect Four)."""
    if config.game == "tictactoe":
        return tictactoe.minimax_expert()
    return SolverExpert(config.expert_temperature)


def explore_config(config: GamesConfig, random_deviator: bool = False) -> ExploreConfig:
    """The explorer's settings: ``beta`` and ``lambda`` from ``config``, the rest :class:`ExploreConfig`'s defaults;
    ``random_deviator``: uniformly random legal moves instead of the DQN's (epsilon 1)."""
    return ExploreConfig(beta=config.beta, lam=config.lam, epsilon=1.0 if random_deviator else 0.0)


def opponent_name(temperature: float) -> str:
    return f"solver T={temperature:g}"


def evaluate(config: GamesConfig, policy: Policy, seed: int) -> list[dict]:
    """Scores of ``policy``: one row for Tic-Tac-Toe (exact), one per opponent temperature for Connect Four."""
    if config.game == "tictactoe":
        expert = tictactoe.minimax_expert()
        sampled, greedy = tictactoe.exploitability(policy), tictactoe.exploitability(policy, greedy=True)
        outcome = tictactoe.match_outcome(policy, expert)
        return [dict(opponent="minimax", eval_games=0, win=outcome.win, draw=outcome.draw, loss=outcome.loss,
                     exploitability=sampled.value, exploitability_greedy=greedy.value,
                     br_first=sampled.best_response[0], br_second=sampled.best_response[1])]
    game = get_game(config.game)
    env = game.make_env()
    rows = []
    for temperature in config.opponent_temperatures:
        opponent = SolverExpert(temperature)
        rng = np.random.default_rng([seed, 1])  # the same games for every policy evaluated with this seed
        results = []
        for k in range(config.eval_games):
            players = [policy_player(policy, rng), policy_player(opponent, rng)]
            seat = k % 2  # the policy plays first in even games, second in odd ones
            outcome = play_game(env, players if seat == 0 else players[::-1], seed=k)
            results.append(outcome if seat == 0 else -outcome)
        results = np.array(results)
        rows.append(dict(opponent=opponent_name(temperature), eval_games=config.eval_games,
                         win=float(np.mean(results > 0)), draw=float(np.mean(results == 0)),
                         loss=float(np.mean(results < 0)), exploitability=math.nan, exploitability_greedy=math.nan,
                         br_first=math.nan, br_second=math.nan))
    return rows


def run_one(config: GamesConfig, algo: str, budget: int, seed: int) -> list[dict]:
    """One run of ``algo`` with ``budget`` queries (or a reference policy, budget 0), scored by :func:`evaluate`."""
    game = get_game(config.game)
    start = time.perf_counter()
    if algo not in (*REFERENCES, *ALGORITHMS):
        raise ValueError(f"algo must be one of {(*ALGORITHMS, *REFERENCES)}, got {algo!r}")
    if algo in REFERENCES:
        policy = make_expert(config) if algo == "expert" else UniformPolicy(config.game)
        run = dict(queries=0, positions=0, games=0, switches=0)
    else:
        result: CloneResult
        if algo == "bc":
            result = bc(game, make_expert(config), budget, seed, CLONE_CONFIG)
        else:
            explorer = explore_config(config, random_deviator=algo == "explore-random")
            result = explore_then_clone(game, make_expert(config), budget, seed, explorer, CLONE_CONFIG)
        policy = result.policy
        run = dict(queries=result.queries, positions=result.log.distinct_positions(), games=result.games,
                   switches=sum(v for k, v in result.info.items() if k.startswith("switches")))
    rows = evaluate(config, policy, seed)
    seconds = time.perf_counter() - start
    return [dict(game=config.game, algo=algo, seed=seed, budget=budget, seconds=seconds, **run, **row)
            for row in rows]


def jobs(config: GamesConfig, with_references: bool = True) -> list[tuple[str, int, int]]:
    """``(algo, budget, seed)`` of every run of ``config``, references first."""
    listed = [(algo, 0, seed) for algo in REFERENCES for seed in range(config.seeds)] if with_references else []
    return listed + [(algo, budget, seed) for algo in config.algo for budget in config.queries
                     for seed in range(config.seeds)]


def run_grid(config: GamesConfig, progress: bool = True, rows: list[dict] | None = None,
             done: set[tuple[str, int, int]] = frozenset(), on_run: Callable[[list[dict]], None] | None = None,
             with_references: bool = True) -> list[dict]:
    """Every run of ``config`` not in ``done``; ``rows`` (default a new list) receives each run's rows as it
    finishes (so an interrupted sweep keeps them), and ``on_run`` is called with the rows so far."""
    if not isinstance(config, GamesConfig):
        raise ValueError(f"config must be a GamesConfig, got {type(config).__name__}")
    rows = [] if rows is None else rows
    todo = [job for job in jobs(config, with_references) if job not in done]
    with tqdm(total=sum(max(budget, 1) for _, budget, _ in todo), unit="query", disable=not progress,
              desc=config.game) as bar:
        for algo, budget, seed in todo:
            bar.set_postfix_str(f"{algo} budget={budget} seed={seed}")
            rows.extend(run_one(config, algo, budget, seed))
            if on_run is not None:
                on_run(rows)
            bar.update(max(budget, 1))
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    records.write_rows(rows, Path(path), CSV_FIELDS)


def read_csv(path: Path) -> list[dict]:
    """Read a results CSV; ``ValueError`` naming the file and what is wrong with it."""
    return records.read_rows(Path(path), CSV_FIELDS, "games results")


# ------------------------------------------------------------------ summaries
def _groups(rows: list[dict], opponent: str) -> dict[str, dict[int, list[dict]]]:
    grouped: dict[str, dict[int, list[dict]]] = {}
    for row in rows:
        if row["opponent"] == opponent:
            grouped.setdefault(row["algo"], {}).setdefault(row["budget"], []).append(row)
    return grouped


def _opponents(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(row["opponent"] for row in rows))


def _cell(values: list[float]) -> str:
    values = np.asarray(values, dtype=np.float64)
    half = float(plotting.t_half_width(values)) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {half:.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def _algo_order(algos) -> list[str]:
    order = ["explore-clone", "explore-random", "bc", "expert", "random"]
    return sorted(algos, key=lambda a: order.index(a) if a in order else len(order))


def format_table(rows: list[dict]) -> str:
    """Markdown tables: mean ± 95% t half-width over seeds, per algorithm and budget (0: references)."""
    if not rows:
        return ""
    game = rows[0]["game"]
    lines = []
    for opponent in _opponents(rows):
        grouped = _groups(rows, opponent)
        seeds = max(len(runs) for by_budget in grouped.values() for runs in by_budget.values())
        if game == "tictactoe":
            lines.append(f"Mean ± 95% t half-width over {plotting.count_text(seeds, 'seeds')}; exact values (full "
                         "game-tree search).\n")
            lines.append("| algorithm | queries | exploitability | exploitability (greedy) | best response vs "
                         "first / second seat | win / draw / loss vs minimax | distinct positions queried | "
                         "seconds |")
            lines.append("|---|---|---|---|---|---|---|---|")
        else:
            lines.append(f"**Against the {opponent}**: rates over {rows[0]['eval_games'] or '?'} games per run "
                         f"(half in each seat), mean ± 95% t half-width over {plotting.count_text(seeds, 'seeds')}.\n")
            lines.append("| algorithm | queries | win | draw | loss | distinct positions queried | seconds |")
            lines.append("|---|---|---|---|---|---|---|")
        for algo in _algo_order(grouped):
            for budget, runs in sorted(grouped[algo].items()):
                column = lambda name: [r[name] for r in runs]  # noqa: E731
                queries = f"{np.mean(column('queries')):.0f}" if budget else "-"
                positions = f"{np.mean(column('positions')):.0f}" if budget else "-"
                seconds = f"{np.mean(column('seconds')):.1f}"
                if game == "tictactoe":
                    lines.append(
                        f"| {algo} | {queries} | {_cell(column('exploitability'))} | "
                        f"{_cell(column('exploitability_greedy'))} | {np.mean(column('br_first')):.3f} / "
                        f"{np.mean(column('br_second')):.3f} | {np.mean(column('win')):.3f} / "
                        f"{np.mean(column('draw')):.3f} / {np.mean(column('loss')):.3f} | {positions} | {seconds} |")
                else:
                    lines.append(f"| {algo} | {queries} | {_cell(column('win'))} | {_cell(column('draw'))} | "
                                 f"{_cell(column('loss'))} | {positions} | {seconds} |")
        lines.append("")
    return "\n".join(lines)


def _curve(runs_by_budget: dict[int, list[dict]], name: str) -> tuple[np.ndarray, ...]:
    budgets = sorted(b for b in runs_by_budget if b > 0)
    x = np.array([np.mean([r["queries"] for r in runs_by_budget[b]]) for b in budgets])
    values = [np.array([r[name] for r in runs_by_budget[b]], dtype=np.float64) for b in budgets]
    mean = np.array([v.mean() for v in values])
    half = np.array([float(plotting.t_half_width(v)) for v in values])
    return x, mean, half, np.array([len(v) for v in values])


def plot(rows: list[dict], path: Path) -> None:
    """Tic-Tac-Toe: exploitability (distribution, greedy) and loss rate against the minimax expert; Connect
    Four: win and loss rates against each solver opponent; all against expert queries (log x), mean and
    95% t-band over seeds, the references (expert, random player) as dashed lines."""
    from matplotlib import ticker

    game = rows[0]["game"]
    if game == "tictactoe":
        panels = [("minimax", "exploitability", "exploitability"),
                  ("minimax", "exploitability_greedy", "exploitability (greedy policy)"),
                  ("minimax", "loss", "loss rate against the minimax expert")]
    else:
        panels = [(opponent, name, f"{name} rate against the {opponent}")
                  for name in ("win", "loss") for opponent in _opponents(rows)]
    columns = 3 if game == "tictactoe" else len(_opponents(rows))
    lines = math.ceil(len(panels) / columns)
    figure, axes = plotting.new_figure(lines, columns, width=4.2 * columns + 2.4, height=3.4 * lines)
    seeds = []
    for axis, (opponent, name, title) in zip(axes.flat, panels):
        grouped = _groups(rows, opponent)
        for algo in _algo_order(grouped):
            color = COLORS.get(algo)
            if algo in REFERENCES:
                level = np.mean([r[name] for r in grouped[algo].get(0, [])])
                axis.axhline(level, color=color, linestyle="--", linewidth=1, label=f"{algo} (reference)")
                continue
            x, mean, half, counts = _curve(grouped[algo], name)
            axis.plot(x, mean, marker="o", markersize=3, color=color, label=algo)
            low, high = plotting.clipped_band(mean, half, lower=0.0, upper=1.0)
            plotting.draw_band(axis, x, low, high, color)
            seeds += counts.tolist()
        axis.set_xscale("log")
        budgets = sorted({r["budget"] for r in rows if r["budget"] > 0})
        axis.set_xticks(budgets, labels=[f"{b:g}" for b in budgets])  # few budgets: label each, nothing else
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("expert queries")
        axis.grid(alpha=0.3)
    bands = plotting.band_text(plotting.t_interval_text(0.95, seeds), "[0, 1]") if seeds else None
    plotting.legend_outside(figure, extra=[plotting.band_handle(bands)] if bands else [])
    plotting.save_figure(figure, path)
