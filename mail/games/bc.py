"""The non-interactive baseline: behavioural cloning on expert self-play games.

The expert plays both seats; every move it makes is one query and one logged example.
Games are played until the budget is spent (the last one may stop half-way), so BC gets
exactly as many examples as explore-then-clone gets queries. Its data show the expert
only where the expert's own play goes: a position that only a deviating opponent reaches
is never labelled, and the classifier must guess there.
"""

from __future__ import annotations

from agents.interface import Policy
from envs.validation import check_non_negative_int, check_seed
from mail.games.clone import CloneConfig, CloneResult, fit_clone
from mail.games.common import Game, GameOracle, QueryLog


def expert_self_play(game: Game, oracle: GameOracle, log: QueryLog, budget: int, seed: int = 0) -> int:
    """Play expert self-play games in PettingZoo until ``oracle`` has answered ``budget`` queries in all;
    log every move. Returns the number of games started."""
    env = game.make_env()
    games = 0
    while oracle.queries < budget:
        env.reset(seed=seed + games)
        games += 1
        for agent in env.agent_iter():
            observation, _, termination, truncation, _ = env.last()
            if termination or truncation:
                env.step(None)
                continue
            if oracle.queries >= budget:
                break
            move = oracle.query(observation)
            log.add(observation, move)
            env.step(move)
    return games


def bc(game: Game, expert: Policy, budget: int, seed: int = 0, clone: CloneConfig = CloneConfig()) -> CloneResult:
    """BC with ``budget`` expert queries: self-play data, then the masked classifier.

    Parameters
    ----------
    game:
        The game (:data:`mail.games.common.GAMES`).
    expert:
        The expert policy, reached only through a counting :class:`~mail.games.common.GameOracle`.
    budget:
        Expert queries (= logged moves).
    seed:
        Seeds the expert's sampling and the classifier.
    clone:
        Classifier settings.
    """
    budget, seed = check_non_negative_int(budget, "budget"), check_seed(seed) or 0
    oracle, log = GameOracle(expert, seed), QueryLog(game)
    games = expert_self_play(game, oracle, log, budget, seed)
    return CloneResult(fit_clone(log, clone, seed), log, oracle.queries, games, {})
