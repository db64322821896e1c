"""The Connect Four expert: a temperature softmax over the ``bitbully`` solver's move scores.

``bitbully`` solves Connect Four exactly (alpha-beta with a transposition table, and the
12-ply opening book of the ``bitbully-databases`` package for the first moves). Its score
of a move is from the point of view of the player to move: positive for a forced win (the
sooner the win, the larger), 0 for a draw, negative for a forced loss. The expert plays
move ``a`` with probability proportional to ``exp(score(a) / T)`` over the legal columns;
``T = 0`` is the perfect player, uniform over the best moves. Most positions take a few
milliseconds; a handful of middle-game positions up to about a second (measured on the
development machine), so scores are kept per position for the whole process (the
solver's answers do not depend on the temperature or on who asks).
"""

from __future__ import annotations

import functools
import time

import numpy as np

from envs.validation import check_non_negative
from mail.games.common import GAMES, MovePolicy, single_or_batch, split_observation

GAME = GAMES["connect4"]
ROWS, COLUMNS = 6, 7
#: Scores of the positions solved so far (board bytes -> (7,) scores, -inf for full columns), shared by every
#: expert of the process: a run's time therefore depends on the positions earlier runs already solved.
_SCORES: dict[bytes, np.ndarray] = {}


@functools.lru_cache(maxsize=1)
def _solver():
    from bitbully import BitBully

    return BitBully("default")  # loads the 12-ply opening book of bitbully-databases (about 0.2 s)


def boards_of(obs) -> tuple[np.ndarray, bool]:
    """Boards ``(n, 6, 7)`` (top row first, 0 empty, 1 the first player's pieces, 2 the second's) of one
    observation dict of the player to move or a batch, and whether it was one.

    The player to move is the first player when both have as many pieces. Raises ``ValueError``
    if the piece counts are impossible or the mask is not the set of non-full columns.
    """
    planes, masks, single = split_observation(obs, GAME)
    own, other = planes[..., 0].astype(np.int64), planes[..., 1].astype(np.int64)
    if np.any(own & other):
        raise ValueError("a cell holds both players' pieces")
    difference = other.sum((1, 2)) - own.sum((1, 2))
    if np.any((difference != 0) & (difference != 1)):
        raise ValueError("impossible piece counts: the player to move has as many pieces as the other, or one less")
    first = (difference == 0)[:, None, None]
    boards = np.where(first, own + 2 * other, 2 * own + other)
    if np.any(masks != (boards[:, 0, :] == 0)):
        raise ValueError("the action mask is not the set of non-full columns (is it the player to move's observation?)")
    return boards, single


class SolverExpert(MovePolicy):
    """Connect Four expert: ``P(a) ~ exp(score(a) / temperature)`` over the legal columns.

    Parameters
    ----------
    temperature:
        ``>= 0``; 0 plays the best moves only (uniformly among equal scores).

    Attributes
    ----------
    solver_calls, solver_seconds:
        Positions this expert had solved (not found among those already solved) and the time it took.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = check_non_negative(temperature, "temperature")
        self.solver_calls = 0
        self.solver_seconds = 0.0

    def __repr__(self) -> str:
        return f"SolverExpert(temperature={self.temperature:g})"

    def _score(self, board: np.ndarray) -> np.ndarray:
        key = board.astype(np.int8).tobytes()
        scores = _SCORES.get(key)
        if scores is None:
            from bitbully import Board

            if np.all(board != 0):
                raise ValueError("the board is full: there is no move to choose")
            position = Board(board.tolist())
            if position.has_win():
                raise ValueError("the game is over in this position: there is no move to choose")
            solver = _solver()
            start = time.perf_counter()
            solved = solver.score_all_moves(position)
            self.solver_seconds += time.perf_counter() - start
            self.solver_calls += 1
            scores = np.full(COLUMNS, -np.inf)
            scores[list(solved)] = list(solved.values())
            _SCORES[key] = scores
        return scores

    def scores(self, obs) -> np.ndarray:
        """The solver's score of every column (``-inf`` for a full one), ``(7,)`` or ``(n, 7)``."""
        boards, single = boards_of(obs)
        return single_or_batch(np.stack([self._score(board) for board in boards]), single)

    def _rows(self, obs) -> tuple[np.ndarray, bool]:
        boards, single = boards_of(obs)
        scores = np.stack([self._score(board) for board in boards])
        best = scores.max(1, keepdims=True)
        if self.temperature == 0:
            weights = (scores == best).astype(np.float64)
        else:
            weights = np.exp((scores - best) / self.temperature)  # exp(-inf) = 0 for full columns
        return weights / weights.sum(1, keepdims=True), single
