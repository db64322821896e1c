"""Tabular demonstrations: expert states and joint actions of a Markov game (an MDP when n = 1).

What tabular SOAR-IL matches occupancies against and what behavioural cloning counts.
File format (``.npz``, read by :func:`agents.untrusted.read_npz`: never unpickled, sizes
checked): ``states (N,)`` int64, ``actions (N, n)`` int64, ``source`` (0-d str) and
``format`` = ``"soar-mail/tabular-demonstrations/1"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from agents.checkpoints import atomic_output
from agents.demonstrations import Trajectory
from agents.untrusted import RefusedFile, read_npz
from envs.markov_game import MarkovGame

FORMAT = "soar-mail/tabular-demonstrations/1"


def _frozen_integers(values, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    array = np.array(array, dtype=np.int64, copy=True)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {array.min()}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class TabularDemonstrations:
    """``N`` expert samples: ``states[k]`` and every player's action there, ``actions[k, i]``.

    Parameters
    ----------
    states:
        ``(N,)`` integer states.
    actions:
        ``(N, n)`` integer joint actions (a 1-D array is taken as one player's).
    source:
        What made them (free text, stored in the file).
    """

    states: np.ndarray
    actions: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        states = _frozen_integers(self.states, "states", 1)
        actions = np.asarray(self.actions)
        if actions.ndim == 1:
            actions = actions[:, None]
        actions = _frozen_integers(actions, "actions", 2)
        if len(actions) != len(states):
            raise ValueError(f"need one joint action per state: {len(states)} states, {len(actions)} actions")
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "actions", actions)

    def __len__(self) -> int:
        return len(self.states)

    @property
    def num_players(self) -> int:
        return self.actions.shape[1]

    def head(self, count: int) -> "TabularDemonstrations":
        """The first ``count`` samples."""
        if int(count) != count or not 0 <= count <= len(self):
            raise ValueError(f"count must be an integer in [0, {len(self)}], got {count!r}")
        return TabularDemonstrations(self.states[: int(count)], self.actions[: int(count)], self.source)

    def check_game(self, game: MarkovGame) -> None:
        """Raise ``ValueError`` unless every state and action exists in ``game``."""
        if self.num_players != game.num_players:
            raise ValueError(f"demonstrations hold {self.num_players} players' actions, the game has {game.num_players}")
        if len(self) and self.states.max() >= game.num_states:
            raise ValueError(f"demonstration states must lie in [0, {game.num_states}), got {self.states.max()}")
        for i, count in enumerate(game.num_actions):
            if len(self) and self.actions[:, i].max() >= count:
                raise ValueError(f"demonstration actions of player {i} must lie in [0, {count}), "
                                 f"got {self.actions[:, i].max()}")

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory], source: str = "rollouts") -> "TabularDemonstrations":
        """Every step of episodes collected on a tabular view (:func:`agents.rollout.collect`).

        The state is the first observation column (every agent of a Markov game observes it).
        """
        states = np.concatenate([t.obs[:-1, 0] for t in trajectories])
        actions = np.concatenate([t.acts for t in trajectories])
        return cls(states, actions, source)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as temporary, open(temporary, "wb") as handle:  # a handle: no ".npz" appended
            np.savez_compressed(handle, states=self.states, actions=self.actions, source=np.array(self.source),
                                format=np.array(FORMAT))

    @classmethod
    def load(cls, path: str | Path) -> "TabularDemonstrations":
        """Read a file written by :meth:`save`; ``ValueError`` naming the file and the problem otherwise."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tabular demonstration file at {path}")
        try:
            data = read_npz(path, ("states", "actions", "source", "format"))
        except RefusedFile as error:
            raise ValueError(f"{path} is not a tabular demonstration file: {error.problem}") from None
        missing = [k for k in ("states", "actions", "format") if k not in data]
        if missing:
            raise ValueError(f"{path} is not a tabular demonstration file: missing arrays {missing}")
        if str(data["format"]) != FORMAT:
            raise ValueError(f"{path} is not a tabular demonstration file: format {str(data['format'])!r}, "
                             f"this toolkit reads {FORMAT!r}")
        try:
            return cls(data["states"], data["actions"], str(data.get("source", "")))
        except ValueError as error:
            raise ValueError(f"{path} is not a tabular demonstration file: {error}") from None
