"""The learned reward ``r_theta(s)`` or ``r_theta(s, a)`` every cost update trains, and the methods' protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

#: Learned rewards are clamped to [-REWARD_CLIP, REWARD_CLIP] (as the reference settings do).
REWARD_CLIP = 10.0


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


class RewardNet(nn.Module):
    """An MLP reward of the state (``state_only``) or of the state-action pair, clamped to +-``clip``.

    Parameters
    ----------
    obs_dim, act_dim:
        Sizes of observations and actions.
    state_only:
        Whether the reward ignores the action.
    hidden:
        Hidden widths (the reference settings: 64-64).
    clip:
        Bound on the output.
    """

    def __init__(self, obs_dim: int, act_dim: int, state_only: bool, hidden: tuple[int, ...] = (64, 64),
                 clip: float = REWARD_CLIP) -> None:
        super().__init__()
        self.state_only = bool(state_only)
        self.clip = float(clip)
        self.body = mlp(obs_dim + (0 if state_only else act_dim), tuple(hidden), 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        inputs = obs if self.state_only else torch.cat([obs, actions], dim=-1)
        return self.body(inputs).squeeze(-1).clamp(-self.clip, self.clip)


class CostUpdate(Protocol):
    """What the loop needs of an imitation method (each method module implements it).

    ``reward`` relabels every critic minibatch (no gradient); ``update`` is one cost
    (reward) update from the expert's transitions and the learner's recent episodes and
    returns its metrics; ``initialise`` may change the fresh agent (CSIL sets the actor).
    """

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor: ...

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]: ...

    def initialise(self, agent) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def stack_episodes(episodes: list[dict[str, np.ndarray]], key: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """One tensor of ``key`` over all ``episodes`` (the learner's recent episodes), on ``device``."""
    return torch.from_numpy(np.concatenate([episode[key] for episode in episodes]).astype(np.float32)).to(device)
