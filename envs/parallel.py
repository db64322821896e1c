"""A PettingZoo ``ParallelEnv`` view of a tabular :class:`~envs.markov_game.MarkovGame`.

Every agent observes the (fully observed) state index and acts simultaneously;
steps go through :meth:`MarkovGame.step` of a private simulator handle
(:meth:`MarkovGame.simulator`). The game is infinite-horizon, so episodes never
terminate; they are truncated after ``max_steps`` steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.markov_game import MarkovGame
from envs.validation import check_positive_int


class MarkovGameParallelEnv(ParallelEnv):
    """Dict-keyed multi-agent view of a Markov game (agents ``player_0``, ...).

    Parameters
    ----------
    game:
        The game to simulate. Its model is shared, not copied.
    max_steps:
        Truncation horizon of an episode.
    render_mode:
        ``None`` or ``"ansi"`` (a one-line text description of the state).
    """

    metadata = {"name": "markov_game_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, game: MarkovGame, max_steps: int = 100, render_mode: str | None = None):
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.game = game
        self.max_steps = check_positive_int(max_steps, "max_steps")
        self.render_mode = render_mode
        self.possible_agents = [f"player_{i}" for i in range(game.num_players)]
        self.agents: list[str] = []
        self.observation_spaces = {
            agent: spaces.Discrete(game.num_states) for agent in self.possible_agents
        }
        self.action_spaces = {
            agent: spaces.Discrete(count)
            for agent, count in zip(self.possible_agents, game.num_actions)
        }
        self._simulator = game.simulator()
        self._steps = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _observations(self) -> dict[str, int]:
        return {agent: self._simulator.state for agent in self.agents}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, int], dict[str, dict]]:
        if seed is not None:
            for offset, agent in enumerate(self.possible_agents):
                self.action_spaces[agent].seed(seed + offset + 1)
        self.agents = list(self.possible_agents)
        self._simulator.reset(seed=seed)
        self._steps = 0
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]):
        if not self.agents:
            raise RuntimeError("the episode is over: call reset()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"missing actions for agents {missing}")
        _, rewards = self._simulator.step([np.asarray(actions[agent]).item() for agent in self.agents])
        self._steps += 1
        truncated = self._steps >= self.max_steps
        agents = self.agents
        observations = self._observations()
        reward_dict = {agent: float(rewards[i]) for i, agent in enumerate(agents)}
        terminations = {agent: False for agent in agents}
        truncations = {agent: truncated for agent in agents}
        infos = {agent: {} for agent in agents}
        if truncated:
            self.agents = []
        return observations, reward_dict, terminations, truncations, infos

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return f"step {self._steps}: state {self._simulator.state}"
        return None

    def state(self) -> np.ndarray:
        return np.array([self._simulator.state])

    def close(self) -> None:
        pass
