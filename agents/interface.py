"""The policy/critic interface every algorithm of the toolkit speaks, and its tabular implementations.

A :class:`Policy` acts (``act``, and stable-baselines3's ``predict``) and scores actions
(``log_prob``); a :class:`Critic` gives Q values (``q_values``, with a leading ensemble
axis for ensembles). Rollout, evaluation and the imitation algorithms take either
kind: the tabular ones here, over the integer states of :mod:`envs`, and the neural
ones of :mod:`agents.policies` and :mod:`agents.sac`, over Gymnasium ``Box`` spaces.

A :class:`PolicyProfile` is one tabular policy per player of a Markov game; it acts
as the joint policy. This module does not import torch, so the tabular side of the
toolkit (``envs``, ``agents.tabular``, ``soar.tabular``, ``mail``) never loads it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Protocol, Sequence, overload, runtime_checkable

import numpy as np

from agents.checkpoints import atomic_output
from agents.sampling import sample_categorical
from agents.untrusted import RefusedFile, read_npz
from envs.markov_game import check_distribution_rows

PROFILE_FORMAT = "soar-mail/tabular-profile/1"


@runtime_checkable
class Policy(Protocol):
    """What every policy offers."""

    def act(self, obs, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """Action(s) for one observation or a batch."""

    def predict(self, obs, deterministic: bool = False) -> tuple[np.ndarray, None]:
        """``(action, None)``, as stable-baselines3's ``predict`` (no recurrent state)."""

    def log_prob(self, obs, actions) -> np.ndarray:
        """Log-probability (tabular) or log-density (continuous) of ``actions`` at ``obs``."""


@runtime_checkable
class Critic(Protocol):
    """What every critic offers."""

    def q_values(self, obs, actions) -> np.ndarray:
        """Q values of the state-action pairs; a leading ensemble axis for ensembles."""


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, order="C", copy=True)
    array.flags.writeable = False
    return array


class TabularPolicy:
    """A stochastic policy ``pi[s, a]`` over integer states and actions.

    ``np.asarray(policy)`` is the ``(S, A)`` table, so a ``TabularPolicy`` goes wherever
    the solvers of :mod:`agents.tabular` take an array.

    Parameters
    ----------
    probabilities:
        ``(S, A)`` array whose rows are probability distributions (copied, read-only).
    name:
        Used in error messages (e.g. ``"policies[1]"``).
    """

    def __init__(self, probabilities: np.ndarray, name: str = "policy") -> None:
        table = np.asarray(probabilities, dtype=np.float64)
        if table.ndim != 2 or 0 in table.shape:
            raise ValueError(f"{name} must be a non-empty (S, A) array, got shape {table.shape}")
        check_distribution_rows(table, name)
        self.probabilities = _read_only(table)

    @property
    def num_states(self) -> int:
        return self.probabilities.shape[0]

    @property
    def num_actions(self) -> int:
        return self.probabilities.shape[1]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.probabilities if dtype is None else self.probabilities.astype(dtype)

    def __repr__(self) -> str:
        return f"TabularPolicy(num_states={self.num_states}, num_actions={self.num_actions})"

    def _states(self, obs) -> np.ndarray:
        states = np.asarray(obs)
        if not np.issubdtype(states.dtype, np.integer):
            if not np.all(np.equal(np.mod(states, 1), 0)):
                raise ValueError(f"tabular observations are integer states, got {obs!r}")
            states = states.astype(np.int64)
        if states.size and (states.min() < 0 or states.max() >= self.num_states):
            raise ValueError(f"states must lie in [0, {self.num_states}), got {obs!r}")
        return states

    def act(self, obs, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """An action per state: the most probable one if ``deterministic``, else a draw."""
        rows = self.probabilities[self._states(obs)]
        if deterministic:
            return rows.argmax(axis=-1)
        return sample_categorical(rows, np.random.default_rng() if rng is None else rng)

    def predict(self, obs, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return self.act(obs, deterministic=deterministic), None

    def log_prob(self, obs, actions) -> np.ndarray:
        states = self._states(obs)
        actions = np.asarray(actions, dtype=np.int64)
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities[states, actions])


class PolicyProfile(Sequence[TabularPolicy]):
    """One :class:`TabularPolicy` per player of a Markov game, acting as the joint policy.

    Indexing and iteration give the players' policies; :attr:`arrays` their tables.
    ``act`` returns joint actions ``(..., n)``; ``log_prob`` sums the players' log-probabilities.

    Parameters
    ----------
    policies:
        A sequence of ``(S, A_i)`` arrays or :class:`TabularPolicy` (one player: a single one).
    """

    def __init__(self, policies: Sequence[np.ndarray | TabularPolicy] | TabularPolicy | np.ndarray) -> None:
        if isinstance(policies, TabularPolicy) or (isinstance(policies, np.ndarray) and policies.ndim == 2):
            policies = [policies]
        if isinstance(policies, (str, bytes)) or len(policies) == 0:
            raise ValueError("a policy profile needs at least one policy")
        players = tuple(
            p if isinstance(p, TabularPolicy) else TabularPolicy(p, name=f"policies[{i}]")
            for i, p in enumerate(policies)
        )
        num_states = {p.num_states for p in players}
        if len(num_states) != 1:
            raise ValueError(f"the players' policies disagree on the number of states: {sorted(num_states)}")
        self._players = players

    @overload
    def __getitem__(self, index: int) -> TabularPolicy: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[TabularPolicy, ...]: ...
    def __getitem__(self, index):
        return self._players[index]

    def __len__(self) -> int:
        return len(self._players)

    def __iter__(self) -> Iterator[TabularPolicy]:
        return iter(self._players)

    def __repr__(self) -> str:
        return f"PolicyProfile(num_states={self.num_states}, num_actions={self.num_actions})"

    @property
    def num_players(self) -> int:
        return len(self._players)

    @property
    def num_states(self) -> int:
        return self._players[0].num_states

    @property
    def num_actions(self) -> tuple[int, ...]:
        return tuple(p.num_actions for p in self._players)

    @property
    def arrays(self) -> list[np.ndarray]:
        """The players' ``(S, A_i)`` tables (read-only)."""
        return [p.probabilities for p in self._players]

    def act(self, obs, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """Joint actions ``(..., n)``: every player acts independently at the same state(s)."""
        rng = np.random.default_rng() if rng is None else rng
        return np.stack([p.act(obs, deterministic, rng) for p in self._players], axis=-1)

    def predict(self, obs, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return self.act(obs, deterministic=deterministic), None

    def log_prob(self, obs, actions) -> np.ndarray:
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape[-1:] != (self.num_players,):
            raise ValueError(f"joint actions need a last axis of {self.num_players}, got shape {actions.shape}")
        return sum(p.log_prob(obs, actions[..., i]) for i, p in enumerate(self._players))

    # ------------------------------------------------------------ storage
    def save(self, path: str | Path) -> None:
        """An ``.npz`` file with one table per player (read back by :meth:`load`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tables = {f"player_{i}": table for i, table in enumerate(self.arrays)}
        with atomic_output(path) as temporary, open(temporary, "wb") as handle:  # a handle: no ".npz" appended
            np.savez_compressed(handle, format=np.array(PROFILE_FORMAT), **tables)

    @classmethod
    def load(cls, path: str | Path) -> "PolicyProfile":
        """Read a profile written by :meth:`save` (:func:`agents.untrusted.read_npz`: no code runs, sizes checked)."""
        path = Path(path)
        try:
            data = read_npz(path, lambda name: name == "format" or re.fullmatch(r"player_\d+", name) is not None)
            if "format" not in data or str(data["format"]) != PROFILE_FORMAT:
                raise ValueError(f"not a policy profile file (format {PROFILE_FORMAT!r})")
            count = sum(1 for name in data if name.startswith("player_"))
            return cls([data[f"player_{i}"] for i in range(count)])
        except RefusedFile as error:
            raise ValueError(f"cannot read a policy profile from {path}: {error.problem}") from None
        except (KeyError, ValueError) as error:
            raise ValueError(f"cannot read a policy profile from {path}: {error}") from None


class TabularCritic:
    """Q values ``q[s, a]``, or an ensemble ``q[l, s, a]`` of L members, over integer states and actions."""

    def __init__(self, q: np.ndarray) -> None:
        q = np.asarray(q, dtype=np.float64)
        if q.ndim not in (2, 3):
            raise ValueError(f"a tabular critic is an (S, A) or (L, S, A) array, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError("a tabular critic's Q values must be finite")
        self.q = _read_only(q)

    @property
    def num_members(self) -> int:
        """L, the ensemble size (1 for a single critic)."""
        return 1 if self.q.ndim == 2 else self.q.shape[0]

    def __repr__(self) -> str:
        return f"TabularCritic(shape={self.q.shape})"

    def q_values(self, obs, actions) -> np.ndarray:
        return self.q[..., np.asarray(obs, dtype=np.int64), np.asarray(actions, dtype=np.int64)]
