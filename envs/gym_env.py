"""A Gymnasium view of a one-player tabular Markov game (an MDP), for rollout and evaluation code."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.markov_game import MarkovGame
from envs.validation import check_positive_int


class TabularMDPEnv(gym.Env):
    """``Discrete(S)`` observations, ``Discrete(A)`` actions; episodes truncated after ``max_steps``.

    Steps go through :meth:`MarkovGame.step` of a private simulator handle
    (:meth:`MarkovGame.simulator`). The MDP itself never terminates (its discount
    is the caller's business, as in :class:`~envs.markov_game.MarkovGame`).
    """

    metadata = {"render_modes": []}

    def __init__(self, game: MarkovGame, max_steps: int = 100) -> None:
        if game.num_players != 1:
            raise ValueError(f"TabularMDPEnv needs a one-player game (an MDP), got {game.num_players} players")
        self.game = game
        self.max_steps = check_positive_int(max_steps, "max_steps")
        self.observation_space = spaces.Discrete(game.num_states)
        self.action_space = spaces.Discrete(game.num_actions[0])
        self._simulator = game.simulator()
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self._steps = 0
        return self._simulator.reset(seed=seed), {}

    def step(self, action) -> tuple[int, float, bool, bool, dict]:
        if self._simulator.state is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action).reshape(-1)
        if action.size != 1:
            raise ValueError(f"expected one action, got {action.size}")
        state, rewards = self._simulator.step([action[0]])
        self._steps += 1
        return state, float(rewards[0]), False, self._steps >= self.max_steps, {}
