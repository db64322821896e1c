"""Tic-Tac-Toe solved: the whole game tree, the exact minimax expert and the exact exploitability of any policy.

The tree holds the 5478 positions reachable from the empty board (958 of them
terminal), numbered layer by layer (by the number of marks), so every child lies in
the next layer and one backward sweep over the layers evaluates anything that the
game tree defines. Cells are numbered as PettingZoo's ``tictactoe_v3`` numbers its
actions, and :meth:`GameTree.observations` gives exactly the dicts PettingZoo's
``env.last()`` gives (planes of the player to move, then the legal-move mask).

* :func:`minimax_expert`: the Nash expert, uniform over the optimal moves of every
  position (a :class:`TablePolicy`).
* :func:`exploitability`: for each seat, the value a best-responding opponent gets
  against the policy in that seat (+1 win, -1 loss, 0 draw), by full game-tree search;
  the exploitability is their mean, 0 exactly for a Nash policy (the game's value is a
  draw), at most 1. The policy is asked once, in one batch, for the probabilities of
  every legal move of every position: a neural policy is evaluated in milliseconds.
* :func:`match_outcome`: the exact win/draw/loss probabilities of a policy against another.

Any :class:`~agents.interface.Policy` over PettingZoo observation dicts works: only its
``log_prob`` is called. numpy only (no torch, no PettingZoo).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from agents.interface import Policy
from mail.games.common import GAMES, MovePolicy, split_observation

GAME = GAMES["tictactoe"]
CELLS = 9
#: The eight lines of three cells (three rows, three columns, two diagonals, in cell numbers).
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
#: Probabilities of the legal moves must sum to 1 within this (float32 networks round).
SUM_TOLERANCE = 1e-3
_POWERS = 3 ** np.arange(CELLS)


def _winner(board: Sequence[int]) -> int:
    """1 or 2 if that player has a line, else 0."""
    for a, b, c in LINES:
        if board[a] != 0 and board[a] == board[b] == board[c]:
            return board[a]
    return 0


@dataclass(frozen=True, eq=False)
class GameTree:
    """Every position reachable from a start position, layer by layer.

    Attributes
    ----------
    boards:
        ``(N, 9)`` int8: 0 empty, 1 ``player_1``'s mark (X, moves first), 2 ``player_2``'s (O).
    to_move:
        ``(N,)``: the seat to move, 0 (``player_1``) or 1 (at a terminal position, the one who would).
    outcome:
        ``(N,)``: +1 if ``player_1`` has won, -1 if ``player_2`` has, 0 otherwise.
    terminal:
        ``(N,)`` bool: someone has won or the board is full.
    children:
        ``(N, 9)``: the position after each move, -1 where the move is illegal (or the game over).
    layers:
        Index arrays of the positions with 0, 1, ..., 9 marks (contiguous, increasing).
    """

    boards: np.ndarray
    to_move: np.ndarray
    outcome: np.ndarray
    terminal: np.ndarray
    children: np.ndarray
    layers: tuple[np.ndarray, ...]
    _lookup: np.ndarray  # base-3 code of a board -> its index, -1 if not in the tree

    def __post_init__(self) -> None:
        # game_tree() shares one instance: no caller may change it for the others.
        for array in (self.boards, self.to_move, self.outcome, self.terminal, self.children, self._lookup,
                      *self.layers):
            array.flags.writeable = False

    @property
    def num_positions(self) -> int:
        return len(self.boards)

    def index(self, boards: np.ndarray) -> np.ndarray:
        """Indices of ``(n, 9)`` boards; ``ValueError`` if one is not a reachable position."""
        boards = np.asarray(boards, dtype=np.int64).reshape(-1, CELLS)
        indices = self._lookup[boards @ _POWERS]
        if np.any(indices < 0):
            bad = boards[np.argmax(indices < 0)]
            raise ValueError(f"the board {bad.tolist()} is not a position reachable in Tic-Tac-Toe")
        return indices

    def observations(self, indices: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """PettingZoo's observation dicts of the player to move at ``indices``, as one batch.

        ``observation`` is ``(n, 3, 3, 2)`` int8 (plane 0 the mover's marks, plane 1 the
        opponent's; cell ``i`` at row ``i // 3``, column ``i % 3``, as PettingZoo lays out its
        board), ``action_mask`` ``(n, 9)`` int8 (all zero at terminal positions).
        """
        indices = np.asarray(indices, dtype=np.int64)
        boards = self.boards[indices]
        mover = self.to_move[indices][:, None] + 1
        opponent = 3 - mover
        planes = np.stack([boards == mover, boards == opponent], axis=-1).astype(np.int8).reshape(-1, 3, 3, 2)
        masks = ((boards == 0) & ~self.terminal[indices][:, None]).astype(np.int8)
        return {"observation": planes, "action_mask": masks}

    def positions_of(self, obs) -> tuple[np.ndarray, bool]:
        """Tree indices of one observation dict or a batch, and whether it was one.

        The mover is ``player_1`` when both have as many marks, else ``player_2``. Raises
        ``ValueError`` for an unreachable board, a finished game, or a mask that is not the
        set of empty cells (e.g. the observation of the player who is not to move).
        """
        planes, masks, single = split_observation(obs, GAME)
        cells = planes.reshape(-1, CELLS, 2).astype(np.int64)
        own, other = cells[..., 0], cells[..., 1]
        if np.any(own & other):
            raise ValueError("a cell holds both players' marks")
        first_to_move = own.sum(1) == other.sum(1)
        boards = np.where(first_to_move[:, None], own + 2 * other, 2 * own + other)
        indices = self.index(boards)
        if np.any(self.terminal[indices]):
            raise ValueError("the game is over in this position: there is no move to choose")
        if np.any(masks != (boards == 0)):
            raise ValueError("the action mask is not the set of empty cells (is it the player to move's observation?)")
        return indices, single


def _build(start: tuple[int, ...]) -> GameTree:
    boards, index = [start], {start: 0}
    children: list[list[int]] = []
    layers, begin = [], 0
    while begin < len(boards):
        end = len(boards)
        layers.append(np.arange(begin, end))
        for position in range(begin, end):
            board = boards[position]
            row = [-1] * CELLS
            if _winner(board) == 0 and 0 in board:
                mark = 1 if board.count(1) == board.count(2) else 2
                for cell in range(CELLS):
                    if board[cell] == 0:
                        child = board[:cell] + (mark,) + board[cell + 1:]
                        if child not in index:
                            index[child] = len(boards)
                            boards.append(child)
                        row[cell] = index[child]
            children.append(row)
        begin = end
    array = np.array(boards, dtype=np.int8)
    winners = np.array([_winner(b) for b in boards])
    lookup = np.full(3**CELLS, -1, dtype=np.int64)
    lookup[array.astype(np.int64) @ _POWERS] = np.arange(len(boards))
    return GameTree(
        boards=array,
        to_move=((array == 1).sum(1) != (array == 2).sum(1)).astype(np.int64),
        outcome=np.select([winners == 1, winners == 2], [1, -1], 0).astype(np.int64),
        terminal=(winners != 0) | (array != 0).all(1),
        children=np.array(children, dtype=np.int64),
        layers=tuple(layers),
        _lookup=lookup,
    )


@functools.lru_cache(maxsize=1)
def game_tree() -> GameTree:
    """The tree of every position reachable from the empty board (built once, about 0.1 s)."""
    return _build((0,) * CELLS)


def _check_board(start: Sequence[int] | None) -> int:
    """Tree index of a start board (``None``: the empty board)."""
    if start is None:
        return 0
    board = np.asarray(start)
    if board.shape != (CELLS,) or not np.isin(board, (0, 1, 2)).all():
        raise ValueError(f"a start board is 9 cells of 0 (empty), 1 (player_1) or 2 (player_2), got {start!r}")
    return int(game_tree().index(board)[0])


# ------------------------------------------------------------------ policies as tables
class TablePolicy(MovePolicy):
    """A Tic-Tac-Toe policy given by its move probabilities at every position of :func:`game_tree`.

    Parameters
    ----------
    probabilities:
        ``(N, 9)`` with N the tree's positions: rows of non-terminal positions are
        distributions over their legal moves; rows of terminal positions are ignored.
    """

    def __init__(self, probabilities: np.ndarray) -> None:
        tree = game_tree()
        table = np.array(probabilities, dtype=np.float64)
        if table.shape != (tree.num_positions, CELLS):
            raise ValueError(f"a Tic-Tac-Toe policy table has shape {(tree.num_positions, CELLS)}, got {table.shape}")
        live = ~tree.terminal
        legal = tree.children[live] >= 0
        if np.any(table[live] < 0) or np.any(table[live][~legal] > 0):
            raise ValueError("a policy table gives negative probabilities or mass to illegal moves")
        if np.any(np.abs(table[live].sum(1) - 1) > 1e-9):
            raise ValueError("the rows of a policy table must sum to 1 at every non-terminal position")
        table[~live] = 0.0
        table.flags.writeable = False
        self.table = table

    def _rows(self, obs) -> tuple[np.ndarray, bool]:
        indices, single = game_tree().positions_of(obs)
        return self.table[indices], single



@functools.lru_cache(maxsize=1)
def minimax_values() -> np.ndarray:
    """``(N,)``: the value of every position for ``player_1`` under perfect play (+1, 0 or -1)."""
    tree = game_tree()
    values = np.zeros(tree.num_positions)
    for layer in reversed(tree.layers):
        over = tree.terminal[layer]
        values[layer[over]] = tree.outcome[layer[over]]
        live = layer[~over]
        child_values = np.where(tree.children[live] >= 0, values[tree.children[live]], np.nan)
        # player_1 maximises its value, player_2 minimises it
        values[live] = np.where(tree.to_move[live] == 0, np.nanmax(child_values, 1), np.nanmin(child_values, 1))
    values.flags.writeable = False
    return values


def minimax_expert() -> TablePolicy:
    """The exact minimax expert: at every position, uniform over the moves that keep the position's value."""
    tree, values = game_tree(), minimax_values()
    table = np.zeros((tree.num_positions, CELLS))
    live = np.flatnonzero(~tree.terminal)
    child_values = np.where(tree.children[live] >= 0, values[tree.children[live]], np.nan)
    optimal = child_values == values[live][:, None]  # NaN (illegal) compares unequal
    table[live] = optimal / optimal.sum(1, keepdims=True)
    return TablePolicy(table)


def policy_table(policy: Policy, greedy: bool = False) -> np.ndarray:
    """The ``(N, 9)`` move probabilities of any policy at every non-terminal position (zero rows elsewhere).

    One batched ``log_prob`` call over every legal (position, move) pair. With ``greedy``, the
    policy's most probable move (lowest cell on ties) with probability 1. Raises ``ValueError``
    if the legal moves' probabilities do not sum to 1 (mass on illegal moves, or not a distribution).
    """
    if not isinstance(policy, Policy):
        raise ValueError(f"policy must be a Policy (act, predict, log_prob), got {type(policy).__name__}")
    tree = game_tree()
    live = np.flatnonzero(~tree.terminal)
    positions, moves = np.nonzero(tree.children[live] >= 0)
    obs = tree.observations(live[positions])
    log_p = np.asarray(policy.log_prob(obs, moves), dtype=np.float64).reshape(-1)
    if log_p.shape != positions.shape or np.any(np.isnan(log_p)) or np.any(log_p > 1e-6):
        raise ValueError("the policy's log_prob must give one log-probability <= 0 per (observation, move)")
    table = np.zeros((tree.num_positions, CELLS))
    table[live[positions], moves] = np.exp(log_p)
    sums = table[live].sum(1)
    if np.any(np.abs(sums - 1) > SUM_TOLERANCE):
        worst = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(f"the policy's probabilities of the legal moves sum to {sums[worst]:.6g} at the board "
                         f"{tree.boards[live[worst]].tolist()}: it puts mass on illegal moves or is no distribution")
    table[live] /= sums[:, None]
    if greedy:
        best = table[live].argmax(1)
        table[live] = 0.0
        table[live, best] = 1.0
    return table


# ------------------------------------------------------------------ exact evaluation
@dataclass(frozen=True)
class Exploitability:
    """What best responses win against a policy.

    Attributes
    ----------
    value:
        Mean over the two seats of :attr:`best_response` (0 for a Nash policy, at most 1).
    best_response:
        The best-responding opponent's expected result (+1 win, 0 draw, -1 loss) when the
        policy plays ``player_1`` (first), and when it plays ``player_2``.
    """

    value: float
    best_response: tuple[float, float]


def _best_response_values(table: np.ndarray, seat: int) -> np.ndarray:
    """Value of every position for a best-responding opponent of the policy ``table`` playing ``seat``."""
    tree = game_tree()
    sign = 1.0 if seat == 1 else -1.0  # the responder plays player_1 when the policy plays player_2
    values = np.zeros(tree.num_positions)
    for layer in reversed(tree.layers):
        over = tree.terminal[layer]
        values[layer[over]] = sign * tree.outcome[layer[over]]
        live = layer[~over]
        legal = tree.children[live] >= 0
        child_values = values[tree.children[live]]  # index -1 reads junk, masked out below
        expected = (table[live] * np.where(legal, child_values, 0.0)).sum(1)
        best = np.where(legal, child_values, -np.inf).max(1)
        values[live] = np.where(tree.to_move[live] == seat, expected, best)
    return values


def exploitability(policy: Policy, start: Sequence[int] | None = None, greedy: bool = False) -> Exploitability:
    """The exact exploitability of ``policy`` (one policy for both seats), by full game-tree search.

    Parameters
    ----------
    policy:
        Any :class:`~agents.interface.Policy` over ``tictactoe_v3`` observation dicts.
    start:
        The position play starts from: 9 cells of 0 (empty), 1 (``player_1``) or 2
        (``player_2``) in PettingZoo's cell numbering; default the empty board.
    greedy:
        Evaluate the policy's most probable move instead of its distribution.
    """
    table = policy_table(policy, greedy)
    root = _check_board(start)
    responses = tuple(float(_best_response_values(table, seat)[root]) for seat in (0, 1))
    return Exploitability(value=float(np.mean(responses)), best_response=responses)


@dataclass(frozen=True)
class Outcome:
    """Win, draw and loss probabilities of a policy, averaged over its two seats."""

    win: float
    draw: float
    loss: float


def match_outcome(policy: Policy, opponent: Policy, start: Sequence[int] | None = None,
                  greedy: bool = False) -> Outcome:
    """Exact win/draw/loss probabilities of ``policy`` against ``opponent``, the mean of the two seatings.

    ``greedy`` plays ``policy``'s most probable moves (the opponent always plays its distribution).
    """
    tree = game_tree()
    tables = (policy_table(policy, greedy), policy_table(opponent))
    root = _check_board(start)
    win = loss = 0.0
    for seat in (0, 1):
        # wins[n, k]: probability that seat k wins from position n
        wins = np.zeros((tree.num_positions, 2))
        for layer in reversed(tree.layers):
            over = layer[tree.terminal[layer]]
            wins[over, 0] = tree.outcome[over] == 1
            wins[over, 1] = tree.outcome[over] == -1
            live = layer[~tree.terminal[layer]]
            mover_table = np.where((tree.to_move[live] == seat)[:, None], tables[0][live], tables[1][live])
            child_wins = np.where((tree.children[live] >= 0)[..., None], wins[tree.children[live]], 0.0)
            wins[live] = np.einsum("na,nak->nk", mover_table, child_wins)
        win += wins[root, seat] / 2
        loss += wins[root, 1 - seat] / 2
    return Outcome(win=float(win), draw=float(1.0 - win - loss), loss=float(loss))
