"""Expert demonstrations: one file format, rollouts that make it, converters to other layouts.

File format (``.npz``, version 1; read by :func:`agents.untrusted.read_npz`: never unpickled,
sizes checked before anything is allocated). ``N`` trajectories, trajectory ``i`` has ``T_i``
transitions and ``T_i + 1`` observations; arrays are the trajectories concatenated in order:

=================  ==========================  =============================================
key                shape / dtype               meaning
=================  ==========================  =============================================
``obs``            ``(sum(T_i + 1), obs_dim)``  observations, the final one included
``acts``           ``(sum(T_i), act_dim)``      actions
``rewards``        ``(sum(T_i),)`` float        environment rewards
``lengths``        ``(N,)`` int                ``T_i``
``terminated``     ``(N,)`` bool               ended in a terminal state (MDP termination)
``truncated``      ``(N,)`` bool               cut by a time limit (the final obs is not terminal)
``env_id``         0-d str                     Gymnasium id (``""`` if unknown)
``return_mean``    0-d float                   mean undiscounted return of the trajectories
``return_std``     0-d float                   their standard deviation
``source``         0-d str                     what made them (policy file, command)
``format``         0-d str                     ``"soar-mail/demonstrations/1"``
=================  ==========================  =============================================

Converters write and read the ``imitation`` library's trajectory layout
(``obs[T+1], acts[T], infos, terminal[, rews]``) and Minari's episode layout
(``observations[T+1], actions[T], rewards[T], terminations[T], truncations[T]``)
as plain dictionaries of arrays; neither package is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from agents.checkpoints import atomic_output
from agents.untrusted import RefusedFile, read_npz

FORMAT = "soar-mail/demonstrations/1"
_ARRAY_KEYS = ("obs", "acts", "rewards", "lengths", "terminated", "truncated", "format")
_OPTIONAL_KEYS = ("env_id", "return_mean", "return_std", "source")


@dataclass(frozen=True)
class Trajectory:
    """One episode (or its first ``T`` steps): ``obs[T+1]``, ``acts[T]``, ``rewards[T]``.

    Multi-agent episodes (:mod:`agents.rollout`) carry one reward column per agent, ``rewards[T, n]``.
    """

    obs: np.ndarray
    acts: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool

    def __post_init__(self) -> None:
        T = len(self.acts)
        if self.obs.ndim != 2 or self.acts.ndim != 2:
            raise ValueError(f"obs and acts must be 2-D (time, dim), got shapes {self.obs.shape} and {self.acts.shape}")
        if len(self.obs) != T + 1 or self.rewards.ndim not in (1, 2) or len(self.rewards) != T:
            raise ValueError(
                f"a trajectory of {T} actions needs {T + 1} observations and {T} rewards (or {T} rows of "
                f"per-agent rewards), got {len(self.obs)} and {self.rewards.shape}"
            )
        if self.terminated and self.truncated:
            raise ValueError("a trajectory cannot be both terminated and truncated")

    def __len__(self) -> int:
        return len(self.acts)

    @property
    def episode_return(self) -> float | np.ndarray:
        """Undiscounted return: a number, or one per agent for per-agent rewards."""
        total = self.rewards.sum(axis=0, dtype=np.float64)
        return float(total) if self.rewards.ndim == 1 else total


@dataclass
class Demonstrations:
    """Trajectories with the statistics and provenance stored beside them."""

    trajectories: list[Trajectory]
    env_id: str = ""
    source: str = ""
    returns: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if not self.trajectories:
            raise ValueError("demonstrations need at least one trajectory")
        dims = {(t.obs.shape[1], t.acts.shape[1]) for t in self.trajectories}
        if len(dims) != 1:
            raise ValueError(f"trajectories disagree on (obs_dim, act_dim): {sorted(dims)}")
        if any(t.rewards.ndim != 1 for t in self.trajectories):
            raise ValueError("demonstrations hold single-agent trajectories (one reward per step)")
        self.returns = np.array([t.episode_return for t in self.trajectories])

    def __len__(self) -> int:
        return len(self.trajectories)

    @property
    def return_mean(self) -> float:
        return float(self.returns.mean())

    @property
    def return_std(self) -> float:
        return float(self.returns.std())

    @property
    def num_transitions(self) -> int:
        return sum(len(t) for t in self.trajectories)

    def transitions(self) -> dict[str, np.ndarray]:
        """Flat ``obs, acts, next_obs, rewards, terminated`` arrays over all trajectories.

        ``terminated`` is true only on the last transition of a terminated trajectory,
        so time-limit truncations are not mistaken for terminal states.
        """
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "acts", "next_obs", "rewards", "terminated")}
        for t in self.trajectories:
            parts["obs"].append(t.obs[:-1])
            parts["next_obs"].append(t.obs[1:])
            parts["acts"].append(t.acts)
            parts["rewards"].append(t.rewards)
            done = np.zeros(len(t), dtype=bool)
            done[-1:] = t.terminated
            parts["terminated"].append(done)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def summary(self) -> str:
        lengths = [len(t) for t in self.trajectories]
        return (
            f"{len(self)} trajectories of {self.env_id or 'an unknown environment'}, "
            f"{self.num_transitions} transitions (length {min(lengths)}..{max(lengths)}), "
            f"return {self.return_mean:.1f} +- {self.return_std:.1f}"
        )


# ---------------------------------------------------------------- file format
def save_demonstrations(demos: Demonstrations, path: str | Path) -> None:
    """Write ``demos`` in the format of the module docstring (compressed).

    The arrays go through the loader's own checks before anything is written, and the
    written file is read back by :func:`load_demonstrations` before it replaces ``path``:
    a file this writes is always one the loader accepts (``ValueError`` otherwise, and
    ``path`` is left as it was).
    """
    path = Path(path)
    arrays = _demonstration_arrays(demos)
    _check_arrays(arrays, f"cannot write {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temporary:
        with open(temporary, "wb") as handle:  # a handle, so numpy does not append ".npz" to other names
            np.savez_compressed(handle, **arrays)
        load_demonstrations(temporary)


def _demonstration_arrays(demos: Demonstrations) -> dict[str, np.ndarray]:
    ts = demos.trajectories
    return {
        "obs": np.concatenate([t.obs for t in ts]).astype(np.float32),
        "acts": np.concatenate([t.acts for t in ts]).astype(np.float32),
        "rewards": np.concatenate([t.rewards for t in ts]).astype(np.float32),
        "lengths": np.array([len(t) for t in ts], dtype=np.int64),
        "terminated": np.array([t.terminated for t in ts]),
        "truncated": np.array([t.truncated for t in ts]),
        "env_id": np.array(demos.env_id),
        "return_mean": np.array(demos.return_mean),
        "return_std": np.array(demos.return_std),
        "source": np.array(demos.source),
        "format": np.array(FORMAT),
    }


def load_demonstrations(path: str | Path) -> Demonstrations:
    """Read a file written by :func:`save_demonstrations`, checking every array against the others.

    Raises ``ValueError`` naming the file and the problem for anything that is not a
    consistent demonstration file. Only the arrays of the format are read, through
    :func:`agents.untrusted.read_npz`: never unpickled, and no size the file declares is
    allocated before it is checked.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no demonstration file at {path}")
    try:
        arrays = read_npz(path, _ARRAY_KEYS + _OPTIONAL_KEYS)
    except RefusedFile as error:
        raise ValueError(f"{path} is not a readable .npz demonstration file: {error.problem}") from None
    lengths = _check_arrays(arrays, str(path))
    obs, acts, rewards = arrays["obs"], arrays["acts"], arrays["rewards"]
    obs_starts = np.concatenate([[0], np.cumsum(lengths + 1)])
    act_starts = np.concatenate([[0], np.cumsum(lengths)])
    trajectories = [
        Trajectory(
            obs[obs_starts[i]: obs_starts[i + 1]], acts[act_starts[i]: act_starts[i + 1]],
            rewards[act_starts[i]: act_starts[i + 1]],
            bool(arrays["terminated"][i]), bool(arrays["truncated"][i]),
        )
        for i in range(len(lengths))
    ]
    text = {k: str(arrays[k]) if k in arrays else "" for k in ("env_id", "source")}
    return Demonstrations(trajectories, env_id=text["env_id"], source=text["source"])


def _check_arrays(arrays: dict[str, np.ndarray], where: str) -> np.ndarray:
    """The loader's checks of a demonstration file's arrays (the writer runs them too); returns ``lengths`` as int64.

    Raises ``ValueError`` starting with ``where`` and naming every problem found.
    """
    missing = [k for k in _ARRAY_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{where} is not a demonstration file: missing arrays {missing}")
    if str(arrays["format"]) != FORMAT:
        raise ValueError(f"{where} has format {str(arrays['format'])!r}, this toolkit reads {FORMAT!r}")
    for key in ("obs", "acts", "rewards"):
        if not np.issubdtype(arrays[key].dtype, np.number):
            raise ValueError(f"{where}: {key} must be numbers, got dtype {arrays[key].dtype}")
    lengths = arrays["lengths"]
    if lengths.ndim != 1 or len(lengths) == 0 or not np.issubdtype(lengths.dtype, np.integer) or np.any(lengths < 0):
        raise ValueError(f"{where}: lengths must be a non-empty 1-D integer array of counts >= 0, got {lengths!r}")
    lengths = lengths.astype(np.int64)
    obs, acts, rewards = arrays["obs"], arrays["acts"], arrays["rewards"]
    n = len(lengths)
    problems = []
    if obs.ndim != 2 or acts.ndim != 2:
        problems.append(f"obs and acts must be 2-D, got shapes {obs.shape} and {acts.shape}")
    elif len(obs) != lengths.sum() + n or len(acts) != lengths.sum() or rewards.shape != (lengths.sum(),):
        problems.append(
            f"lengths sum to {lengths.sum()} transitions over {n} trajectories, so obs needs "
            f"{lengths.sum() + n} rows, acts and rewards {lengths.sum()}; got {len(obs)}, {len(acts)}, {rewards.shape}"
        )
    for key in ("terminated", "truncated"):
        if arrays[key].shape != (n,) or arrays[key].dtype != bool:
            problems.append(f"{key} must have one flag per trajectory ({n} booleans), got shape {arrays[key].shape} "
                            f"of {arrays[key].dtype}")
    for key in ("obs", "acts", "rewards"):
        if not np.all(np.isfinite(arrays[key])):
            problems.append(f"{key} holds NaN or infinite values")
    both = np.flatnonzero(arrays["terminated"] & arrays["truncated"]) if not problems else []
    if len(both):
        problems.append(f"trajectory {both[0]} is marked both terminated and truncated")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return lengths


# ----------------------------------------------------------------- converters
def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item[name] if name in item else None
    return getattr(item, name, None)


def to_imitation(demos: Demonstrations) -> list[dict[str, Any]]:
    """``imitation``'s ``TrajectoryWithRew`` fields as dicts: ``obs, acts, rews, infos, terminal``.

    ``imitation`` marks every complete episode ``terminal=True`` (time-limit or not), so
    the terminated/truncated distinction is kept in each step's ``infos`` the way
    Gymnasium's old ``TimeLimit`` did (``"TimeLimit.truncated"`` on the last step).
    """
    out = []
    for t in demos.trajectories:
        infos = np.array([{} for _ in range(len(t))], dtype=object)
        if len(t):
            infos[-1] = {"TimeLimit.truncated": t.truncated}
        out.append({"obs": t.obs, "acts": t.acts, "rews": t.rewards, "infos": infos, "terminal": True})
    return out


def from_imitation(
    trajectories: Iterable[Any], env_id: str = "", source: str = "imitation", unknown_ending: str = "truncated",
) -> Demonstrations:
    """Build demonstrations from ``imitation`` trajectories (objects or dicts with ``obs, acts[, rews, infos, terminal]``).

    A terminal trajectory whose last info carries ``TimeLimit.truncated`` follows it; one
    without that info has an unknown ending, taken as ``unknown_ending`` (``"truncated"`` by
    default: a time limit, the usual ending of MuJoCo demonstrations, and the safe guess,
    since a wrong "terminated" would teach a critic a false absorbing state). A
    non-terminal fragment is truncated. Rewards default to zero when absent.
    """
    if unknown_ending not in ("truncated", "terminated"):
        raise ValueError(f"unknown_ending must be 'truncated' or 'terminated', got {unknown_ending!r}")
    result = []
    for i, item in enumerate(trajectories):
        obs, acts = _field(item, "obs"), _field(item, "acts")
        if obs is None or acts is None:
            raise ValueError(f"imitation trajectory {i} has no obs/acts")
        acts = np.asarray(acts, dtype=np.float32)
        acts = acts.reshape(len(acts), -1)
        rews = _field(item, "rews")
        rews = np.zeros(len(acts), np.float32) if rews is None else np.asarray(rews, dtype=np.float32)
        infos = _field(item, "infos")
        terminal = _field(item, "terminal")
        terminal = True if terminal is None else bool(terminal)
        last_info = dict(infos[-1] or {}) if infos is not None and len(infos) else {}
        if not terminal:
            truncated = True
        elif "TimeLimit.truncated" in last_info:
            truncated = bool(last_info["TimeLimit.truncated"])
        else:
            truncated = unknown_ending == "truncated"
        obs = np.asarray(obs, dtype=np.float32)
        result.append(Trajectory(obs.reshape(len(obs), -1), acts, rews, not truncated, truncated))
    return Demonstrations(result, env_id=env_id, source=source)


def from_transition_arrays(
    obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray, rewards: np.ndarray | None = None,
    env_id: str = "", source: str = "transition arrays", terminated: bool = False,
) -> Demonstrations:
    """Build demonstrations from per-trajectory transition arrays ``(N, T, d)`` (as research code stores them).

    Each trajectory must be contiguous (``next_obs[n, t] == obs[n, t + 1]``); its final
    observation is ``next_obs[n, -1]``. Rewards default to zero; every trajectory is marked
    ``terminated`` (or, by default, truncated).
    """
    obs, acts, next_obs = (np.asarray(x, dtype=np.float32) for x in (obs, acts, next_obs))
    if obs.ndim != 3 or next_obs.shape != obs.shape or acts.ndim != 3 or acts.shape[:2] != obs.shape[:2]:
        raise ValueError(
            f"need obs and next_obs of shape (N, T, obs_dim) and acts of shape (N, T, act_dim), "
            f"got {obs.shape}, {next_obs.shape}, {acts.shape}"
        )
    gaps = np.abs(next_obs[:, :-1] - obs[:, 1:]).max(axis=(1, 2)) if obs.shape[1] > 1 else np.zeros(len(obs))
    if np.any(gaps > 1e-6):
        raise ValueError(f"trajectory {int(np.argmax(gaps))} is not contiguous: next_obs[t] != obs[t + 1] "
                         f"(largest gap {gaps.max():.3g})")
    rewards = np.zeros(obs.shape[:2], np.float32) if rewards is None else np.asarray(rewards, dtype=np.float32)
    if rewards.shape != obs.shape[:2]:
        raise ValueError(f"rewards must have shape {obs.shape[:2]}, got {rewards.shape}")
    trajectories = [
        Trajectory(np.concatenate([obs[n], next_obs[n, -1:]]), acts[n], rewards[n], terminated, not terminated)
        for n in range(len(obs))
    ]
    return Demonstrations(trajectories, env_id=env_id, source=source)


def to_minari(demos: Demonstrations) -> list[dict[str, np.ndarray]]:
    """Minari ``EpisodeData`` fields as dicts: ``id, observations, actions, rewards, terminations, truncations``."""
    episodes = []
    for i, t in enumerate(demos.trajectories):
        terminations = np.zeros(len(t), dtype=bool)
        truncations = np.zeros(len(t), dtype=bool)
        terminations[-1:], truncations[-1:] = t.terminated, t.truncated
        episodes.append({
            "id": i, "observations": t.obs, "actions": t.acts, "rewards": t.rewards,
            "terminations": terminations, "truncations": truncations,
        })
    return episodes


def from_minari(episodes: Iterable[Any], env_id: str = "", source: str = "minari") -> Demonstrations:
    """Build demonstrations from Minari episodes (``EpisodeData`` objects or dicts of its fields).

    An episode whose last ``terminations`` flag is set is terminated; any other is truncated.
    """
    result = []
    for i, episode in enumerate(episodes):
        fields = {k: _field(episode, k) for k in ("observations", "actions", "rewards", "terminations", "truncations")}
        missing = [k for k, v in fields.items() if v is None]
        if missing:
            raise ValueError(f"Minari episode {i} lacks {missing}")
        if isinstance(fields["observations"], Mapping):
            raise ValueError(f"Minari episode {i} has dictionary observations; flatten them first")
        acts = np.asarray(fields["actions"], dtype=np.float32)
        terminations = np.asarray(fields["terminations"], dtype=bool)
        terminated = bool(terminations[-1]) if len(terminations) else False
        observations = np.asarray(fields["observations"], dtype=np.float32)
        result.append(Trajectory(
            observations.reshape(len(observations), -1), acts.reshape(len(acts), -1),
            np.asarray(fields["rewards"], dtype=np.float32), terminated,
            not terminated,  # an episode that did not terminate was cut off, flagged or not
        ))
    return Demonstrations(result, env_id=env_id, source=source)
