"""GAIL on SAC: a state-action discriminator's reward, refitted at every cost update.

Each update trains the discriminator ``D(s, a) = sigmoid(l(s, a))`` to tell the expert's
pairs (label 1) from those of the learner's recent episodes (label 0), by binary
cross-entropy on balanced minibatches (:mod:`soar.deep.discriminator`). The critics then
learn from

    r(s, a) = -log(1 - D(s, a)) = softplus(l(s, a))        (>= 0, clamped at REWARD_CLIP)

the form the imitation library and most MuJoCo GAIL results use. It is positive
everywhere, so a terminated episode (value 0 after it) forfeits reward: GAIL's survival
bias, which suits tasks where the expert never falls (Hopper, Walker2d) and is the reason
this method has no absorbing state. Off-policy (SAC instead of TRPO/PPO), the reward
relabels old transitions too, so it is always the current discriminator's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from soar.deep.discriminator import learner_samples, train_discriminator
from soar.deep.reward_net import REWARD_CLIP, CostUpdate, mlp


class GAIL(CostUpdate):
    """GAIL's discriminator reward for SAC.

    Parameters
    ----------
    obs_dim, act_dim:
        Sizes of observations and actions.
    hidden, learning_rate, weight_decay:
        Discriminator widths and its Adam optimiser.
    discriminator_steps, discriminator_batch:
        Adam steps per cost update, and expert (and learner) rows in each minibatch.
    seed:
        Seeds the minibatches.
    device:
        Where the network lives (the SAC learner's device).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64), learning_rate: float = 1e-3,
                 weight_decay: float = 0.0, discriminator_steps: int = 100, discriminator_batch: int = 256,
                 seed: int = 0, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.net = mlp(obs_dim + act_dim, tuple(hidden), 1).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        self.steps, self.batch = int(discriminator_steps), int(discriminator_batch)
        self.rng = np.random.default_rng(seed)

    def logit(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``l(s, a)``, estimating ``log(rho_E(s, a) / rho_learner(s, a))``."""
        return self.net(torch.cat([obs, actions], dim=-1)).squeeze(-1)

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return nn.functional.softplus(self.logit(obs, actions)).clamp(max=REWARD_CLIP)

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        learner_batch = learner_samples(learner, self.device)
        metrics = train_discriminator(lambda x: self.logit(x["obs"], x["actions"]), self.optimizer,
                                      {"obs": expert["obs"], "actions": expert["actions"]},
                                      {"obs": learner_batch["obs"], "actions": learner_batch["actions"]},
                                      self.steps, self.batch, self.rng)
        expert_reward = self.reward(expert["obs"], expert["actions"], expert["next_obs"]).mean().item()
        learner_reward = self.reward(learner_batch["obs"], learner_batch["actions"], learner_batch["next_obs"]).mean()
        return {**metrics, "expert_reward": expert_reward, "learner_reward": learner_reward.item()}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
