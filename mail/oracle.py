"""The expert oracle: the only way the MAIL algorithms see the expert."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from envs.markov_game import MarkovGame, check_distribution_rows


class ExpertOracle:
    """Answers expert queries with one sampled action and counts every query.

    Parameters
    ----------
    policies:
        The expert profile: one row-stochastic (S, A_i) array per player.
    seed:
        Seed of the oracle's own ``numpy.random.Generator``.

    Attributes
    ----------
    queries:
        Queries answered so far, per player (n,).
    """

    def __init__(self, policies: Sequence[np.ndarray], seed: int | None = None) -> None:
        if isinstance(policies, np.ndarray) and policies.ndim == 2:
            policies = [policies]
        checked = []
        for i, policy in enumerate(policies):
            policy = np.array(policy, dtype=np.float64)
            if policy.ndim != 2:
                raise ValueError(f"expert policy of player {i} must be an (S, A_{i}) array, got shape {policy.shape}")
            check_distribution_rows(policy, f"expert policies[{i}]")
            policy.flags.writeable = False
            checked.append(policy)
        if not checked:
            raise ValueError("need at least one expert policy")
        num_states = {policy.shape[0] for policy in checked}
        if len(num_states) != 1:
            raise ValueError(f"expert policies disagree on the number of states: {sorted(num_states)}")
        self._policies = checked
        self._cumulative = [self._inverse_cdf_table(policy) for policy in checked]
        self._rng = np.random.default_rng(seed)
        self.queries = np.zeros(len(checked), dtype=np.int64)

    @staticmethod
    def _inverse_cdf_table(policy: np.ndarray) -> np.ndarray:
        # From each row's last positive entry on the bound is infinite, so a draw never
        # lands on a zero-probability action through rounding of the cumulative sum.
        cumulative = np.cumsum(policy, axis=1)
        num_actions = policy.shape[1]
        last_positive = num_actions - 1 - np.argmax(policy[:, ::-1] > 0, axis=1)
        cumulative[np.arange(num_actions)[None, :] >= last_positive[:, None]] = np.inf
        return cumulative

    @property
    def num_players(self) -> int:
        return len(self._policies)

    @property
    def num_states(self) -> int:
        return self._policies[0].shape[0]

    @property
    def num_actions(self) -> tuple[int, ...]:
        return tuple(policy.shape[1] for policy in self._policies)

    @property
    def total_queries(self) -> int:
        return int(self.queries.sum())

    def check_game(self, game: MarkovGame) -> None:
        """Raise ``ValueError`` unless this oracle's expert plays ``game``."""
        if (game.num_states, game.num_actions) != (self.num_states, self.num_actions):
            raise ValueError(
                f"the oracle's expert is for a game with {self.num_states} states and actions "
                f"{self.num_actions}, but the game has {game.num_states} states and actions {game.num_actions}"
            )

    def _check(self, player: int, states: np.ndarray) -> None:
        if not (0 <= player < self.num_players) or int(player) != player:
            raise ValueError(f"player must be in [0, {self.num_players}), got {player!r}")
        if states.size and (states.min() < 0 or states.max() >= self.num_states):
            raise ValueError(f"states must lie in [0, {self.num_states})")

    def query(self, player: int, state: int) -> int:
        """One action ``a ~ pi_E,player(. | state)``; counts one query."""
        return int(self.query_many(player, np.array([state]))[0])

    def query_many(self, player: int, states: np.ndarray) -> np.ndarray:
        """One independent action per entry of ``states``; counts ``len(states)`` queries."""
        states = np.asarray(states, dtype=np.int64).ravel()
        self._check(player, states)
        cumulative = self._cumulative[player][states]
        actions = (self._rng.random(len(states))[:, None] >= cumulative).sum(axis=1)
        self.queries[player] += len(states)
        return actions

    def __repr__(self) -> str:
        return f"ExpertOracle(num_states={self.num_states}, num_actions={self.num_actions}, queries={self.queries.tolist()})"
