"""A Gymnasium view of a one-player tabular Markov game (an MDP), for rollout and evaluation code."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.markov_game import MarkovGame


class TabularMDPEnv(gym.Env):
    """``Discrete(S)`` observations, ``Discrete(A)`` actions; episodes truncated after ``max_steps``.

    The MDP itself never terminates (its discount is the caller's business, as in
    :class:`~envs.markov_game.MarkovGame`).
    """

    metadata = {"render_modes": []}

    def __init__(self, game: MarkovGame, max_steps: int = 100) -> None:
        if game.num_players != 1:
            raise ValueError(f"TabularMDPEnv needs a one-player game (an MDP), got {game.num_players} players")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.game = game
        self.max_steps = int(max_steps)
        self.observation_space = spaces.Discrete(game.num_states)
        self.action_space = spaces.Discrete(game.num_actions[0])
        self._state = 0
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.game.num_states, p=self.game.initial))
        self._steps = 0
        return self._state, {}

    def step(self, action) -> tuple[int, float, bool, bool, dict]:
        action = int(np.asarray(action).reshape(-1)[0])
        if not self.action_space.contains(action):
            raise ValueError(f"action {action} is out of range [0, {self.action_space.n})")
        reward = float(self.game.rewards[0, self._state, action])
        self._state = int(self.np_random.choice(self.game.num_states, p=self.game.transitions[self._state, action]))
        self._steps += 1
        return self._state, reward, False, self._steps >= self.max_steps, {}
