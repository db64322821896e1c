"""MAIL-BRO: multi-agent imitation learning with a best-response oracle.

Every iteration, for each player i: an opponent j != i is drawn uniformly, j's
exact best response ``br_j`` to the current profile is computed (one oracle
call), a state is sampled from the occupancy of ``(br_j, pi_-j)`` by a
simulator rollout, the expert is queried there for player i, and ``pi_i`` takes
a mirror-descent step on the squared imitation error at that state::

    g(s, .) = pi_i(. | s) - onehot(a),   pi_i(. | s) <- pi_i(. | s) exp(-eta g(s, .)), renormalised

All players update from the same iterate (simultaneous updates). Measuring
player i where an opponent's best response drives play is what the
performance-difference bound on the Nash gap asks for:
``NashGap <= (1 - gamma)^-2 sum_i E_{d^{(br_j, pi_-j)}} ||pi_i - pi_E,i||_1``.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from agents import tabular
from agents.sampling import sample_occupancy
from envs.markov_game import MarkovGame
from mail.loop import (
    IterateTracker, check_step_size, default_step_size, draw_opponent, log_point, log_schedule,
    mirror_descent_update, sample_with_deviation,
)
from envs.validation import (
    check_non_negative_int, check_positive_int, check_rollout_discount, check_seed,
)
from mail.oracle import ExpertOracle
from mail.result import MailHistory, MailResult


def mail_bro(
    game: MarkovGame,
    oracle: ExpertOracle,
    num_iterations: int,
    step_size: float | None = None,
    batch_size: int = 1,
    seed: int | None = None,
    num_log_points: int = 12,
    progress: bool = False,
) -> MailResult:
    """Run MAIL-BRO for ``num_iterations`` iterations (``n * batch_size`` expert queries each).

    Parameters
    ----------
    game:
        The Markov game (its model serves the best-response oracle and the simulator).
    oracle:
        The expert oracle; queries are counted on it.
    num_iterations:
        K, a non-negative integer.
    step_size:
        Mirror-descent step eta; default :func:`default_step_size`.
    batch_size:
        B states (and queries) per player per iteration, gradients averaged.
    seed:
        Seeds the run's ``numpy.random.Generator`` (rollouts, opponent draws, the sampled iterate).
    num_log_points:
        About this many log-spaced history points (Nash gaps are exact solves).
    progress:
        Show a progress bar.
    """
    oracle.check_game(game)
    num_iterations = check_non_negative_int(num_iterations, "num_iterations")
    batch_size = check_positive_int(batch_size, "batch_size")
    step_size = check_step_size(step_size)
    num_log_points = check_positive_int(num_log_points, "num_log_points")
    check_rollout_discount(game.gamma, "the game's gamma")
    eta = default_step_size(game, num_iterations) if step_size is None else step_size
    rng = np.random.default_rng(check_seed(seed))
    num_players = game.num_players
    policies = tabular.uniform_policies(game)
    tracker = IterateTracker(policies, rng)
    table = tabular.joint_action_table(game)
    num_actions = np.asarray(game.num_actions, dtype=np.int64)
    rewards = [np.ascontiguousarray(game.joint_rewards[i]) for i in range(num_players)]
    start_queries = oracle.total_queries
    oracle_calls = simulator_steps = 0
    history = MailHistory()
    schedule = log_schedule(num_iterations, num_log_points)
    log_point(history, game, tracker, 0, 0, 0, 0)
    for k in tqdm(range(1, num_iterations + 1), disable=not progress, desc="MAIL-BRO", leave=False):
        packed = tabular.pack_policies(game, policies)
        updates = []
        for i in range(num_players):
            if num_players == 1:
                sample = sample_occupancy(
                    game.joint_transitions, packed, num_actions, game.initial, game.gamma, batch_size, rng
                )
                states, steps = sample.states, sample.steps
            else:
                j = draw_opponent(i, num_players, rng)
                br_actions, _ = tabular.best_response_kernel(
                    game.joint_transitions, rewards[j], packed, table, j, game.gamma
                )
                oracle_calls += 1
                states, steps = sample_with_deviation(game, packed, j, br_actions, batch_size, rng)
            simulator_steps += steps
            updates.append((states, oracle.query_many(i, states)))
        for i, (states, actions) in enumerate(updates):
            mirror_descent_update(policies[i], states, actions, eta)
        tracker.add(policies)
        if k in schedule:
            log_point(history, game, tracker, k, oracle.total_queries - start_queries, oracle_calls, simulator_steps)
    return tracker.result(history)
