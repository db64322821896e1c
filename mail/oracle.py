"""The expert oracle: the only way the MAIL algorithms see the expert."""

from __future__ import annotations

import numpy as np

from agents import tabular
from agents.interface import PolicyProfile
from agents.sampling import OccupancySample, cumulative_table, draw, sample_occupancy
from agents.tabular import Profile
from envs.markov_game import MarkovGame
from envs.validation import check_int, check_non_negative_int, check_seed


class ExpertOracle:
    """Answers expert queries with one sampled action and counts every query.

    Parameters
    ----------
    policies:
        The expert profile: a :class:`~agents.interface.PolicyProfile`, or one
        row-stochastic (S, A_i) array per player.
    seed:
        Seed of the oracle's own ``numpy.random.Generator``.

    Attributes
    ----------
    queries:
        Queries answered so far, per player (n,).
    """

    def __init__(self, policies: Profile, seed: int | None = None) -> None:
        self._profile = policies if isinstance(policies, PolicyProfile) else PolicyProfile(policies)
        self._policies = self._profile.arrays
        self._cumulative = [cumulative_table(policy) for policy in self._policies]
        self._rng = np.random.default_rng(check_seed(seed))
        self.queries = np.zeros(len(self._policies), dtype=np.int64)

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

    def _check(self, player: int, states: np.ndarray) -> tuple[int, np.ndarray]:
        player = check_int(player, "player", 0, self.num_players - 1)
        if states.dtype.kind not in "iu":
            if states.size and not np.all(np.isfinite(states) & (np.mod(states, 1) == 0)):
                raise ValueError(f"states must be integers, got {states!r}")
            states = states.astype(np.int64)
        if states.size and (states.min() < 0 or states.max() >= self.num_states):
            raise ValueError(f"states must lie in [0, {self.num_states})")
        return player, states

    def query(self, player: int, state: int) -> int:
        """One action ``a ~ pi_E,player(. | state)``; counts one query."""
        return int(self.query_many(player, np.array([state]))[0])

    def query_many(self, player: int, states: np.ndarray) -> np.ndarray:
        """One independent action per entry of ``states``; counts ``len(states)`` queries."""
        player, states = self._check(player, np.asarray(states).ravel())
        actions = draw(self._cumulative[player][states], self._rng.random(len(states)))
        self.queries[player] += len(states)
        return actions

    def query_all(self, state: int) -> np.ndarray:
        """One action per player at ``state``, ``a_j ~ pi_E,j(. | state)`` (n,); counts one query per player."""
        state = check_int(state, "state", 0, self.num_states - 1)
        uniforms = self._rng.random(self.num_players)
        self.queries += 1
        return np.array([draw(table[state], u) for table, u in zip(self._cumulative, uniforms)])

    def demonstrate(
        self, game: MarkovGame, num_samples: int, every_state: bool, rng: np.random.Generator
    ) -> OccupancySample:
        """The expert plays ``game`` for ``num_samples`` states of its occupancy (see
        :func:`agents.sampling.sample_occupancy`), answering one query per player at
        every step of the rollouts, skipped steps included; every answer is counted.

        Rollouts and answers both draw from ``rng``.
        """
        self.check_game(game)
        num_samples = check_non_negative_int(num_samples, "num_samples")
        sample = sample_occupancy(
            game.joint_transitions, tabular.pack_policies(game, self._policies), np.asarray(game.num_actions),
            game.initial, game.gamma, num_samples, rng, every_state=every_state, with_actions=True,
        )
        self.queries += sample.draws
        return sample

    def __repr__(self) -> str:
        return f"ExpertOracle(num_states={self.num_states}, num_actions={self.num_actions}, queries={self.queries.tolist()})"
