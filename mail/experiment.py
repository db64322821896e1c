"""The MAIL experiment: Nash gap against expert queries for BC, MAIL-BRO, MURMAIL and MAIL-WARM.

Each (algorithm, seed, query budget) is a separate run whose iteration count
(and so its default step size) is set by the budget: a point of the curve is
"the algorithm given N queries", not an intermediate point of a longer run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np
from scipy import optimize
from tqdm.auto import tqdm

from agents import plotting, records, tabular
from agents.config import (
    Parser, at_least, changed_settings, check_applicable, check_settings, positive_float, positive_int, setting,
)
from envs import games
from envs.markov_game import MarkovGame
from envs.validation import check_choice, check_int, check_non_negative_int, check_positive_int
from mail.bc import bc, expert_dataset
from mail.mail_bro import mail_bro
from mail.mail_warm import mail_warm, queries_per_episode_round
from mail.murmail import INNER, murmail, queries_per_iteration
from mail.oracle import ExpertOracle
from mail.result import REPORTED

ALGORITHMS = ("bc", "mail-bro", "murmail", "mail-warm")
GAMES = ("lower-bound", "random-zero-sum", "grid-race")
#: Games that are the same for every seed (the seed drives only the runs).
FIXED_GAMES = ("lower-bound", "grid-race")
#: The smallest query budget of a grid.
MIN_QUERIES = 10
#: Columns of a results CSV and their types.
CSV_FIELDS = {
    "game": str, "target_c": float, "c_single": float, "c_all": float, "algo": str, "seed": int,
    "budget": int, "iterations": int, "expert_queries": int, "oracle_calls": int, "simulator_steps": int,
    "gap_last": float, "gap_average": float, "gap_sampled": float, "seconds": float,
}


#: Smallest target concentrability the lower-bound expert family reaches (see envs.games.lower_bound_expert).
MIN_CONCENTRABILITY = games.LOWER_BOUND_MIN_CONCENTRABILITY
#: Targets this close below the minimum (relative) count as the minimum itself: rounding of a typed 1.618034.
_MIN_TOLERANCE = 1e-6


def check_concentrability(value: float, name: str | None = "concentrability") -> float:
    """A target concentrability of the lower-bound expert family: at least :data:`MIN_CONCENTRABILITY`, or inf.

    The family's coefficient is ``max(1 / lambda, 1 / (1 - lambda^2))``, never below the
    golden ratio (about 1.618) except at the degenerate ``lambda = 0`` (C = 1), so smaller
    targets are out of its reach.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not value >= MIN_CONCENTRABILITY * (1 - _MIN_TOLERANCE):
        prefix = f"{name} " if name else ""
        raise ValueError(
            f"{prefix}must be at least {MIN_CONCENTRABILITY:.6f} (or inf), got {value!r}: the lower-bound "
            f"expert family's concentrability max(1/lambda, 1/(1 - lambda^2)) is never smaller (the golden ratio)"
        )
    return max(value, MIN_CONCENTRABILITY)


#: The command line's --concentrability (also the check of GridConfig.concentrability).
concentrability_value = Parser("concentrability", check_concentrability)


@dataclass(frozen=True)
class GridConfig:
    """One experiment grid: a game, the algorithms, seeds and a log grid of query budgets."""

    game: str = setting("lower-bound", choices=GAMES,
                        help="the lower-bound game (expert tuned to --concentrability), random zero-sum "
                        "games (one per seed) or the 3 x 3 grid race (envs.games.grid_race); the expert of "
                        "the last two is a Nash equilibrium by Shapley iteration")
    concentrability: float = setting(math.inf, parse=concentrability_value,
                                     help="lower-bound game: the expert's computed single-policy concentrability C "
                                     f"(at least {MIN_CONCENTRABILITY:.4f}, the golden ratio, the smallest the "
                                     "expert family reaches; or inf)",
                                     applies=(lambda c: c.game == "lower-bound", "by the lower-bound game only"))
    states: int = setting(10, parse=positive_int, help="random zero-sum: states",
                          applies=(lambda c: c.game == "random-zero-sum", "by the random zero-sum games only"))
    actions: int = setting(3, parse=positive_int, help="random zero-sum: actions per player",
                           applies=(lambda c: c.game == "random-zero-sum", "by the random zero-sum games only"))
    algo: str = setting("all", choices=(*ALGORITHMS, "all"),
                        help="algorithm; bc runs both default policies (uniform, first)")
    queries: int = setting(100_000, parse=at_least(MIN_QUERIES),
                           help=f"largest query budget, e.g. 1e5 (at least {MIN_QUERIES})")
    points: int = setting(9, parse=at_least(2), help=f"budgets on the log grid from {MIN_QUERIES} to --queries")
    seeds: int = setting(20, parse=positive_int, help="seeds 0..N-1")
    inner: str = setting("ucbvi", choices=INNER, help="MURMAIL's inner solver",
                         applies=(lambda c: "murmail" in c.algorithms, "by MURMAIL only (--algo murmail or all)"))
    inner_episodes: int = setting(5, parse=positive_int, help="MURMAIL UCBVI episodes per response",
                                  applies=(lambda c: "murmail" in c.algorithms and c.inner == "ucbvi",
                                           "by MURMAIL's UCBVI inner solver only (--algo murmail or all, "
                                           "--inner ucbvi)"))
    bonus_scale: float = setting(10.0, parse=positive_float,
                                 help="MAIL-WARM's exploration bonus scale beta (bonus min(beta / sqrt(N), H))",
                                 applies=(lambda c: "mail-warm" in c.algorithms,
                                          "by MAIL-WARM only (--algo mail-warm or all)"))

    def __post_init__(self) -> None:
        check_settings(self)
        check_applicable(self, changed_settings(self))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return ALGORITHMS if self.algo == "all" else (self.algo,)

    @property
    def budgets(self) -> list[int]:
        return query_budgets(self.queries, self.points)


@dataclass(frozen=True)
class Setting:
    """A game with its expert profile and the expert's computed concentrability."""

    game: MarkovGame
    expert: list[np.ndarray]
    c_single: float
    c_all: float


def lower_bound_weight(target: float, c: float = 0.5) -> float:
    """The expert mixing weight lambda whose *computed* single-policy concentrability is ``target``.

    ``inf`` gives lambda = 1 (the expert never visits s1). Otherwise a root of
    ``log C(lambda) - log target`` on the branch where C grows with lambda, from
    :data:`envs.games.LOWER_BOUND_MIN_WEIGHT` (where C is the family's minimum,
    :data:`MIN_CONCENTRABILITY`) to 1; a smaller target is refused with that reason.
    """
    target = check_concentrability(target, "target")
    if math.isinf(target):
        return 1.0
    game = games.lower_bound_game(c=c)

    def gap(weight: float) -> float:
        return math.log(tabular.concentrability(game, games.lower_bound_expert(weight)).single_policy) - math.log(target)

    # Brent's bracket starts at 0.62 (just above the minimum at 0.618...) as it always has, so that the
    # weights of the published targets stay bit for bit; targets below C(0.62) = 1.6244 use the stretch below.
    low, high = 0.62, 1.0 - 1e-12
    if gap(low) > 0:
        low, high = games.LOWER_BOUND_MIN_WEIGHT, low
        if gap(low) >= 0:
            return low  # the target is the minimum itself (within rounding)
    return float(optimize.brentq(gap, low, high, xtol=1e-15, rtol=1e-15))


#: Streams of one seed: the oracle's answers and BC's data take the seed itself, the learner's own draws
#: and a random game the derived seeds below. One ``default_rng(seed)`` for two of them would replay the
#: same uniforms in each (a game's Dirichlet draws would decide the oracle's first answers).
LEARNER_STREAM, GAME_STREAM = 1, 2


def stream_seed(seed: int, stream: int) -> int:
    """An integer seed for ``stream`` of ``seed``, independent of ``seed``'s own stream and of the others."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def random_zero_sum_game(seed: int, num_states: int = 10, num_actions: int = 3) -> MarkovGame:
    """The random zero-sum game of ``seed``, drawn from its own stream (:data:`GAME_STREAM`)."""
    return games.random_game(num_states, num_actions, seed=stream_seed(seed, GAME_STREAM))


def make_setting(
    game_name: str, concentrability: float = math.inf, num_states: int = 10, num_actions: int = 3,
    seed: int = 0, c: float = 0.5,
) -> Setting:
    """The lower-bound game with an expert of the given concentrability, or a random
    zero-sum game (seeded) or the grid race with its Shapley-iteration equilibrium as the expert."""
    check_choice(game_name, "game_name", GAMES)
    if game_name == "lower-bound":
        game = games.lower_bound_game(c=c)
        expert = games.lower_bound_expert(lower_bound_weight(concentrability, c))
    else:
        if game_name == "random-zero-sum":
            game = random_zero_sum_game(seed, num_states, num_actions)
        else:
            game = games.grid_race()
        expert = tabular.zero_sum_equilibrium(game).policies
    coefficients = tabular.concentrability(game, expert)
    return Setting(game, expert, coefficients.single_policy, coefficients.all_policy)


def query_budgets(max_queries: int, num_points: int = 9, min_queries: int = MIN_QUERIES) -> list[int]:
    """Log-spaced budgets from ``min_queries`` (>= 1) to ``max_queries``, ``num_points`` (>= 2) of them
    (fewer where rounding makes two equal)."""
    min_queries = check_positive_int(min_queries, "min_queries")
    max_queries = check_int(max_queries, "max_queries", minimum=min_queries)
    num_points = check_int(num_points, "num_points", minimum=2)
    return sorted({int(round(b)) for b in np.geomspace(min_queries, max_queries, num_points)})


def run_one(
    setting: Setting, algo: str, budget: int, seed: int, inner: str = "ucbvi", inner_episodes: int = 5,
    bonus_scale: float = 10.0,
) -> list[dict]:
    """One run given ``budget`` expert queries; BC gives one row per default policy."""
    check_choice(algo, "algo", ALGORITHMS)
    budget, seed = check_non_negative_int(budget, "budget"), check_non_negative_int(seed, "seed")
    game = setting.game
    # Independent streams (see LEARNER_STREAM): otherwise the expert's answers would be tied to the
    # states the learner happened to draw.
    oracle = ExpertOracle(setting.expert, seed=seed)
    run_seed = stream_seed(seed, LEARNER_STREAM)
    start = time.perf_counter()
    if algo == "bc":
        data = expert_dataset(game, setting.expert, budget, seed=seed)
        results = [(f"bc-{default}", bc(game, data, default=default), 0) for default in ("uniform", "first")]
    elif algo == "mail-bro":
        iterations = budget // game.num_players
        result = mail_bro(game, oracle, iterations, seed=run_seed, num_log_points=2)
        results = [("mail-bro", result, iterations)]
    elif algo == "mail-warm":
        iterations = budget // queries_per_episode_round(game)  # episodes per deviator
        result = mail_warm(game, oracle, iterations, bonus_scale=bonus_scale, seed=run_seed, num_log_points=2)
        results = [("mail-warm", result, iterations)]
    else:
        iterations = budget // queries_per_iteration(game, inner, inner_episodes)
        result = murmail(game, oracle, iterations, inner=inner, inner_episodes=inner_episodes, seed=run_seed,
                         num_log_points=2)
        results = [("murmail" if inner == "ucbvi" else f"murmail-{inner}", result, iterations)]
    seconds = time.perf_counter() - start
    rows = []
    for name, result, iterations in results:
        h = result.history
        rows.append(dict(
            algo=name, seed=seed, budget=budget, iterations=iterations,
            expert_queries=h.expert_queries[-1], oracle_calls=h.oracle_calls[-1],
            simulator_steps=h.simulator_steps[-1], gap_last=h.gap_last[-1],
            gap_average=h.gap_average[-1], gap_sampled=h.gap_sampled[-1], seconds=seconds / len(results),
        ))
    return rows


def algorithm_of(row_algo: str) -> str:
    """The algorithm (one of :data:`ALGORITHMS`) that wrote a row named ``row_algo``
    (``bc-uniform`` and ``bc-first`` are both BC, ``murmail-exact`` is MURMAIL)."""
    for algo in sorted(ALGORITHMS, key=len, reverse=True):
        if row_algo == algo or row_algo.startswith(algo + "-"):
            return algo
    raise ValueError(f"unknown algorithm in a results row: {row_algo!r}")


def run_grid(
    config: GridConfig,
    progress: bool = True,
    log=print,
    rows: list[dict] | None = None,
    done: Collection[tuple[str, int, int]] = (),
) -> list[dict]:
    """Every algorithm x seed x budget of ``config``; one tidy row per run (and BC default).

    For the lower-bound game and the grid race the game is fixed and the seed drives the
    runs; for random zero-sum games the seed also draws the game. ``rows`` (default: a new
    list) receives each run's rows as soon as it finishes, so a caller interrupted by
    Ctrl-C keeps them; runs whose ``(algorithm, seed, budget)`` is in ``done`` are skipped
    (a resumed sweep).
    """
    if not isinstance(config, GridConfig):
        raise ValueError(f"config must be a GridConfig, got {type(config).__name__}")
    game_name, concentrability = config.game, config.concentrability
    seeds, budgets = range(config.seeds), config.budgets
    settings: dict[int, Setting] = {}
    for seed in seeds:
        if game_name in FIXED_GAMES and settings:
            settings[seed] = next(iter(settings.values()))
            continue
        settings[seed] = make_setting(game_name, concentrability, config.states, config.actions, seed)
    c_values = sorted({(s.c_single, s.c_all) for s in settings.values()})
    label = f"{game_name}" + (f" C={concentrability:g}" if game_name == "lower-bound" else "")
    if game_name in FIXED_GAMES:
        log(f"{label}: computed concentrability of the expert C = {c_values[0][0]:.6g}, C_max = {c_values[0][1]:.6g}")
    else:
        singles = [c for c, _ in c_values]
        log(f"{label}: computed C per seed from {min(singles):.4g} to {max(singles):.4g} "
            f"(median {np.median(singles):.4g})")
    done = set(done)
    jobs = [(algo, seed, budget) for algo in config.algorithms for seed in seeds for budget in budgets
            if (algo, seed, budget) not in done]
    rows = [] if rows is None else rows
    for algo, seed, budget in tqdm(jobs, desc=label, disable=not progress):
        setting = settings[seed]
        rows.extend([dict(game=game_name, target_c=concentrability if game_name == "lower-bound" else math.nan,
                          c_single=setting.c_single, c_all=setting.c_all, **row)
                     for row in run_one(setting, algo, budget, seed, config.inner, config.inner_episodes,
                                        config.bonus_scale)])
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    records.write_rows(rows, path, CSV_FIELDS)


def read_csv(path: Path) -> list[dict]:
    """Read a results CSV; raises ``ValueError`` naming the file and what is wrong with it."""
    return records.read_rows(path, CSV_FIELDS, "MAIL results")


#: Panel titles of the games other than the lower-bound game (whose title gives C).
PANEL_NAMES = {"random-zero-sum": "random zero-sum", "grid-race": "grid race"}


def panel_key(row: dict) -> str:
    if row["game"] == "lower-bound":
        return f"lower-bound, C = {row['target_c']:g}"
    return PANEL_NAMES.get(row["game"], row["game"])


def _panel_order(rows: list[dict]) -> list[str]:
    """Panels sorted by game (in :data:`GAMES` order), then by numeric concentrability."""
    keys = {panel_key(row): (GAMES.index(row["game"]) if row["game"] in GAMES else len(GAMES),
                             row["target_c"] if row["game"] == "lower-bound" else 0.0)
            for row in rows}
    return sorted(keys, key=keys.get)


def summarise(rows: list[dict], policy: str = "sampled") -> dict[str, dict[str, list[tuple]]]:
    """Per panel and algorithm: (mean actual queries, mean gap, 95% half-width, seeds) per budget."""
    check_choice(policy, "policy", REPORTED)
    grouped: dict[str, dict[str, dict[int, list[dict]]]] = {}
    for row in rows:
        grouped.setdefault(panel_key(row), {}).setdefault(row["algo"], {}).setdefault(row["budget"], []).append(row)
    summary: dict[str, dict[str, list[tuple]]] = {}
    for panel, by_algo in grouped.items():
        for algo, by_budget in by_algo.items():
            points = []
            for budget, runs in sorted(by_budget.items()):
                queries = np.mean([r["expert_queries"] for r in runs])
                if queries <= 0:
                    continue  # the budget did not buy a single iteration
                gaps = np.array([r[f"gap_{policy}"] for r in runs])
                half = plotting.t_half_width(gaps)
                points.append((float(queries), float(gaps.mean()), float(half), len(gaps)))
            summary.setdefault(panel, {})[algo] = points
    return summary


COLORS = {"bc-uniform": "tab:orange", "bc-first": "tab:red", "mail-bro": "tab:blue",
          "murmail": "tab:green", "murmail-exact": "tab:olive", "mail-warm": "tab:purple"}


def plot(rows: list[dict], path: Path, policy: str = "sampled") -> None:
    """Nash gap against expert queries (log x), mean and 95% t-band over seeds, one panel per setting.

    The panels share one symlog y-axis (linear near 0, logarithmic above), so that BC's gaps
    of about 12 and the MAIL algorithms' gaps of a few hundredths are all visible; the bands
    are clipped at 0 (no Nash gap is negative) and the legend, right of the panels, says what
    they are.
    """
    summary = summarise(rows, policy)
    panels = [panel for panel in _panel_order(rows) if panel in summary]
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure, axes = plotting.new_figure(lines, columns, width=4.6 * columns + 2.2, height=3.6 * lines, sharey=True)
    drawn, seeds = [], []
    for axis, panel in zip(axes.flat, panels):
        for algo, points in sorted(summary[panel].items()):
            if not points:
                continue
            x, mean, half, counts = map(np.array, zip(*points))
            color = COLORS.get(algo)
            axis.plot(x, mean, marker="o", markersize=3, label=algo, color=color)
            low, high = plotting.clipped_band(mean, half, lower=0.0)
            plotting.draw_band(axis, x, low, high, color)
            drawn += [mean, low, high]
            seeds += counts.tolist()
        axis.set_xscale("log")
        axis.set_title(panel, fontsize=10)
        axis.set_xlabel("expert queries")
        axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel(f"Nash gap ({policy} iterate)")
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    floor = plotting.gap_scale(list(axes.flat)[:len(panels)], np.concatenate(drawn) if drawn else [])
    bands = plotting.band_text(plotting.t_interval_text(0.95, seeds), "gaps >= 0") if seeds else None
    legend = plotting.legend_outside(figure, extra=[plotting.band_handle(bands)] if bands else [])
    legend.set_title(f"y: linear below {floor:g},\nlogarithmic above", prop={"size": 8})
    plotting.save_figure(figure, path)


def _gap_text(gap: float) -> str:
    """Three decimals; a gap of 0 that solver rounding made a hair negative prints as 0.000, not -0.000."""
    return f"{gap:.3f}" if round(gap, 3) != 0 else "0.000"


def format_table(rows: list[dict]) -> str:
    """Markdown, one table per panel: mean Nash gap over seeds of the sampled iterate (and of
    the last iterate) for every algorithm and query budget; '-' where the budget did not buy
    one iteration. Actual queries can fall short of the budget by less than one iteration's cost."""
    grouped: dict[str, dict[str, dict[int, list[dict]]]] = {}
    for row in rows:
        grouped.setdefault(panel_key(row), {}).setdefault(row["algo"], {}).setdefault(row["budget"], []).append(row)
    lines = []
    for panel in _panel_order(rows):
        budgets = sorted({b for by_budget in grouped[panel].values() for b in by_budget})
        lines.append(f"**{panel}**: mean Nash gap over seeds, sampled iterate (last iterate)\n")
        lines.append("| algorithm \\ queries | " + " | ".join(f"{b:g}" for b in budgets) + " |")
        lines.append("|---|" + "---|" * len(budgets))
        for algo, by_budget in sorted(grouped[panel].items()):
            cells = []
            for budget in budgets:
                runs = by_budget.get(budget, [])
                if not runs or np.mean([r["expert_queries"] for r in runs]) <= 0:
                    cells.append("-")
                    continue
                sampled = np.mean([r["gap_sampled"] for r in runs])
                last = np.mean([r["gap_last"] for r in runs])
                cells.append(f"{_gap_text(sampled)} ({_gap_text(last)})")
            lines.append(f"| {algo} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
