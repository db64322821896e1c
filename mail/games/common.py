"""What both games share: their description, observations, the counting expert oracle, the query log
and playing a game between two policies through PettingZoo's AEC API.

PettingZoo is used as is: ``env.reset()``, ``env.agent_iter()``, ``env.last()`` and
``env.step()``; an observation is the dict PettingZoo gives, ``{"observation": planes,
"action_mask": legal moves}``, with the planes seen from the player to move (plane 0 its
own pieces, plane 1 the opponent's). Every policy of this package (the experts, the
cloned classifier) takes that dict, one observation or a batch (a leading axis on both
arrays), so the same object plays in PettingZoo and is evaluated in batch.

No torch here, and PettingZoo (which loads pygame) only when an environment is made.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from agents.interface import Policy
from envs.validation import check_choice, check_seed


@dataclass(frozen=True)
class Game:
    """One PettingZoo classic game as this package uses it.

    Parameters
    ----------
    name:
        The name on the command line (``tictactoe``, ``connect4``).
    env_id:
        PettingZoo's registry id of the AEC environment.
    module:
        The PettingZoo module whose ``env()`` makes it (PettingZoo before the registry of 1.27).
    board_shape:
        Shape of the observation planes, ``(rows, columns, 2)``.
    num_actions:
        Size of the action space (cells, columns).
    """

    name: str
    env_id: str
    module: str
    board_shape: tuple[int, int, int]
    num_actions: int

    @property
    def observation_size(self) -> int:
        return int(np.prod(self.board_shape))

    def make_env(self):
        """A fresh PettingZoo AEC environment, with PettingZoo's own wrappers."""
        import pettingzoo

        if hasattr(pettingzoo, "make"):  # the registry (1.27 on); the modules' env() is deprecated there
            return pettingzoo.make("aec", self.env_id)
        return importlib.import_module(self.module).env()


GAMES = {
    "tictactoe": Game("tictactoe", "classic/tictactoe_v3", "pettingzoo.classic.tictactoe_v3", (3, 3, 2), 9),
    "connect4": Game("connect4", "classic/connect_four_v3", "pettingzoo.classic.connect_four_v3", (6, 7, 2), 7),
}


def get_game(name: str) -> Game:
    """The game called ``name`` (``ValueError`` listing the choices otherwise)."""
    return GAMES[check_choice(name, "game", tuple(GAMES))]


def split_observation(obs, game: Game) -> tuple[np.ndarray, np.ndarray, bool]:
    """The planes ``(n, *board_shape)`` and masks ``(n, num_actions)`` (int8) of one observation dict or
    a batch of them, and whether it was a single one.

    Raises ``ValueError`` naming what is wrong: not a dict with both keys, wrong shapes,
    values other than 0 and 1.
    """
    if not isinstance(obs, dict) or "observation" not in obs or "action_mask" not in obs:
        raise ValueError("an observation must be PettingZoo's dict with 'observation' and 'action_mask'")
    planes, masks = np.asarray(obs["observation"]), np.asarray(obs["action_mask"])
    single = planes.ndim == len(game.board_shape)
    if single:
        planes, masks = planes[None], masks[None]
    if planes.shape[1:] != game.board_shape or masks.shape != (planes.shape[0], game.num_actions):
        raise ValueError(f"{game.name} observations have planes {game.board_shape} and a mask of "
                         f"{game.num_actions}, got {tuple(np.shape(obs['observation']))} and "
                         f"{tuple(np.shape(obs['action_mask']))}")
    if not (np.isin(planes, (0, 1)).all() and np.isin(masks, (0, 1)).all()):
        raise ValueError("observation planes and action masks hold 0 and 1 only")
    return planes.astype(np.int8), masks.astype(np.int8), single


class GameOracle:
    """The only way the learners see the expert: one sampled move per query, every query counted.

    Parameters
    ----------
    expert:
        Any :class:`~agents.interface.Policy` over the game's observation dicts.
    seed:
        Seed of the oracle's own generator (the expert's sampling).

    Attributes
    ----------
    queries:
        Queries answered so far.
    """

    def __init__(self, expert: Policy, seed: int | None = None) -> None:
        if not isinstance(expert, Policy):
            raise ValueError(f"the expert must be a Policy (act, predict, log_prob), got {type(expert).__name__}")
        self.expert = expert
        self.rng = np.random.default_rng(check_seed(seed))
        self.queries = 0

    def query(self, observation: dict) -> int:
        """The expert's move at one observation (of the player to move); counts one query."""
        move = int(np.asarray(self.expert.act(observation, rng=self.rng)).reshape(()))
        self.queries += 1
        return move


class QueryLog:
    """The logged expert answers: (observation planes, legal mask, expert move) per query.

    Parameters
    ----------
    game:
        The game the observations come from.
    """

    def __init__(self, game: Game) -> None:
        self.game = game
        self._planes: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []
        self._moves: list[int] = []

    def __len__(self) -> int:
        return len(self._moves)

    def add(self, observation: dict, move: int) -> None:
        planes, masks, single = split_observation(observation, self.game)
        if not single:
            raise ValueError("QueryLog.add takes one observation, not a batch")
        if not masks[0, move]:
            raise ValueError(f"the expert's move {move} is not legal in the logged position")
        self._planes.append(planes[0])
        self._masks.append(masks[0])
        self._moves.append(int(move))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(planes (n, *board_shape) int8, masks (n, A) int8, moves (n,) int64)``."""
        n = len(self)
        planes = np.stack(self._planes) if n else np.zeros((0, *self.game.board_shape), np.int8)
        masks = np.stack(self._masks) if n else np.zeros((0, self.game.num_actions), np.int8)
        return planes, masks, np.asarray(self._moves, dtype=np.int64)

    def distinct_positions(self) -> int:
        """How many different positions were queried (the same position queried twice counts once)."""
        planes, _, _ = self.arrays()
        return len({row.tobytes() for row in planes.reshape(len(planes), -1)})


def sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``(n, A)`` probabilities; a zero-probability index is never drawn (rows are
    normalised by their own total, so float rounding cannot push a draw past the last legal move)."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(cumulative)) * cumulative[:, -1]
    return (cumulative > draws[:, None]).argmax(axis=1)


def single_or_batch(values: np.ndarray, single: bool) -> np.ndarray:
    """``values[0]`` for a single observation, ``values`` for a batch."""
    return values[0] if single else values


#: A player in :func:`play_game`: observation dict of the player to move -> move.
Player = Callable[[dict], int]


def policy_player(policy: Policy, rng: np.random.Generator, deterministic: bool = False) -> Player:
    """A :data:`Player` that samples ``policy`` (its most probable move if ``deterministic``)."""
    return lambda observation: int(np.asarray(policy.act(observation, deterministic=deterministic, rng=rng))
                                   .reshape(()))


def play_game(env, players: Sequence[Player], seed: int | None = None) -> int:
    """Play one game in the PettingZoo AEC ``env``: ``players[0]`` is ``player_1`` (moves first).

    Returns ``+1`` if ``player_1`` won, ``-1`` if ``player_2`` won, ``0`` for a draw.
    Raises ``ValueError`` if a player picks an illegal move (PettingZoo would end the game
    with a penalty instead, which would hide the bug).
    """
    if len(players) != 2:
        raise ValueError(f"a game needs two players, got {len(players)}")
    env.reset(seed=seed)
    seats = {agent: seat for seat, agent in enumerate(env.possible_agents)}
    result = 0
    for agent in env.agent_iter():
        observation, reward, termination, truncation, _ = env.last()
        if termination or truncation:
            if reward > 0:
                result = 1 if seats[agent] == 0 else -1
            env.step(None)
            continue
        move = players[seats[agent]](observation)
        if not observation["action_mask"][move]:
            raise ValueError(f"{agent} picked the illegal move {move}")
        env.step(move)
    return result


class MovePolicy:
    """A :class:`~agents.interface.Policy` over a game's observation dicts, given by its move
    probabilities: subclasses define ``_rows(obs) -> (probabilities (n, A), single)``.

    ``act`` draws a move per observation (the most probable, lowest index on ties, if
    ``deterministic``); ``log_prob`` is ``-inf`` for moves of probability 0 (illegal ones).
    """

    def _rows(self, obs) -> tuple[np.ndarray, bool]:
        raise NotImplementedError

    def probabilities(self, obs) -> np.ndarray:
        """Move probabilities, ``(A,)`` for one observation dict or ``(n, A)`` for a batch."""
        return single_or_batch(*self._rows(obs))

    def act(self, obs, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        rows, single = self._rows(obs)
        moves = rows.argmax(1) if deterministic else sample_rows(rows, np.random.default_rng() if rng is None else rng)
        return single_or_batch(moves, single)

    def predict(self, obs, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return self.act(obs, deterministic=deterministic), None

    def log_prob(self, obs, actions) -> np.ndarray:
        rows, single = self._rows(obs)
        actions = np.broadcast_to(np.asarray(actions, dtype=np.int64), (len(rows),))
        with np.errstate(divide="ignore"):
            return single_or_batch(np.log(rows[np.arange(len(rows)), actions]), single)
