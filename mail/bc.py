"""Behavioural cloning from expert demonstrations (the non-interactive baseline)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from agents import tabular
from agents.sampling import sample_categorical, sample_occupancy
from agents.tabular import Profile
from agents.tabular_demonstrations import TabularDemonstrations
from envs.markov_game import MarkovGame
from envs.validation import check_choice, check_non_negative_int, check_seed
from mail.loop import IterateTracker, log_point
from mail.oracle import ExpertOracle
from mail.result import MailHistory, MailResult

SAMPLINGS = ("iid", "trajectory")
DEFAULTS = ("uniform", "first")


def _check_sampling(sampling: str) -> bool:
    """Whether ``sampling`` keeps every state of the rollouts."""
    return check_choice(sampling, "sampling", SAMPLINGS) == "trajectory"


def clone_counts(counts: np.ndarray, default: Literal["uniform", "first"] = "uniform") -> np.ndarray:
    """The cloned policy ``N(s, a) / N(s)`` of action counts (S, A); rows never seen get ``default``."""
    check_choice(default, "default", DEFAULTS)
    num_actions = counts.shape[1]
    visits = counts.sum(axis=1, keepdims=True)
    fallback = np.full(num_actions, 1.0 / num_actions) if default == "uniform" else np.eye(num_actions)[0]
    return np.where(visits > 0, counts / np.maximum(visits, 1.0), fallback)


def expert_dataset(
    game: MarkovGame,
    expert_policies: Profile,
    num_samples: int,
    sampling: Literal["iid", "trajectory"] = "iid",
    seed: int | None = None,
) -> TabularDemonstrations:
    """``num_samples`` expert samples ``(s, a_1..a_n)`` with ``s ~ d^E``.

    ``iid``: each state is the last of an independent Geometric(1 - gamma)-length
    rollout; ``trajectory``: every state of consecutive rollouts is kept (see
    :func:`agents.sampling.sample_occupancy`). This is the expert *demonstrating*
    (the dataset's size is its cost); to collect demonstrations through counted
    queries instead, pass an :class:`~mail.oracle.ExpertOracle` to :func:`bc`.
    """
    num_samples = check_non_negative_int(num_samples, "num_samples")
    expert_policies = tabular.check_policies(game, expert_policies)
    every_state = _check_sampling(sampling)
    rng = np.random.default_rng(check_seed(seed))
    states = sample_occupancy(
        game.joint_transitions, tabular.pack_policies(game, expert_policies), np.asarray(game.num_actions),
        game.initial, game.gamma, num_samples, rng, every_state=every_state,
    ).states
    actions = np.stack([sample_categorical(policy[states], rng) for policy in expert_policies], axis=1)
    return TabularDemonstrations(states, actions.reshape(num_samples, game.num_players), source=f"expert, {sampling}")


def bc(
    game: MarkovGame,
    data: TabularDemonstrations | ExpertOracle,
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
        :class:`~agents.tabular_demonstrations.TabularDemonstrations`, or an :class:`~mail.oracle.ExpertOracle` that
        answers one query per player at every step of the expert's rollouts
        (every query is counted, including the steps an ``iid`` rollout skips).
    num_samples:
        Samples to use: the first ``num_samples`` of a dataset (default: all), or how
        many to collect from an oracle (required then).
    default:
        Policy at states the data never visit: ``"uniform"`` or ``"first"`` (always
        the first action); it decides BC's Nash gap where the expert never goes.
    sampling:
        ``"iid"`` or ``"trajectory"`` (see :func:`expert_dataset`); only for an oracle.
    seed:
        Seeds the rollouts when collecting from an oracle (a dataset refuses one).

    Returns
    -------
    MailResult
        The cloned profile as every reported policy, with one history point whose
        ``expert_queries`` is the number of samples (dataset) or of queries (oracle).
    """
    check_choice(default, "default", DEFAULTS)
    if isinstance(data, ExpertOracle):
        data.check_game(game)
        if num_samples is None:
            raise ValueError("num_samples is required when cloning from an oracle")
        num_samples = check_non_negative_int(num_samples, "num_samples")
        start = data.total_queries
        sample = data.demonstrate(game, num_samples, _check_sampling(sampling), np.random.default_rng(check_seed(seed)))
        table = tabular.joint_action_table(game)
        dataset = TabularDemonstrations(sample.states, table[sample.joint_actions], source="oracle")
        cost = data.total_queries - start
    elif isinstance(data, TabularDemonstrations):
        if sampling != "iid" or seed is not None:
            raise ValueError("sampling and seed apply only when cloning from an ExpertOracle, not from a dataset")
        dataset = data
        if num_samples is not None:
            num_samples = check_non_negative_int(num_samples, "num_samples")
            if num_samples > len(data):
                raise ValueError(f"num_samples = {num_samples} exceeds the dataset's {len(data)} samples")
            dataset = data.head(num_samples)
        dataset.check_game(game)
        cost = len(dataset)
    else:
        raise ValueError(f"data must be TabularDemonstrations or an ExpertOracle, got {type(data).__name__}")

    policies = []
    for i, num_actions in enumerate(game.num_actions):
        counts = np.zeros((game.num_states, num_actions))
        np.add.at(counts, (dataset.states, dataset.actions[:, i]), 1.0)
        policies.append(clone_counts(counts, default))
    tracker = IterateTracker(policies, np.random.default_rng(0))
    history = MailHistory()
    log_point(history, game, tracker, 0, cost, 0, 0)
    return tracker.result(history)
