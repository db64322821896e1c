"""ML-IRL (maximum-likelihood / maximum-entropy IRL) cost update, state-only or state-action.

The learned reward ``r_theta`` should be high where the expert goes and low where the
learner goes; one Adam step per update on

    L(theta) = E_learner[r_theta] - E_expert[r_theta]        (minimised)

over all states (state-action pairs for ``ml-irl-sa``) of the learner's recent episodes
against all of the expert's, each terminated episode counted with its steps in the
absorbing state when ``absorbing`` (:mod:`soar.deep.reward_net`). Reference settings: MLP 64-64, Adam lr 1e-4, weight decay
1e-3, output clamped to +-10. The SAC learner maximises ``r_theta``; its critics never
see the environment's reward.
"""

from __future__ import annotations

import numpy as np
import torch

from soar.deep.reward_net import CostUpdate, RewardNet, absorbing_steps, stack_episodes


class MLIRL(CostUpdate):
    """ML-IRL with a state-only (``state_only=True``, method ``ml-irl``) or state-action reward (``ml-irl-sa``).

    Parameters
    ----------
    obs_dim, act_dim:
        Sizes of observations and actions.
    state_only:
        Reward of the state alone.
    hidden, learning_rate, weight_decay:
        Reward network and its Adam optimiser.
    reward_steps:
        Adam steps per update, all on the same samples (the reference: 1).
    absorbing, horizon:
        Learn the absorbing state's reward; a terminated episode occupies it for the rest
        of ``horizon`` steps.
    device:
        Where the network lives (the SAC learner's device).
    """

    def __init__(self, obs_dim: int, act_dim: int, state_only: bool, hidden: tuple[int, ...] = (64, 64),
                 learning_rate: float = 1e-4, weight_decay: float = 1e-3, reward_steps: int = 1,
                 absorbing: bool = False, horizon: int = 1000, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.reward_steps = int(reward_steps)
        self.horizon = int(horizon)
        self.net = RewardNet(obs_dim, act_dim, state_only, hidden, absorbing=absorbing).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate, weight_decay=weight_decay)

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(obs, actions)

    def absorbing_reward(self) -> float:
        """The learned reward of the absorbing state (0 without one)."""
        with torch.no_grad():
            return float(self.net.absorbing_reward())

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        """``reward_steps`` Adam steps on ``L``; the metrics are those before the first step."""
        learner_obs = stack_episodes(learner, "obs", self.device)
        learner_actions = stack_episodes(learner, "actions", self.device)
        absorbed = absorbing_steps(learner, self.horizon) if self.net.absorbing is not None else 0
        expert_absorbed = int(expert.get("absorbing_steps", 0)) if self.net.absorbing is not None else 0
        metrics = {}
        for _ in range(self.reward_steps):
            learner_reward = self.net.mean_reward(learner_obs, learner_actions, absorbed)
            expert_reward = self.net.mean_reward(expert["obs"], expert["actions"], expert_absorbed)
            loss = learner_reward - expert_reward
            metrics = metrics or {"cost_loss": loss.item(), "expert_reward": expert_reward.item(),
                                  "learner_reward": learner_reward.item(),
                                  **({"absorbing_reward": self.net.absorbing_reward().item(),
                                      "learner_absorbed_fraction": absorbed / (len(learner_obs) + absorbed)}
                                     if self.net.absorbing is not None else {})}
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return metrics

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
