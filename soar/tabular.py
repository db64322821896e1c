"""Tabular SOAR-IL: primal-dual imitation learning with an optimistic critic ensemble.

The template, in cost form (the learner minimises a cost ``c`` in [0, 1]
that the cost player adapts to separate expert from learner occupancies)::

    c <- 0.5; pi uniform; V <- 0
    for k = 1..K:
        rho_pi <- M fresh learner states from d^pi (and their actions)
        c <- clip(c - eta_c (rho_E - rho_pi), 0, 1)          # empirical occupancies
        for l = 1..L: roll one trajectory of pi; add all its transitions to N_l
                      (P_l = N_l / sum N_l, uniform where unvisited)
        Q <- clip(c + gamma [mean_l P_l V - optimism clip(std_l P_l V, 0, std_clip)], 0, 1 / (1 - gamma))
        V(s) <- sum_a pi(a | s) Q(s, a)
        pi <- pi exp(-eta Q), renormalised                    # mirror descent

Each of the L models learns from its own trajectories, so their disagreement
``std_l P_l V`` measures how little is known about ``(s, a)``: subtracting it
(cost form) makes unexplored actions look cheap, and the learner tries them.
``L = 1`` is the non-optimistic base method. Two comparison critics replace
the optimistic one: ``"min"`` (``min_l P_l V``) and ``"ucb"`` (the pooled model
with a count bonus ``optimism / ((1 - gamma) sqrt(N(s, a)))``). The optimism
parameters are named as in deep SOAR (:mod:`agents.optimism` explains them once).

What is counted (the history keeps each): an *MDP sample* is one trajectory of a
model, ``Geometric(1 - gamma)`` transitions long (:func:`agents.sampling.sample_trajectories`),
L per iteration. The learner's occupancy comes from ``learner_samples`` fresh states
``s ~ d^pi`` per iteration (:func:`agents.sampling.sample_occupancy`), counted as
*learner samples*; with ``learner_samples=0`` it comes from the models' own
trajectories instead, at no extra cost: each visit weighs ``(1 - gamma) / L``, which makes
the estimate of ``d^pi`` unbiased (a trajectory reaches step t with probability gamma^t).
*Environment steps* count every sampled transition of both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from agents import tabular
from agents.interface import TabularCritic, TabularPolicy
from agents.optimism import check_optimism, optimistic_value
from agents.sampling import sample_categorical, sample_occupancy, sample_trajectories
from agents.tabular_demonstrations import TabularDemonstrations
from envs.markov_game import MarkovGame
from envs.validation import (
    check_choice, check_discount, check_non_negative, check_non_negative_int, check_positive, check_positive_int,
    check_rollout_discount, check_seed,
)

CRITICS = ("optimistic", "min", "ucb")
OCCUPANCIES = ("state-action", "state")


# ----------------------------------------------------------------- data
def sample_expert_data(
    mdp: MarkovGame, expert_policy: TabularPolicy | np.ndarray, num_samples: int, seed: int | None = None
) -> TabularDemonstrations:
    """Draw ``num_samples`` i.i.d. pairs ``s ~ d^E``, ``a ~ pi_E(. | s)`` from the exact occupancy."""
    _check_mdp(mdp)
    num_samples = check_positive_int(num_samples, "num_samples")
    (expert_policy,) = tabular.check_policies(mdp, [expert_policy])
    rng = np.random.default_rng(check_seed(seed))
    d = tabular.occupancy(mdp, [expert_policy])
    states = rng.choice(mdp.num_states, size=num_samples, p=d / d.sum())
    actions = sample_categorical(expert_policy[states], rng)
    return TabularDemonstrations(states, actions, source="expert occupancy, i.i.d.")


def optimal_policy(mdp: MarkovGame) -> TabularPolicy:
    """The optimal deterministic policy of an MDP under its true reward."""
    _check_mdp(mdp)
    actions, _, _ = tabular.solve_mdp(mdp.transitions, mdp.rewards[0], mdp.gamma)
    policy = np.zeros((mdp.num_states, mdp.num_actions[0]))
    policy[np.arange(mdp.num_states), actions] = 1.0
    return TabularPolicy(policy)


def policy_value(mdp: MarkovGame, policy: TabularPolicy | np.ndarray) -> float:
    """Exact value ``V^pi(rho_0)`` under the MDP's true reward."""
    return float(tabular.values(mdp, [policy])[0] @ mdp.initial)


def value_range(mdp: MarkovGame) -> tuple[float, float]:
    """The lowest and the highest value ``V^pi(rho_0)`` any policy has: the range a plotted value can take.

    Both are attained by deterministic policies, the optimal ones for the reward and for its negation.
    """
    _check_mdp(mdp)
    values = []
    for sign in (-1.0, 1.0):
        actions, _, _ = tabular.solve_mdp(mdp.transitions, sign * mdp.rewards[0], mdp.gamma)
        values.append(policy_value(mdp, np.eye(mdp.num_actions[0])[actions]))
    return values[0], values[1]


# -------------------------------------------------------------- critics
def optimistic_q(
    cost: np.ndarray, next_values: np.ndarray, gamma: float, optimism: float, std_clip: float = math.inf
) -> np.ndarray:
    """SOAR's optimistic critic (cost form) from an ensemble of backups.

    Parameters
    ----------
    cost:
        Current cost ``c(s, a)``, shape (S, A).
    next_values:
        ``P_l V`` of every model, shape (L, S, A).
    gamma:
        Discount.
    optimism, std_clip:
        Weight and upper clip of the ensemble's standard deviation (:mod:`agents.optimism`).

    Returns
    -------
    ``clip(c + gamma (mean_l P_l V - optimism clip(std_l P_l V, 0, std_clip)), 0, 1 / (1 - gamma))``
    (population standard deviation; 0 when L = 1).
    """
    gamma = check_discount(gamma)
    optimism = check_non_negative(optimism, "optimism")
    std_clip = check_non_negative(std_clip, "std_clip", allow_inf=True)
    backup = optimistic_value(next_values, optimism, std_clip, form="cost")
    return np.clip(cost + gamma * backup, 0.0, 1.0 / (1.0 - gamma))


def min_q(cost: np.ndarray, next_values: np.ndarray, gamma: float) -> np.ndarray:
    """Comparison critic: the most optimistic model, ``clip(c + gamma min_l P_l V)``."""
    gamma = check_discount(gamma)
    return np.clip(cost + gamma * next_values.min(axis=0), 0.0, 1.0 / (1.0 - gamma))


def ucb_q(
    cost: np.ndarray, pooled_next_values: np.ndarray, counts: np.ndarray, gamma: float, optimism: float
) -> np.ndarray:
    """Comparison critic: pooled model with a count bonus ``optimism / ((1 - gamma) sqrt(max(N, 1)))``."""
    gamma, optimism = check_discount(gamma), check_non_negative(optimism, "optimism")
    bonus = optimism / ((1.0 - gamma) * np.sqrt(np.maximum(counts, 1.0)))
    return np.clip(cost + gamma * pooled_next_values - bonus, 0.0, 1.0 / (1.0 - gamma))


def empirical_models(counts: np.ndarray) -> np.ndarray:
    """Transition models ``N(s, a, s') / N(s, a)``, uniform where ``(s, a)`` is unvisited.

    ``counts`` has shape (..., S, A, S); so does the result.
    """
    totals = counts.sum(axis=-1, keepdims=True)
    num_states = counts.shape[-1]
    return np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / num_states)


def mirror_descent_step(policy: np.ndarray, q: np.ndarray, step: float) -> np.ndarray:
    """``pi <- pi exp(-step Q)`` renormalised per state (cost form), computed in log space; ``step > 0``."""
    step = check_positive(step, "step")
    logits = np.log(np.maximum(policy, 1e-300)) - step * q
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


# ----------------------------------------------------------- algorithm
@dataclass
class SoarHistory:
    """Logged points: iteration, cumulative MDP samples (model trajectories), learner samples
    and environment steps, the true value of the policy (exact solve, true reward) and the
    cost-update loss ``<c, rho_E - rho_pi>`` on that iteration's empirical occupancies."""

    iteration: list[int] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    learner_samples: list[int] = field(default_factory=list)
    env_steps: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    cost_loss: list[float] = field(default_factory=list)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in vars(self).items()}


@dataclass(frozen=True)
class SoarResult:
    """What :func:`soar_il` returns.

    Attributes
    ----------
    policy:
        The final policy.
    critic:
        The last critic ensemble, one member per model: ``Q_l = clip(c + gamma P_l V, 0, 1 / (1 - gamma))``
        (cost form: lower is better), shape ``(L, S, A)``.
    cost:
        The final cost ``c(s, a)`` in [0, 1], shape (S, A).
    history:
        The logged points.
    """

    policy: TabularPolicy
    critic: TabularCritic
    cost: np.ndarray
    history: SoarHistory


def _check_mdp(mdp: MarkovGame) -> None:
    if not isinstance(mdp, MarkovGame) or mdp.num_players != 1:
        raise ValueError("expected a one-player MarkovGame (an MDP)")


def _empirical_occupancy(
    states: np.ndarray, actions: np.ndarray, shape: tuple[int, int], state_only: bool, weight: float | None = None
) -> np.ndarray:
    """Each visit counts ``weight`` (default ``1 / len(states)``: i.i.d. samples of the occupancy)."""
    occupancy = np.zeros(shape)
    np.add.at(occupancy, (states, actions), 1.0 / len(states) if weight is None else weight)
    if state_only:
        # Match state marginals; the cost is then the same for every action.
        occupancy = np.repeat(occupancy.sum(axis=1, keepdims=True), shape[1], axis=1)
    return occupancy


def soar_il(
    mdp: MarkovGame,
    expert_data: TabularDemonstrations,
    num_critics: int = 1,
    num_iterations: int = 100,
    cost_step: float = 0.9,
    policy_step: float = 4.0,
    optimism: float = 1e-3,
    std_clip: float = math.inf,
    seed: int | None = 0,
    critic: Literal["optimistic", "min", "ucb"] = "optimistic",
    occupancy: Literal["state-action", "state"] = "state-action",
    learner_samples: int = 100,
    log_every: int = 1,
    progress: bool = False,
) -> SoarResult:
    """Run tabular SOAR-IL (see the module docstring for the loop).

    Parameters
    ----------
    mdp:
        One-player :class:`~envs.markov_game.MarkovGame`; its reward is used only
        to report the true value of the policy, never for learning.
    expert_data:
        Expert states and actions (:func:`sample_expert_data`, or any
        :class:`~agents.tabular_demonstrations.TabularDemonstrations` of one player).
    num_critics:
        L, the number of empirical models; each takes every transition of one fresh
        learner trajectory per iteration. ``1`` with ``critic="optimistic"`` is the
        base method.
    num_iterations:
        K, the number of primal-dual iterations.
    cost_step, policy_step:
        eta_c of the cost update and eta of the mirror-descent policy update.
    optimism:
        Weight of the ensemble's standard deviation (the paper's beta), or the
        count-bonus scale for ``"ucb"``; >= 0. See :mod:`agents.optimism`.
    std_clip:
        Upper clip of the ensemble's standard deviation (default: none).
    seed:
        Seeds the one ``numpy.random.Generator`` of the run.
    critic:
        ``"optimistic"`` (mean - optimism std), ``"min"`` or ``"ucb"``.
    occupancy:
        Match ``"state-action"`` or ``"state"`` occupancies.
    learner_samples:
        Fresh states ``s ~ d^pi`` per iteration for the learner's occupancy in the cost
        step (the research code's 100); ``0``: the models' trajectories instead.
    log_every:
        Log the history every this many iterations (and at the last one).
    progress:
        Show a progress bar.
    """
    _check_mdp(mdp)
    num_states, num_actions = mdp.num_states, mdp.num_actions[0]
    if not isinstance(expert_data, TabularDemonstrations):
        raise ValueError("expert_data must be TabularDemonstrations (see sample_expert_data)")
    if len(expert_data) == 0:
        raise ValueError("expert_data holds no samples")
    expert_data.check_game(mdp)
    num_critics, optimism, std_clip = check_optimism(num_critics, optimism, std_clip)
    num_iterations = check_positive_int(num_iterations, "num_iterations")
    log_every = check_positive_int(log_every, "log_every")
    learner_samples = check_non_negative_int(learner_samples, "learner_samples")
    cost_step, policy_step = check_positive(cost_step, "cost_step"), check_positive(policy_step, "policy_step")
    check_choice(critic, "critic", CRITICS)
    check_choice(occupancy, "occupancy", OCCUPANCIES)
    gamma = check_rollout_discount(mdp.gamma, "the MDP's gamma")
    rng = np.random.default_rng(check_seed(seed))
    state_only = occupancy == "state"
    shape = (num_states, num_actions)
    expert_occupancy = _empirical_occupancy(expert_data.states, expert_data.actions[:, 0], shape, state_only)

    cost = np.full(shape, 0.5)
    policy = np.full(shape, 1.0 / num_actions)
    values = np.zeros(num_states)
    counts = np.zeros((num_critics, num_states, num_actions, num_states))
    history = SoarHistory()
    samples = learner_count = env_steps = 0
    action_counts = np.array([num_actions])
    for k in tqdm(range(1, num_iterations + 1), disable=not progress, desc=f"SOAR L={num_critics}", leave=False):
        packed = policy[None]  # one player: the sampler's flat joint actions are the learner's actions
        if learner_samples:
            fresh = sample_occupancy(mdp.joint_transitions, packed, action_counts, mdp.initial, gamma, learner_samples,
                                     rng, with_actions=True)
            learner_count += learner_samples
            env_steps += fresh.steps
            learner_occupancy = _empirical_occupancy(fresh.states, fresh.joint_actions, shape, state_only)
        trajectories = sample_trajectories(mdp.joint_transitions, packed, action_counts, mdp.initial, gamma,
                                           num_critics, rng)
        samples += num_critics
        env_steps += trajectories.steps
        if not learner_samples:
            # (1 - gamma) / L per visit, not 1 / (visits): the ratio would overweight the first states
            # of short trajectories, more so for small L; this one is unbiased (its total is 1 on average).
            learner_occupancy = _empirical_occupancy(trajectories.states, trajectories.joint_actions, shape,
                                                     state_only, weight=(1.0 - gamma) / num_critics)
        cost_loss = float(np.sum(cost * (expert_occupancy - learner_occupancy)))
        cost = np.clip(cost - cost_step * (expert_occupancy - learner_occupancy), 0.0, 1.0)

        np.add.at(counts, (trajectories.trajectory, trajectories.states, trajectories.joint_actions,
                           trajectories.next_states), 1.0)
        if critic != "ucb" or k == num_iterations:
            next_values = empirical_models(counts) @ values
        if critic == "ucb":
            pooled = counts.sum(axis=0)
            q = ucb_q(cost, empirical_models(pooled) @ values, pooled.sum(axis=-1), gamma, optimism)
        elif critic == "optimistic":
            q = optimistic_q(cost, next_values, gamma, optimism, std_clip)
        else:
            q = min_q(cost, next_values, gamma)
        values = np.sum(policy * q, axis=1)
        policy = mirror_descent_step(policy, q, policy_step)

        if k % log_every == 0 or k == num_iterations:
            history.iteration.append(k)
            history.samples.append(samples)
            history.learner_samples.append(learner_count)
            history.env_steps.append(env_steps)
            history.value.append(policy_value(mdp, policy))
            history.cost_loss.append(cost_loss)
    # The last iteration's ensemble, one member per model (next_values was built from the values before its update).
    members = np.clip(cost + gamma * next_values, 0.0, 1.0 / (1.0 - gamma))
    return SoarResult(TabularPolicy(policy), TabularCritic(members), cost, history)
