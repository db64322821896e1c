"""Tabular SOAR-IL: primal-dual imitation learning with an optimistic critic ensemble.

The template, in cost form (the learner minimises a cost ``c`` in [0, 1]
that the cost player adapts to separate expert from learner occupancies)::

    c <- 0.5; pi uniform; V <- 0
    for k = 1..K:
        roll L fresh samples (s, a, s') from the learner's occupancy d^pi
        c <- clip(c - eta_c (rho_E - rho_pi), 0, 1)          # empirical occupancies
        model l <- sample l (counts N_l, P_l = N_l / sum N_l, uniform where unvisited)
        Q <- clip(c + gamma [mean_l P_l V - beta std_l P_l V], 0, 1 / (1 - gamma))
        V(s) <- sum_a pi(a | s) Q(s, a)
        pi <- pi exp(-eta Q), renormalised                    # mirror descent

Each of the L models learns from its own samples, so their disagreement
``std_l P_l V`` measures how little is known about ``(s, a)``: subtracting it
(cost form) makes unexplored actions look cheap, and the learner tries them.
``L = 1`` is the non-optimistic base method. Two comparison critics replace
the optimistic one: ``"min"`` (``min_l P_l V``) and ``"ucb"`` (the pooled model
with a count bonus ``beta / ((1 - gamma) sqrt(N(s, a)))``).

An *MDP sample* is one transition ``(s, a, s')`` with ``s`` drawn from the
learner's normalised discounted occupancy, obtained by rolling the policy
for a Geometric(1 - gamma) number of steps from the initial distribution;
``L`` samples are drawn per iteration and each feeds one model and the
learner's occupancy estimate. The history counts both the samples and the
environment steps the rollouts took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numba import njit
from tqdm.auto import tqdm

from agents import tabular
from agents.sampling import categorical
from envs.markov_game import MarkovGame

CRITICS = ("optimistic", "min", "ucb")
OCCUPANCIES = ("state-action", "state")


# ----------------------------------------------------------------- data
@dataclass(frozen=True)
class ExpertData:
    """Expert state-action samples ``(states[n], actions[n])`` from the expert's occupancy."""

    states: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.states)


def sample_expert_data(
    mdp: MarkovGame, expert_policy: np.ndarray, num_samples: int, seed: int | None = None
) -> ExpertData:
    """Draw ``num_samples`` i.i.d. pairs ``s ~ d^E``, ``a ~ pi_E(. | s)`` from the exact occupancy."""
    _check_mdp(mdp)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    (expert_policy,) = tabular.check_policies(mdp, [expert_policy])
    rng = np.random.default_rng(seed)
    d = tabular.occupancy(mdp, [expert_policy])
    states = rng.choice(mdp.num_states, size=num_samples, p=d / d.sum())
    cumulative = np.cumsum(expert_policy[states], axis=1)
    actions = (rng.random(num_samples)[:, None] > cumulative).sum(axis=1)
    actions = np.minimum(actions, mdp.num_actions[0] - 1)
    return ExpertData(states.astype(np.int64), actions.astype(np.int64))


def optimal_policy(mdp: MarkovGame) -> np.ndarray:
    """The optimal deterministic policy of an MDP under its true reward, shape (S, A)."""
    _check_mdp(mdp)
    actions, _, _ = tabular.solve_mdp(mdp.transitions, mdp.rewards[0], mdp.gamma)
    policy = np.zeros((mdp.num_states, mdp.num_actions[0]))
    policy[np.arange(mdp.num_states), actions] = 1.0
    return policy


def policy_value(mdp: MarkovGame, policy: np.ndarray) -> float:
    """Exact value ``V^pi(rho_0)`` under the MDP's true reward."""
    return float(tabular.values(mdp, [policy])[0] @ mdp.initial)


# -------------------------------------------------------------- critics
def optimistic_q(
    cost: np.ndarray, next_values: np.ndarray, gamma: float, beta: float
) -> np.ndarray:
    """SOAR's optimistic critic (cost form) from an ensemble of backups.

    Parameters
    ----------
    cost:
        Current cost ``c(s, a)``, shape (S, A).
    next_values:
        ``P_l V`` of every model, shape (L, S, A).
    gamma, beta:
        Discount and optimism strength.

    Returns
    -------
    ``clip(c + gamma (mean_l P_l V - beta std_l P_l V), 0, 1 / (1 - gamma))``
    (population standard deviation; 0 when L = 1).
    """
    backup = next_values.mean(axis=0) - beta * next_values.std(axis=0)
    return np.clip(cost + gamma * backup, 0.0, 1.0 / (1.0 - gamma))


def min_q(cost: np.ndarray, next_values: np.ndarray, gamma: float) -> np.ndarray:
    """Comparison critic: the most optimistic model, ``clip(c + gamma min_l P_l V)``."""
    return np.clip(cost + gamma * next_values.min(axis=0), 0.0, 1.0 / (1.0 - gamma))


def ucb_q(
    cost: np.ndarray, pooled_next_values: np.ndarray, counts: np.ndarray, gamma: float, beta: float
) -> np.ndarray:
    """Comparison critic: pooled model with a count bonus ``beta / ((1 - gamma) sqrt(max(N, 1)))``."""
    bonus = beta / ((1.0 - gamma) * np.sqrt(np.maximum(counts, 1.0)))
    return np.clip(cost + gamma * pooled_next_values - bonus, 0.0, 1.0 / (1.0 - gamma))


def empirical_models(counts: np.ndarray) -> np.ndarray:
    """Transition models ``N(s, a, s') / N(s, a)``, uniform where ``(s, a)`` is unvisited.

    ``counts`` has shape (..., S, A, S); so does the result.
    """
    totals = counts.sum(axis=-1, keepdims=True)
    num_states = counts.shape[-1]
    return np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / num_states)


def mirror_descent_step(policy: np.ndarray, q: np.ndarray, step: float) -> np.ndarray:
    """``pi <- pi exp(-step Q)`` renormalised per state (cost form), computed in log space."""
    logits = np.log(np.maximum(policy, 1e-300)) - step * q
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


# ------------------------------------------------------------- sampling
@njit(cache=True)
def _occupancy_samples(
    transitions: np.ndarray,
    policy: np.ndarray,
    initial: np.ndarray,
    gamma: float,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``count`` transitions (s, a, s') with s ~ d^pi, by geometric-length rollouts.

    Returns states, actions, next states and the number of environment steps taken.
    """
    num_states, num_actions, _ = transitions.shape
    states = np.empty(count, dtype=np.int64)
    actions = np.empty(count, dtype=np.int64)
    next_states = np.empty(count, dtype=np.int64)
    steps = 0
    for n in range(count):
        s = categorical(initial, rng.random())
        # P(T = t) = (1 - gamma) gamma^t makes s_T distributed as d^pi.
        length = rng.geometric(1.0 - gamma) - 1
        for _ in range(length):
            a = categorical(policy[s], rng.random())
            s = categorical(transitions[s, a], rng.random())
        a = categorical(policy[s], rng.random())
        states[n] = s
        actions[n] = a
        next_states[n] = categorical(transitions[s, a], rng.random())
        steps += length + 1
    return states, actions, next_states, steps


# ----------------------------------------------------------- algorithm
@dataclass
class SoarHistory:
    """Logged points: iteration, cumulative MDP samples and environment steps, the true
    value of the policy (exact solve, true reward) and the cost-update loss
    ``<c, rho_E - rho_pi>`` on that iteration's empirical occupancies."""

    iteration: list[int] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    env_steps: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    cost_loss: list[float] = field(default_factory=list)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in vars(self).items()}


@dataclass
class SoarResult:
    """Final ``policy`` (S, A), ``cost`` (S, A) and the :class:`SoarHistory`."""

    policy: np.ndarray
    cost: np.ndarray
    history: SoarHistory


def _check_mdp(mdp: MarkovGame) -> None:
    if not isinstance(mdp, MarkovGame) or mdp.num_players != 1:
        raise ValueError("expected a one-player MarkovGame (an MDP)")


def _empirical_occupancy(
    states: np.ndarray, actions: np.ndarray, shape: tuple[int, int], state_only: bool
) -> np.ndarray:
    occupancy = np.zeros(shape)
    np.add.at(occupancy, (states, actions), 1.0)
    occupancy /= len(states)
    if state_only:
        # Match state marginals; the cost is then the same for every action.
        occupancy = np.repeat(occupancy.sum(axis=1, keepdims=True), shape[1], axis=1)
    return occupancy


def soar_il(
    mdp: MarkovGame,
    expert_data: ExpertData,
    num_critics: int = 1,
    num_iterations: int = 100,
    cost_step: float = 0.9,
    policy_step: float = 4.0,
    beta: float = 1e-3,
    seed: int | None = 0,
    critic: Literal["optimistic", "min", "ucb"] = "optimistic",
    occupancy: Literal["state-action", "state"] = "state-action",
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
        Expert state-action samples (:func:`sample_expert_data`).
    num_critics:
        L, the number of empirical models; each takes one fresh learner sample
        per iteration. ``1`` with ``critic="optimistic"`` is the base method.
    num_iterations:
        K, the number of primal-dual iterations.
    cost_step, policy_step:
        eta_c of the cost update and eta of the mirror-descent policy update.
    beta:
        Optimism strength (std multiplier, or count-bonus scale for ``"ucb"``); >= 0.
    seed:
        Seeds the one ``numpy.random.Generator`` of the run.
    critic:
        ``"optimistic"`` (mean - beta std), ``"min"`` or ``"ucb"``.
    occupancy:
        Match ``"state-action"`` or ``"state"`` occupancies.
    log_every:
        Log the history every this many iterations (and at the last one).
    progress:
        Show a progress bar.
    """
    _check_mdp(mdp)
    num_states, num_actions = mdp.num_states, mdp.num_actions[0]
    if not isinstance(expert_data, ExpertData):
        raise ValueError("expert_data must be an ExpertData (see sample_expert_data)")
    expert_states = np.asarray(expert_data.states)
    expert_actions = np.asarray(expert_data.actions)
    if expert_states.ndim != 1 or expert_states.shape != expert_actions.shape or len(expert_states) == 0:
        raise ValueError(
            f"expert_data needs matching non-empty 1-D states and actions, got shapes "
            f"{expert_states.shape} and {expert_actions.shape}"
        )
    if expert_states.min() < 0 or expert_states.max() >= num_states:
        raise ValueError(f"expert_data states must lie in [0, {num_states}) for this MDP")
    if expert_actions.min() < 0 or expert_actions.max() >= num_actions:
        raise ValueError(f"expert_data actions must lie in [0, {num_actions}) for this MDP")
    if int(num_critics) != num_critics or num_critics < 1:
        raise ValueError(f"num_critics must be an integer >= 1, got {num_critics}")
    if num_iterations < 1 or log_every < 1:
        raise ValueError("num_iterations and log_every must be >= 1")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if cost_step <= 0 or policy_step <= 0:
        raise ValueError("cost_step and policy_step must be > 0")
    if critic not in CRITICS:
        raise ValueError(f"critic must be one of {CRITICS}, got {critic!r}")
    if occupancy not in OCCUPANCIES:
        raise ValueError(f"occupancy must be one of {OCCUPANCIES}, got {occupancy!r}")

    rng = np.random.default_rng(seed)
    gamma = mdp.gamma
    transitions = np.ascontiguousarray(mdp.transitions)
    initial = np.ascontiguousarray(mdp.initial)
    state_only = occupancy == "state"
    shape = (num_states, num_actions)
    expert_occupancy = _empirical_occupancy(expert_states, expert_actions, shape, state_only)

    cost = np.full(shape, 0.5)
    policy = np.full(shape, 1.0 / num_actions)
    values = np.zeros(num_states)
    counts = np.zeros((num_critics, num_states, num_actions, num_states))
    history = SoarHistory()
    samples = env_steps = 0
    for k in tqdm(range(1, num_iterations + 1), disable=not progress, desc=f"SOAR L={num_critics}", leave=False):
        states, actions, next_states, steps = _occupancy_samples(
            transitions, policy, initial, gamma, num_critics, rng
        )
        samples += num_critics
        env_steps += steps
        learner_occupancy = _empirical_occupancy(states, actions, shape, state_only)
        cost_loss = float(np.sum(cost * (expert_occupancy - learner_occupancy)))
        cost = np.clip(cost - cost_step * (expert_occupancy - learner_occupancy), 0.0, 1.0)

        counts[np.arange(num_critics), states, actions, next_states] += 1.0
        if critic == "ucb":
            pooled = counts.sum(axis=0)
            q = ucb_q(cost, empirical_models(pooled) @ values, pooled.sum(axis=-1), gamma, beta)
        else:
            next_values = empirical_models(counts) @ values
            q = optimistic_q(cost, next_values, gamma, beta) if critic == "optimistic" else min_q(
                cost, next_values, gamma
            )
        values = np.sum(policy * q, axis=1)
        policy = mirror_descent_step(policy, q, policy_step)

        if k % log_every == 0 or k == num_iterations:
            history.iteration.append(k)
            history.samples.append(samples)
            history.env_steps.append(env_steps)
            history.value.append(policy_value(mdp, policy))
            history.cost_loss.append(cost_loss)
    return SoarResult(policy, cost, history)
