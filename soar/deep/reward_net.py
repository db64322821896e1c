"""The learned reward ``r_theta(s)`` or ``r_theta(s, a)`` every cost update trains, and the methods' protocol.

Absorbing state. An episode that *terminates* (the hopper falls, the pendulum drops)
leaves the learner in a state the environment no longer simulates. With the usual
convention its value is 0, which makes the level of the learned reward decide the
behaviour: the occupancy-matching losses below do not see a constant added to ``r``
(it cancels between expert and learner), so that level is an accident of the
initialisation, and a negative one teaches the learner to end episodes at once, a
positive one to merely survive (the termination bias of adversarial imitation,
Kostrikov et al., 2019). With ``absorbing=True`` the reward network also learns
``r_abs``, the reward of an absorbing state that a terminated episode occupies for the
rest of the horizon: the cost update counts those steps in the learner's (and the
expert's) occupancy, and the critics bootstrap a terminal transition with the
absorbing state's value ``r_abs / (1 - gamma)`` instead of 0. A learner that ends
episodes the expert did not end is then charged for it like for any other state the
expert avoids. (CSIL's reward is fixed by its BC policy; its absorbing state sits at the
reward's floor, :mod:`soar.deep.csil`.)
"""

from __future__ import annotations

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
    absorbing:
        Also learn the reward of the absorbing state (see the module docstring).
    """

    def __init__(self, obs_dim: int, act_dim: int, state_only: bool, hidden: tuple[int, ...] = (64, 64),
                 clip: float = REWARD_CLIP, absorbing: bool = False) -> None:
        super().__init__()
        self.state_only = bool(state_only)
        self.clip = float(clip)
        self.body = mlp(obs_dim + (0 if state_only else act_dim), tuple(hidden), 1)
        self.absorbing = nn.Parameter(torch.zeros(())) if absorbing else None

    def forward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        inputs = obs if self.state_only else torch.cat([obs, actions], dim=-1)
        return self.body(inputs).squeeze(-1).clamp(-self.clip, self.clip)

    def absorbing_reward(self) -> torch.Tensor:
        """``r_abs``, clamped like every output (0 without an absorbing state)."""
        if self.absorbing is None:
            return torch.zeros((), device=next(self.parameters()).device)
        return self.absorbing.clamp(-self.clip, self.clip)

    def mean_reward(self, obs: torch.Tensor, actions: torch.Tensor | None, absorbing_steps: int) -> torch.Tensor:
        """Mean reward over the given pairs and ``absorbing_steps`` steps in the absorbing state."""
        if absorbing_steps == 0:
            return self(obs, actions).mean()
        total = self(obs, actions).sum() + absorbing_steps * self.absorbing_reward()
        return total / (len(obs) + absorbing_steps)


class CostUpdate:
    """What the loop needs of an imitation method on SAC; each method module subclasses it.

    ``reward`` relabels every critic minibatch (no gradient); ``update`` is one cost
    (reward) update from the expert's transitions and the learner's recent episodes and
    returns its metrics. The hooks below default to doing nothing: ``sac_options`` adds
    constructor arguments of :class:`agents.sac.SAC` (SQIL's expert rows, OPT-AIL's critic
    optimism), ``initialise`` may change the fresh agent (CSIL sets the actor), ``attach``
    gives the method the agent, fresh or resumed (AIRL reads its policy).
    """

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        raise NotImplementedError

    def sac_options(self, expert: dict[str, torch.Tensor]) -> dict:
        """Extra :class:`agents.sac.SAC` arguments (none by default)."""
        return {}

    def initialise(self, agent) -> None:
        """Change the fresh agent before learning (nothing by default: the actor starts from scratch)."""

    def attach(self, agent) -> None:
        """Called with the agent, fresh or resumed, before learning (nothing by default)."""

    def absorbing_reward(self) -> float:
        """The reward of the absorbing state (0 by default: no absorbing state)."""
        return 0.0

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore by default."""


def absorbing_steps(episodes: list[dict[str, np.ndarray]], horizon: int) -> int:
    """Steps the terminated ``episodes`` spend in the absorbing state: ``horizon`` minus their length, summed.

    An episode terminated if its last ``terminated`` flag is set (a time limit truncates, it
    does not terminate: nothing is absorbed after it).
    """
    return sum(max(horizon - len(episode["obs"]), 0) for episode in episodes
               if len(episode["obs"]) and bool(episode["terminated"][-1]))


def stack_episodes(episodes: list[dict[str, np.ndarray]], key: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """One tensor of ``key`` over all ``episodes`` (the learner's recent episodes), on ``device``."""
    return torch.from_numpy(np.concatenate([episode[key] for episode in episodes]).astype(np.float32)).to(device)
