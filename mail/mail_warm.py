"""MAIL-WARM: explore without a reward where a deviator could go, query the expert there, clone.

Non-interactive BC only learns the expert's moves where the expert's own play goes; a
deviating player can lead the game elsewhere, and there BC guesses. MAIL-BRO and MURMAIL
fix that with gradient loops that need a best-response oracle or many queries. MAIL-WARM
(Freihaut et al., arXiv 2510.09325) needs neither: for each player ``i`` in turn (the deviator) it
explores, without any reward, the MDP ``M_i`` that player ``i`` faces when every other player
follows the expert, querying the expert at every state it visits, and in the end clones the
expert from everything it was told.

For ``k = 1..K`` and each deviator ``i`` (round robin, so every prefix of the run is
balanced over deviators), one episode of ``H`` steps from ``rho_0``:

1. plan on ``M_i``'s empirical model with a count bonus and no reward::

       u(s, a) = min(beta / sqrt(N_i(s, a)), H)
       Q(s, a) = min(u(s, a) / H + gamma P_i(s, a) . V, H),   V(s) = max_a Q(s, a)

   (``H`` sweeps of value iteration from ``V = 0``; a pair never tried has ``Q = H``, the
   largest value any pair can have, so the explorer prefers untried actions, tied only with
   pairs tried once that lead where it is just as optimistic);
2. at each visited state ``s`` query every player ``j`` once (``n`` queries), add
   ``(s, j, a_j)`` to the data; the others play their answers, the deviator plays
   ``argmax_a Q(s, a)`` (ties broken uniformly), and ``(s, a_i, s')`` updates ``N_i``.

The output is BC on all the answers, ``pi_j(a | s) = N_j(s, a) / N_j(s)``, with ``default``
where no answer was ever given. Queries are ``n`` per simulator step,
``n^2 K H`` in all; the x-axis of every comparison is that total.

Choices of ours (the paper's text was not available): the deviator's policy is greedy
in ``Q`` and replanned before every episode; ``H = ceil(1 / (1 - gamma))`` (10 at 0.9) both
as episode length and planning sweeps; ``beta = 10``, the value the authors' code used.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numba import njit
from tqdm.auto import tqdm

from agents.sampling import categorical
from envs.markov_game import MarkovGame
from envs.validation import (
    check_choice, check_discount, check_horizon, check_non_negative_int, check_positive, check_positive_int, check_seed,
)
from mail.bc import DEFAULTS, clone_counts
from mail.loop import IterateTracker, horizon_multiple, log_point, log_schedule
from mail.oracle import ExpertOracle
from mail.result import MailHistory, MailResult


def default_horizon(gamma: float) -> int:
    """``ceil(1 / (1 - gamma))`` steps, exactly (10 at gamma 0.9, 100 at 0.99)."""
    return horizon_multiple(gamma, 1, "the default horizon ceil(1 / (1 - gamma))")


def queries_per_episode_round(game: MarkovGame, horizon: int | None = None) -> int:
    """Expert queries of one episode per deviator, all players together: ``n^2 H``."""
    horizon = default_horizon(game.gamma) if horizon is None else check_horizon(horizon)
    return game.num_players**2 * horizon


def exploration_q(counts: np.ndarray, bonus_scale: float, gamma: float, horizon: int) -> np.ndarray:
    """Optimistic reward-free Q values (S, A) of the empirical model of transition ``counts`` (S, A, S).

    ``H`` sweeps of ``Q(s, a) = min(u(s, a) / H + gamma P(s, a) . V, H)`` from ``V = 0``, with
    ``u = min(bonus_scale / sqrt(N(s, a)), H)``; pairs never tried get ``Q = H``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[0] != counts.shape[2] or 0 in counts.shape:
        raise ValueError(f"counts must be transition counts (S, A, S), got shape {counts.shape}")
    if not np.all(np.isfinite(counts) & (counts >= 0)):
        raise ValueError("counts must be finite and non-negative")
    return _exploration_q(np.ascontiguousarray(counts), check_positive(bonus_scale, "bonus_scale"),
                          check_discount(gamma), check_horizon(horizon))


@njit(cache=True)
def _exploration_q(counts: np.ndarray, bonus_scale: float, gamma: float, horizon: int) -> np.ndarray:
    num_states, num_actions, _ = counts.shape
    visits = counts.sum(axis=2)
    q = np.full((num_states, num_actions), float(horizon))
    values = np.zeros(num_states)
    for _ in range(horizon):
        for s in range(num_states):
            for a in range(num_actions):
                n = visits[s, a]
                if n > 0:
                    expected = 0.0
                    for following in range(num_states):
                        if counts[s, a, following] > 0:
                            expected += counts[s, a, following] * values[following]
                    bonus = min(bonus_scale / np.sqrt(n), horizon) / horizon
                    q[s, a] = min(bonus + gamma * expected / n, horizon)
        for s in range(num_states):
            values[s] = q[s].max()
    return q


def mail_warm(
    game: MarkovGame,
    oracle: ExpertOracle,
    num_episodes: int,
    horizon: int | None = None,
    bonus_scale: float = 10.0,
    default: Literal["uniform", "first"] = "uniform",
    seed: int | None = None,
    num_log_points: int = 12,
    progress: bool = False,
) -> MailResult:
    """Run MAIL-WARM: ``num_episodes`` exploration episodes per deviator, then BC on the answers.

    Parameters
    ----------
    game:
        The Markov game (its simulator is what the explorer interacts with; no solver is used).
    oracle:
        The expert oracle; every query is counted on it (``n`` per simulator step).
    num_episodes:
        K, episodes per deviator (a non-negative integer); the run makes ``n^2 K H`` queries.
    horizon:
        H, steps per episode and value-iteration sweeps per plan; default :func:`default_horizon`.
    bonus_scale:
        beta of the count bonus ``min(beta / sqrt(N), H)`` (> 0).
    default:
        The cloned policy at states no query was made at: ``"uniform"`` or ``"first"`` action.
    seed:
        Seeds the run's ``numpy.random.Generator`` (episodes and the explorer's tie-breaking).
    num_log_points:
        About this many log-spaced history points (in episodes per deviator).
    progress:
        Show a progress bar.

    Returns
    -------
    MailResult
        The cloned profile as every reported policy (there is one output, no iterates); the
        history logs the exact Nash gap of the clone of the answers so far.
    """
    oracle.check_game(game)
    num_episodes = check_non_negative_int(num_episodes, "num_episodes")
    horizon = default_horizon(game.gamma) if horizon is None else check_horizon(horizon)
    bonus_scale = check_positive(bonus_scale, "bonus_scale")
    check_choice(default, "default", DEFAULTS)
    num_log_points = check_positive_int(num_log_points, "num_log_points")
    rng = np.random.default_rng(check_seed(seed))
    num_players, num_states = game.num_players, game.num_states
    transitions = game.joint_transitions
    strides = np.cumprod((1, *game.num_actions[:0:-1]))[::-1]  # joint index = sum_j a_j * stride_j
    answers = [np.zeros((num_states, a)) for a in game.num_actions]
    model_counts = [np.zeros((num_states, a, num_states)) for a in game.num_actions]
    start_queries = oracle.total_queries
    simulator_steps = 0
    history = MailHistory()
    schedule = log_schedule(num_episodes, num_log_points)

    def clone() -> IterateTracker:
        return IterateTracker([clone_counts(counts, default) for counts in answers], rng)

    log_point(history, game, clone(), 0, 0, 0, 0)
    for k in tqdm(range(1, num_episodes + 1), disable=not progress, desc="MAIL-WARM", leave=False):
        for i in range(num_players):
            q = _exploration_q(model_counts[i], bonus_scale, game.gamma, horizon)
            state = int(rng.choice(num_states, p=game.initial))
            for _ in range(horizon):
                joint = oracle.query_all(state)
                answers_here = joint.copy()
                best = np.flatnonzero(q[state] >= q[state].max() - 1e-12)
                joint[i] = best[rng.integers(len(best))] if len(best) > 1 else best[0]
                following = categorical(transitions[state, joint @ strides], rng.random())
                for j in range(num_players):
                    answers[j][state, answers_here[j]] += 1.0
                model_counts[i][state, joint[i], following] += 1.0
                state = following
            simulator_steps += horizon
        if k in schedule:
            log_point(history, game, clone(), k, oracle.total_queries - start_queries, 0, simulator_steps)
    return clone().result(history)
