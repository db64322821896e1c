"""Settings of a games experiment (``python -m mail games``), without torch: the command line builds its
parser from this module and imports the algorithms only when a run starts."""

from __future__ import annotations

from dataclasses import dataclass

from agents.config import (Parser, changed_settings, check_applicable, check_settings, non_negative_float,
                           positive_float, positive_int, setting)
from envs.validation import check_int

#: explore-random: explore-then-clone whose deviator plays uniformly random legal moves (an ablation of the explorer).
ALGORITHMS = ("explore-clone", "bc", "explore-random")
GAME_NAMES = ("tictactoe", "connect4")
#: The fewest evaluation games against each opponent (one per seat).
MIN_EVAL_GAMES = 2

even_games = Parser("even_games", lambda value, name: _check_even(value, name), float)


def _check_even(value, name: str | None) -> int:
    value = check_int(value, name, minimum=MIN_EVAL_GAMES)
    if value % 2:
        prefix = f"{name} " if name else ""
        raise ValueError(f"{prefix}must be even (half the games in each seat), got {value}")
    return value


def _connect4(config: "GamesConfig") -> bool:
    return config.game == "connect4"


@dataclass(frozen=True)
class GamesConfig:
    """One experiment: a game, the algorithms, seeds and query budgets (each budget a separate run)."""

    game: str = setting("tictactoe", choices=GAME_NAMES,
                        help="tictactoe (expert: exact minimax; metric: exact exploitability) or connect4 (expert: "
                        "the bitbully solver with a softmax temperature; metric: win/draw/loss against the solver)")
    algo: tuple[str, ...] = setting(("explore-clone", "bc"), choices=ALGORITHMS,
                                    help="algorithms (explore-random: explore-then-clone with a uniformly random "
                                    "deviator instead of the DQN, an ablation)")
    # A resumed sweep (scripts/reproduce_mail_games.py) may add budgets and seeds: runs are keyed by both.
    queries: tuple[int, ...] = setting((300, 1000, 3000), parse=positive_int, resumable=True,
                                       help="expert query budgets, one run each (e.g. 1000 3000 1e4)")
    seeds: int = setting(3, parse=positive_int, resumable=True, help="seeds 0..N-1")
    beta: float = setting(10.0, parse=positive_float, help="explore-clone: scale of the elliptical bonus",
                          applies=(lambda c: "explore-clone" in c.algo, "by explore-clone only"))
    lam: float = setting(0.1, flag="--lambda", parse=positive_float,
                         help="explore-clone: ridge term lambda of the bonus's Gram matrix",
                         applies=(lambda c: "explore-clone" in c.algo, "by explore-clone only"))
    expert_temperature: float = setting(1.0, parse=non_negative_float,
                                        help="connect4: temperature of the expert's softmax over solver scores",
                                        applies=(_connect4, "by connect4 only"))
    opponent_temperatures: tuple[float, ...] = setting(
        (1.0, 4.0), parse=non_negative_float,
        help="connect4: temperatures of the solver opponents the cloned policy is evaluated against "
        "(0: perfect play; 1: the default expert itself; 4: a weaker, noisier player)",
        applies=(_connect4, "by connect4 only"))
    eval_games: int = setting(40, parse=even_games,
                              help="connect4: evaluation games against each opponent, half in each seat",
                              applies=(_connect4, "by connect4 only"))

    def __post_init__(self) -> None:
        check_settings(self)
        check_applicable(self, changed_settings(self))
        object.__setattr__(self, "queries", tuple(sorted(set(self.queries))))
        object.__setattr__(self, "algo", tuple(dict.fromkeys(self.algo)))
