import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

# Tiny networks gain nothing from a second thread, and a busy second core makes torch's
# thread pool wait on it: one thread keeps the suite fast and its timings steady.
torch.set_num_threads(1)

from envs import games


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_profile(game, rng, concentration=1.0):
    """Random full-support policies for every player."""
    return [rng.dirichlet(np.full(a, concentration), size=game.num_states) for a in game.num_actions]


@pytest.fixture
def small_games():
    """Tiny games of every supported shape, for brute-force checks."""
    return [
        games.random_game(3, 2, num_players=1, zero_sum=False, seed=0, gamma=0.8),
        games.random_game(3, (2, 3), num_players=2, zero_sum=True, seed=1, gamma=0.9),
        games.random_game(2, (2, 2), num_players=2, zero_sum=False, seed=2, gamma=0.7),
        games.random_game(2, (2, 2, 2), num_players=3, zero_sum=False, seed=3, gamma=0.6),
    ]


class RewardIsAction(gym.Env):
    """Three steps; the reward is the action, so a constant policy's return is 3 x its action."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), float(action[0]), False, self.t >= 3, {}


class ConstantPolicy:
    def __init__(self, value):
        self.value = float(value)

    def act(self, obs, deterministic=False, rng=None):
        return np.array([self.value], np.float32)

    def predict(self, obs, deterministic=False):
        return self.act(obs), None

    def log_prob(self, obs, actions):
        return np.zeros(len(actions))

    def save(self, path):
        Path(path).write_text(json.dumps(self.value))
