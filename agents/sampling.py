"""Sampling shared by every tabular algorithm: categorical draws and the occupancy sampler.

Categorical draws are inverse-CDF draws in two forms with the same semantics: the
scalar :func:`categorical` inside numba kernels and the batched
:func:`sample_categorical` (over tables precomputed by :func:`cumulative_table`)
in numpy code. Neither ever returns a zero-probability entry, even when rounding
leaves a row's cumulative sum a hair below 1.

Step-count convention: a *simulator step* is one sampled transition ``s -> s'``.
Drawing actions is not a step. :func:`sample_occupancy` returns both the steps it
took and the joint actions it drew (each drawn joint action is one expert query
per player when the profile is an expert's).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from envs.validation import check_distribution_rows, check_non_negative_int, check_rollout_discount


# ------------------------------------------------------------- categorical draws
@njit(cache=True)
def categorical(probabilities: np.ndarray, u: float) -> int:
    """Inverse-CDF draw from ``probabilities`` with a uniform ``u`` in [0, 1) (a kernel: no input checks)."""
    total = 0.0
    for i in range(probabilities.shape[0]):
        total += probabilities[i]
        if u < total:
            return i
    # Rounding can leave the total a hair below 1: return the last positive entry.
    for i in range(probabilities.shape[0] - 1, -1, -1):
        if probabilities[i] > 0.0:
            return i
    return 0


def cumulative_table(probabilities: np.ndarray) -> np.ndarray:
    """Cumulative sums along the last axis, infinite from each row's last positive entry on.

    With the infinite tail, ``(u >= table).sum(-1)`` for ``u`` in [0, 1) never lands
    on a zero-probability entry, whatever the rounding of the sums.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    check_distribution_rows(probabilities, "probabilities")
    table = np.cumsum(probabilities, axis=-1)
    num_entries = probabilities.shape[-1]
    last_positive = num_entries - 1 - np.argmax(probabilities[..., ::-1] > 0, axis=-1)
    table[np.arange(num_entries) >= last_positive[..., None]] = np.inf
    return table


def draw(table: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One index per row of a :func:`cumulative_table` ``(..., K)`` from uniforms in [0, 1) of shape ``(...)``.

    Like :func:`categorical`, a building block of inner loops without input checks: the table
    comes from :func:`cumulative_table` (which checks the probabilities) and the uniforms
    from a generator's ``random``.
    """
    return (np.asarray(uniforms)[..., None] >= table).sum(axis=-1)


def sample_categorical(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``probabilities`` ``(..., K)``, using ``rng.random(shape[:-1])``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return draw(cumulative_table(probabilities), rng.random(probabilities.shape[:-1]))


# ------------------------------------------------------------ profile rollouts
@njit(cache=True)
def draw_joint(packed: np.ndarray, num_actions: np.ndarray, state: int, rng: np.random.Generator) -> int:
    """Flat joint action (C order) of a packed profile ``(n, S, max A)`` at ``state`` (a kernel: no input checks)."""
    joint = 0
    for i in range(packed.shape[0]):
        joint = joint * num_actions[i] + categorical(packed[i, state, : num_actions[i]], rng.random())
    return joint


@njit(cache=True)
def _geometric_rollouts(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    every_state: bool,
    with_actions: bool,
    with_next: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    states = np.empty(count, dtype=np.int64)
    joints = np.full(count, -1, dtype=np.int64)
    next_states = np.full(count, -1, dtype=np.int64)
    steps = draws = 0
    n = 0
    while n < count:
        state = categorical(initial, rng.random())
        # P(T = t) = (1 - gamma) gamma^t makes s_T distributed as d^pi.
        length = rng.geometric(1.0 - gamma) - 1
        for t in range(length + 1):
            last = t == length
            keep = every_state or last
            if keep:
                states[n] = state
            if keep and not with_actions:
                n += 1
                if n == count or last:
                    break
            if not keep or not with_actions:
                joint = draw_joint(packed, num_actions, state, rng)
                draws += 1
                state = categorical(joint_transitions[state, joint], rng.random())
                steps += 1
                continue
            joint = draw_joint(packed, num_actions, state, rng)
            draws += 1
            joints[n] = joint
            if with_next or not last:
                following = categorical(joint_transitions[state, joint], rng.random())
                steps += 1
                if with_next:
                    next_states[n] = following
                state = following
            n += 1
            if n == count:
                break
    return states, joints, next_states, steps, draws


class OccupancySample(NamedTuple):
    """What :func:`sample_occupancy` returns.

    ``joint_actions`` and ``next_states`` hold -1 where they were not asked for.
    ``steps`` counts simulator steps (transitions sampled), ``draws`` joint actions drawn.
    """

    states: np.ndarray
    joint_actions: np.ndarray
    next_states: np.ndarray
    steps: int
    draws: int


def _checked_rollout_inputs(
    joint_transitions: np.ndarray, packed: np.ndarray, num_actions: np.ndarray, initial: np.ndarray, gamma: float,
    count: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
    """The sampler's inputs as the kernels need them; ``ValueError`` naming what disagrees."""
    count = check_non_negative_int(count, "count")
    gamma = check_rollout_discount(gamma)
    num_actions = np.asarray(num_actions, dtype=np.int64)
    initial = np.ascontiguousarray(initial, dtype=np.float64)
    joint_transitions, packed = np.asarray(joint_transitions), np.asarray(packed)
    # The kernel indexes these arrays unchecked: shapes that disagree would read out of bounds.
    # (Plain Python on the few action counts: numpy's reductions cost more in the algorithms' inner loops.)
    counts = num_actions.tolist() if num_actions.ndim == 1 else None
    num_states = initial.shape[0] if initial.ndim == 1 else -1
    if (
        counts is None
        or joint_transitions.ndim != 3
        or joint_transitions.shape[::2] != (num_states, num_states)
        or joint_transitions.shape[1] != math.prod(counts)
        or packed.shape[:2] != (len(counts), num_states)
        or packed.shape[2] < max(counts, default=0)
    ):
        raise ValueError(
            f"shapes disagree: joint_transitions {joint_transitions.shape} must be (S, prod(num_actions), S), "
            f"packed {packed.shape} (n, S, max A), num_actions {tuple(num_actions)} (n,) and initial {initial.shape} (S,)"
        )
    return joint_transitions, packed, num_actions, initial, gamma, count


def sample_occupancy(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    rng: np.random.Generator,
    every_state: bool = False,
    with_actions: bool = False,
    with_next: bool = False,
) -> OccupancySample:
    """``count`` states from the normalised discounted occupancy ``d^pi`` of a profile.

    Each rollout starts at ``s_0 ~ initial`` and runs ``T ~ Geometric(1 - gamma) - 1``
    steps, so that ``s_T ~ d^pi``.

    Parameters
    ----------
    joint_transitions:
        ``(S, J, S)``, the game's transitions over flat joint actions.
    packed:
        The profile as ``(n, S, max A)`` (see :func:`agents.tabular.pack_policies`).
    num_actions:
        ``(n,)`` int64 actions per player.
    initial, gamma:
        Initial distribution and discount; ``gamma`` within
        :data:`envs.validation.MIN_ROLLOUT_DISCOUNT_GAP` of 1 is refused (a rollout would
        take millions of steps).
    count:
        States to return (>= 0).
    every_state:
        Keep every state of consecutive rollouts (trajectory samples) instead of only
        the last state of each (independent samples from ``d^pi``).
    with_actions:
        Also return the joint action the profile draws at each kept state.
    with_next:
        Also take one more step from each kept state and return ``s'`` (implies
        ``with_actions``).
    """
    joint_transitions, packed, num_actions, initial, gamma, count = _checked_rollout_inputs(
        joint_transitions, packed, num_actions, initial, gamma, count)
    with_actions = bool(with_actions or with_next)
    states, joints, next_states, steps, draws = _geometric_rollouts(
        joint_transitions, packed, num_actions, initial,
        gamma, count, bool(every_state), with_actions, bool(with_next), rng,
    )
    return OccupancySample(states, joints, next_states, int(steps), int(draws))


@njit(cache=True)
def _trajectories(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.empty(count, dtype=np.int64)
    for i in range(count):
        lengths[i] = rng.geometric(1.0 - gamma)
    total = lengths.sum()
    states = np.empty(total, dtype=np.int64)
    joints = np.empty(total, dtype=np.int64)
    next_states = np.empty(total, dtype=np.int64)
    owner = np.empty(total, dtype=np.int64)
    n = 0
    for i in range(count):
        state = categorical(initial, rng.random())
        for _ in range(lengths[i]):
            joint = draw_joint(packed, num_actions, state, rng)
            following = categorical(joint_transitions[state, joint], rng.random())
            states[n], joints[n], next_states[n], owner[n] = state, joint, following, i
            state = following
            n += 1
    return states, joints, next_states, owner


class TrajectorySample(NamedTuple):
    """What :func:`sample_trajectories` returns: every transition of every rollout, in order.

    ``trajectory[t]`` is the rollout (0..count-1) transition ``t`` belongs to; the number of
    transitions is the number of simulator steps taken.
    """

    states: np.ndarray
    joint_actions: np.ndarray
    next_states: np.ndarray
    trajectory: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.states)


def sample_trajectories(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    rng: np.random.Generator,
) -> TrajectorySample:
    """``count`` rollouts of a profile, each of ``Geometric(1 - gamma)`` transitions (mean ``1 / (1 - gamma)``).

    Each starts at ``s_0 ~ initial``; with ``T`` its number of transitions, the states
    ``s_0 .. s_{T-1}`` it leaves are, summed over rollouts, an unbiased estimate of the
    (unnormalised) discounted occupancy ``sum_t gamma^t P(s_t = s)``: the rollout reaches
    step ``t`` with probability ``gamma^t``. The lengths are drawn first, then the rollouts.
    Arguments as :func:`sample_occupancy`.
    """
    joint_transitions, packed, num_actions, initial, gamma, count = _checked_rollout_inputs(
        joint_transitions, packed, num_actions, initial, gamma, count)
    return TrajectorySample(*_trajectories(joint_transitions, packed, num_actions, initial, gamma, count, rng))
