"""Behavioural cloning from expert demonstrations (the non-interactive baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents import tabular
from envs.markov_game import MarkovGame
from mail import rollouts
from mail.oracle import ExpertOracle
from mail.result import IterateTracker, MailHistory, MailResult, check_budget, log_point

SAMPLINGS = ("iid", "trajectory")
DEFAULTS = ("uniform", "first")


@dataclass(frozen=True)
class ExpertDataset:
    """Expert samples: ``states`` (N,) with every player's action ``actions`` (N, n)."""

    states: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.states)


def _demonstrate(
    game: MarkovGame,
    act,
    num_samples: int,
    sampling: str,
    rng: np.random.Generator,
) -> ExpertDataset:
    """Roll the expert (``act(state) -> joint action``) to collect states from d^E.

    ``iid``: each sample is the last state of an independent rollout of
    Geometric(1 - gamma) - 1 steps. ``trajectory``: every state of consecutive
    rollouts of that length is kept.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    states, actions = [], []
    while len(states) < num_samples:
        state = int(rng.choice(game.num_states, p=game.initial))
        length = int(rng.geometric(1.0 - game.gamma)) - 1
        for t in range(length + 1):
            joint = act(state)
            if sampling == "trajectory" or t == length:
                states.append(state)
                actions.append(joint)
                if len(states) == num_samples:
                    break
            if t < length:
                index = game.joint_action_index(joint)
                state = int(rng.choice(game.num_states, p=game.joint_transitions[state, index]))
    return ExpertDataset(np.array(states, dtype=np.int64), np.array(actions, dtype=np.int64).reshape(-1, game.num_players))


def expert_dataset(
    game: MarkovGame,
    expert_policies: list[np.ndarray],
    num_samples: int,
    sampling: Literal["iid", "trajectory"] = "iid",
    seed: int | None = None,
) -> ExpertDataset:
    """A demonstration dataset of ``num_samples`` expert samples ``(s, a_1..a_n)``, ``s ~ d^E``.

    This is the expert *demonstrating* (the dataset's size is its cost); to
    collect demonstrations through counted queries instead, pass an
    :class:`~mail.oracle.ExpertOracle` to :func:`bc`.
    """
    num_samples = check_budget("num_samples", num_samples)
    expert_policies = tabular.check_policies(game, expert_policies)
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    rng = np.random.default_rng(seed)
    arguments = (
        game.joint_transitions,
        tabular.pack_policies(game, expert_policies),
        np.asarray(game.num_actions, dtype=np.int64),
        np.ascontiguousarray(game.initial),
        game.gamma,
        num_samples,
        rng,
    )
    if sampling == "iid":
        states, _ = rollouts.sample_occupancy_states(*arguments)
    else:
        states = rollouts.sample_trajectory_states(*arguments)
    actions = np.empty((num_samples, game.num_players), dtype=np.int64)
    for i, policy in enumerate(expert_policies):
        cumulative = np.cumsum(policy[states], axis=1)
        drawn = (rng.random(num_samples)[:, None] >= cumulative).sum(axis=1)
        actions[:, i] = np.minimum(drawn, policy.shape[1] - 1)
    return ExpertDataset(states, actions)


def bc(
    game: MarkovGame,
    data: ExpertDataset | ExpertOracle,
    num_samples: int | None = None,
    default: Literal["uniform", "first"] = "uniform",
    sampling: Literal["iid", "trajectory"] = "iid",
    seed: int | None = None,
) -> MailResult:
    """Behavioural cloning: ``pi_i(a | s) = N(s, a_i) / N(s)``.

    Parameters
    ----------
    game:
        The game (used to roll out demonstrations from an oracle and to report the Nash gap).
    data:
        An :class:`ExpertDataset`, or an :class:`~mail.oracle.ExpertOracle` that
        answers one query per player at every step of the expert's rollouts
        (every query is counted, including the steps an ``iid`` rollout skips).
    num_samples:
        Samples to use: the first ``num_samples`` of a dataset (default: all), or how
        many to collect from an oracle (required then).
    default:
        Policy at states the data never visit: ``"uniform"`` or ``"first"`` (always
        the first action); it decides BC's Nash gap where the expert never goes.
    sampling:
        ``"iid"`` or ``"trajectory"`` (see :func:`expert_dataset`), for an oracle.
    seed:
        Seeds the rollouts when collecting from an oracle.

    Returns
    -------
    MailResult
        The cloned profile as every reported policy, with one history point whose
        ``expert_queries`` is the number of samples (dataset) or of queries (oracle).
    """
    if default not in DEFAULTS:
        raise ValueError(f"default must be one of {DEFAULTS}, got {default!r}")
    if isinstance(data, ExpertOracle):
        data.check_game(game)
        if num_samples is None:
            raise ValueError("num_samples is required when cloning from an oracle")
        num_samples = check_budget("num_samples", num_samples)
        rng = np.random.default_rng(seed)
        start = data.total_queries

        def act(state: int) -> list[int]:
            return [data.query(i, state) for i in range(game.num_players)]

        dataset = _demonstrate(game, act, num_samples, sampling, rng)
        cost = data.total_queries - start
    elif isinstance(data, ExpertDataset):
        dataset = data
        if num_samples is not None:
            num_samples = check_budget("num_samples", num_samples)
            if num_samples > len(data):
                raise ValueError(f"num_samples = {num_samples} exceeds the dataset's {len(data)} samples")
            dataset = ExpertDataset(data.states[:num_samples], data.actions[:num_samples])
        _check_dataset(game, dataset)
        cost = len(dataset)
    else:
        raise ValueError(f"data must be an ExpertDataset or an ExpertOracle, got {type(data).__name__}")

    policies = []
    for i, num_actions in enumerate(game.num_actions):
        counts = np.zeros((game.num_states, num_actions))
        np.add.at(counts, (dataset.states, dataset.actions[:, i]), 1.0)
        visits = counts.sum(axis=1, keepdims=True)
        fallback = np.full(num_actions, 1.0 / num_actions) if default == "uniform" else np.eye(num_actions)[0]
        policies.append(np.where(visits > 0, counts / np.maximum(visits, 1.0), fallback))
    tracker = IterateTracker(policies, np.random.default_rng(0))
    history = MailHistory()
    log_point(history, game, tracker, 0, cost, 0, 0)
    return tracker.result(history)


def _check_dataset(game: MarkovGame, dataset: ExpertDataset) -> None:
    states, actions = np.asarray(dataset.states), np.asarray(dataset.actions)
    if states.ndim != 1 or actions.shape != (len(states), game.num_players):
        raise ValueError(
            f"dataset needs states (N,) and actions (N, {game.num_players}), got {states.shape} and {actions.shape}"
        )
    if len(states) and (states.min() < 0 or states.max() >= game.num_states):
        raise ValueError(f"dataset states must lie in [0, {game.num_states})")
    for i, count in enumerate(game.num_actions):
        if len(states) and (actions[:, i].min() < 0 or actions[:, i].max() >= count):
            raise ValueError(f"dataset actions of player {i} must lie in [0, {count})")
