"""MURMAIL: multi-agent imitation learning without a best-response oracle.

MAIL-BRO measures player i where an opponent's best response drives play;
without a best-response oracle MURMAIL measures it where an opponent's
*maximum-uncertainty response* drives play: the opponent policy ``y`` that
maximises the learner's expected squared imitation error
``E_{s ~ d^{(pi_i, y, pi_rest)}} ||pi_E,i(. | s) - pi_i(. | s)||^2``. That is an
MDP for the opponent j, with everyone else folded into its dynamics
(``P_j(s' | s, b) = E_{a_-j ~ pi_-j(s)} P(s' | s, a)``, contracting the *learner's*
action index, not the opponent's) and an unknown reward, estimated without
bias from two expert queries ``a, a' ~ pi_E,i(. | s)``::

    rhat(s) = 1{a = a'} - 2 pi_i(a | s) + ||pi_i(. | s)||^2,
    E[rhat(s)] = ||pi_E,i||^2 - 2 <pi_E,i, pi_i> + ||pi_i||^2 = ||pi_E,i(s) - pi_i(s)||^2.

``inner="ucbvi"`` solves it from simulator interaction: ``inner_episodes``
episodes of ``horizon`` steps (default ``ceil(3 / (1 - gamma))``), two queries at
every visited state, the empirical model and reward planned on optimistically
with a bonus ``bonus_scale * sqrt(log(S A T / delta) / N(s, b))`` (reward units;
the worst-case theory multiplies it by ``r_max / (1 - gamma)``, which explores
far longer). ``inner="exact"`` is the cheaper documented variant: ``pairs_per_state``
query pairs at every state estimate the reward, and the opponent MDP is solved
exactly. Then, as in MAIL-BRO, one state is sampled from the occupancy of the
response, the expert is queried there and the learner takes a mirror-descent
step. Every query, inner loop included, is counted.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numba import njit
from tqdm.auto import tqdm

from agents import tabular
from agents.sampling import categorical
from envs.markov_game import MarkovGame
from envs.validation import (
    check_choice, check_horizon, check_interval, check_non_negative, check_non_negative_int,
    check_positive_int, check_rollout_discount, check_seed,
)
from mail.loop import (
    IterateTracker, check_step_size, default_step_size, draw_opponent, horizon_multiple, log_point, log_schedule,
    mirror_descent_update, sample_with_deviation,
)
from mail.oracle import ExpertOracle
from mail.result import MailHistory, MailResult

INNER = ("ucbvi", "exact")
#: Arguments of :func:`murmail` that only one inner solver uses, with their defaults.
UCBVI_ONLY = {"inner_episodes": 5, "horizon": None, "bonus_scale": 1.0, "delta": 0.1}
EXACT_ONLY = {"pairs_per_state": 1}
#: Largest value of the squared imitation error ||p - q||_2^2 between distributions.
MAX_SQUARED_ERROR = 2.0


def squared_error_estimate(
    first: np.ndarray, second: np.ndarray, learner_rows: np.ndarray
) -> np.ndarray:
    """Unbiased estimates of ``||pi_E(. | s) - pi(. | s)||^2`` from two expert actions per state.

    Parameters
    ----------
    first, second:
        Independent expert actions at the states, shape (m,).
    learner_rows:
        The learner's ``pi(. | s)`` at those states, shape (m, A).
    """
    picked = learner_rows[np.arange(len(first)), first]
    return (first == second).astype(np.float64) - 2.0 * picked + (learner_rows**2).sum(axis=1)


@njit(cache=True)
def deviation_episode(
    joint_transitions: np.ndarray,
    packed: np.ndarray,
    num_actions: np.ndarray,
    initial: np.ndarray,
    player: int,
    player_actions: np.ndarray,
    horizon: int,
    counts: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One ``horizon``-step episode in which ``player`` follows the deterministic
    ``player_actions`` (S,) and the others their ``packed`` policies.

    Adds every observed ``(s, a_player, s')`` to ``counts`` (S, A_player, S) and
    returns the visited states (horizon,).
    """
    visited = np.empty(horizon, dtype=np.int64)
    state = categorical(initial, rng.random())
    for t in range(horizon):
        visited[t] = state
        joint = 0
        for i in range(packed.shape[0]):
            if i == player:
                action = player_actions[state]
            else:
                action = categorical(packed[i, state, : num_actions[i]], rng.random())
            joint = joint * num_actions[i] + action
        following = categorical(joint_transitions[state, joint], rng.random())
        counts[state, player_actions[state], following] += 1.0
        state = following
    return visited


@njit(cache=True)
def plan_optimistic(
    counts: np.ndarray,
    reward_sum: np.ndarray,
    reward_visits: np.ndarray,
    gamma: float,
    horizon: int,
    bonus_scale: float,
    log_term: float,
) -> np.ndarray:
    """UCBVI planning: ``horizon`` optimistic Bellman backups on the empirical model.

    Unvisited (s, b) pairs and unvisited states get the largest value, so the
    greedy policy goes there. Returns the greedy actions (S,).
    """
    num_states, num_actions, _ = counts.shape
    v_max = MAX_SQUARED_ERROR / (1.0 - gamma)
    reward = np.empty(num_states)
    for s in range(num_states):
        if reward_visits[s] > 0:
            reward[s] = min(max(reward_sum[s] / reward_visits[s], 0.0), MAX_SQUARED_ERROR)
        else:
            reward[s] = MAX_SQUARED_ERROR
    visits = counts.sum(axis=2)
    values = np.zeros(num_states)
    q = np.full((num_states, num_actions), v_max)
    for _ in range(horizon):
        for s in range(num_states):
            for b in range(num_actions):
                n = visits[s, b]
                if n == 0:
                    q[s, b] = v_max
                    continue
                expected = 0.0
                for t in range(num_states):
                    expected += counts[s, b, t] * values[t]
                bonus = bonus_scale * math.sqrt(log_term / n)
                q[s, b] = min(v_max, reward[s] + bonus + gamma * expected / n)
        for s in range(num_states):
            values[s] = q[s].max()
    greedy = np.empty(num_states, dtype=np.int64)
    for s in range(num_states):
        greedy[s] = np.argmax(q[s])
    return greedy


def default_horizon(gamma: float) -> int:
    """``ceil(3 / (1 - gamma))`` steps per inner episode, exactly (see :func:`mail.loop.horizon_multiple`):
    30 at gamma 0.9, 300 at 0.99, 15 at 0.8."""
    return horizon_multiple(gamma, 3, "the default horizon ceil(3 / (1 - gamma))")


def queries_per_iteration(
    game: MarkovGame,
    inner: str = "ucbvi",
    inner_episodes: int = 5,
    horizon: int | None = None,
    pairs_per_state: int = 1,
) -> int:
    """Expert queries MURMAIL makes per iteration, all players together (arguments as :func:`murmail`'s)."""
    check_choice(inner, "inner", INNER)
    if inner == "ucbvi":
        horizon = default_horizon(game.gamma) if horizon is None else check_horizon(horizon)
        per_player = 2 * check_positive_int(inner_episodes, "inner_episodes") * horizon + 1
    else:
        per_player = 2 * check_positive_int(pairs_per_state, "pairs_per_state") * game.num_states + 1
    return game.num_players * per_player


def _ucbvi_response(
    game: MarkovGame,
    oracle: ExpertOracle,
    packed: np.ndarray,
    learner: int,
    opponent: int,
    inner_episodes: int,
    horizon: int,
    bonus_scale: float,
    delta: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Maximum-uncertainty response of ``opponent`` by UCBVI; returns its actions and the steps taken."""
    num_states = game.num_states
    num_opponent_actions = game.num_actions[opponent]
    counts = np.zeros((num_states, num_opponent_actions, num_states))
    reward_sum = np.zeros(num_states)
    reward_visits = np.zeros(num_states)
    log_term = math.log(num_states * num_opponent_actions * inner_episodes * horizon / delta)
    actions = plan_optimistic(counts, reward_sum, reward_visits, game.gamma, horizon, bonus_scale, log_term)
    num_actions = np.asarray(game.num_actions, dtype=np.int64)
    learner_policy = packed[learner, :, : game.num_actions[learner]]
    for _ in range(inner_episodes):
        visited = deviation_episode(
            game.joint_transitions, packed, num_actions, game.initial, opponent, actions, horizon, counts, rng
        )
        first = oracle.query_many(learner, visited)
        second = oracle.query_many(learner, visited)
        estimates = squared_error_estimate(first, second, learner_policy[visited])
        np.add.at(reward_sum, visited, estimates)
        np.add.at(reward_visits, visited, 1.0)
        actions = plan_optimistic(counts, reward_sum, reward_visits, game.gamma, horizon, bonus_scale, log_term)
    return actions, inner_episodes * horizon


def _exact_response(
    game: MarkovGame,
    oracle: ExpertOracle,
    policies: list[np.ndarray],
    learner: int,
    opponent: int,
    pairs_per_state: int,
) -> np.ndarray:
    """Maximum-uncertainty response from ``pairs_per_state`` query pairs per state and an exact solve."""
    states = np.repeat(np.arange(game.num_states), pairs_per_state)
    first = oracle.query_many(learner, states)
    second = oracle.query_many(learner, states)
    estimates = squared_error_estimate(first, second, policies[learner][states])
    reward = estimates.reshape(game.num_states, pairs_per_state).mean(axis=1)
    transitions, _ = tabular.induced_mdp(game, policies, opponent)
    num_opponent_actions = game.num_actions[opponent]
    actions, _, _ = tabular.solve_mdp(transitions, np.repeat(reward[:, None], num_opponent_actions, axis=1), game.gamma)
    return actions


def murmail(
    game: MarkovGame,
    oracle: ExpertOracle,
    num_iterations: int,
    inner: Literal["ucbvi", "exact"] = "ucbvi",
    inner_episodes: int = 5,
    step_size: float | None = None,
    seed: int | None = None,
    horizon: int | None = None,
    bonus_scale: float = 1.0,
    delta: float = 0.1,
    pairs_per_state: int = 1,
    num_log_points: int = 12,
    progress: bool = False,
) -> MailResult:
    """Run MURMAIL for ``num_iterations`` iterations (see the module docstring).

    Parameters
    ----------
    game:
        The Markov game; only its simulator is used to learn (``inner="exact"``
        also solves the opponent MDP on the true model).
    oracle:
        The expert oracle; every query is counted on it.
    num_iterations:
        K outer iterations; each makes :func:`queries_per_iteration` queries.
    inner:
        ``"ucbvi"`` or ``"exact"``.
    inner_episodes:
        UCBVI episodes per response.
    step_size:
        Mirror-descent step; default ``sqrt(2 |S| log A_max / K)``.
    seed:
        Seeds the run's generator (rollouts, opponent draws, sampled iterate).
    horizon:
        Steps per UCBVI episode and planning backups; default :func:`default_horizon`
        (``ceil(3 / (1 - gamma))``, 30 at gamma 0.9); at most :data:`envs.validation.MAX_HORIZON`.
    bonus_scale, delta:
        UCBVI bonus ``bonus_scale * sqrt(log(S A T / delta) / N)`` (``bonus_scale >= 0``, ``0 < delta < 1``).
    pairs_per_state:
        Query pairs per state for ``inner="exact"``.

    ``inner_episodes``, ``horizon``, ``bonus_scale`` and ``delta`` are UCBVI's and
    ``pairs_per_state`` the exact variant's: changing one the chosen solver does not use is
    refused, never ignored.
    num_log_points, progress:
        History density and progress bar.
    """
    oracle.check_game(game)
    num_iterations = check_non_negative_int(num_iterations, "num_iterations")
    check_choice(inner, "inner", INNER)
    given = dict(inner_episodes=inner_episodes, horizon=horizon, bonus_scale=bonus_scale, delta=delta,
                 pairs_per_state=pairs_per_state)
    unused = [name for name, default in (UCBVI_ONLY if inner == "exact" else EXACT_ONLY).items()
              if given[name] != default]
    if unused:
        solver = "the exact variant" if inner == "exact" else "UCBVI"
        raise ValueError(f"{unused[0]} does not apply to inner={inner!r}: {solver} does not use it")
    inner_episodes = check_positive_int(inner_episodes, "inner_episodes")
    pairs_per_state = check_positive_int(pairs_per_state, "pairs_per_state")
    bonus_scale = check_non_negative(bonus_scale, "bonus_scale")
    delta = check_interval(delta, "delta", 0.0, 1.0, low_open=True, high_open=True)
    if game.num_players < 2:
        raise ValueError("MURMAIL needs at least two players (an opponent to respond)")
    step_size = check_step_size(step_size)
    num_log_points = check_positive_int(num_log_points, "num_log_points")
    check_rollout_discount(game.gamma, "the game's gamma")
    horizon = default_horizon(game.gamma) if horizon is None else check_horizon(horizon)
    eta = default_step_size(game, num_iterations) if step_size is None else step_size
    rng = np.random.default_rng(check_seed(seed))
    num_players = game.num_players
    policies = tabular.uniform_policies(game)
    tracker = IterateTracker(policies, rng)
    start_queries = oracle.total_queries
    simulator_steps = 0
    history = MailHistory()
    schedule = log_schedule(num_iterations, num_log_points)
    log_point(history, game, tracker, 0, 0, 0, 0)
    for k in tqdm(range(1, num_iterations + 1), disable=not progress, desc="MURMAIL", leave=False):
        packed = tabular.pack_policies(game, policies)
        updates = []
        for i in range(num_players):
            j = draw_opponent(i, num_players, rng)
            if inner == "ucbvi":
                response, steps = _ucbvi_response(
                    game, oracle, packed, i, j, inner_episodes, horizon, bonus_scale, delta, rng
                )
                simulator_steps += steps
            else:
                response = _exact_response(game, oracle, policies, i, j, pairs_per_state)
            states, steps = sample_with_deviation(game, packed, j, response, 1, rng)
            simulator_steps += steps
            updates.append((states, oracle.query_many(i, states)))
        for i, (states, actions) in enumerate(updates):
            mirror_descent_update(policies[i], states, actions, eta)
        tracker.add(policies)
        if k in schedule:
            log_point(history, game, tracker, k, oracle.total_queries - start_queries, 0, simulator_steps)
    return tracker.result(history)
