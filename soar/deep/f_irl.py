"""f-IRL with the reverse KL divergence: a state-only reward matched to the expert's state density.

Each update first trains a discriminator ``D(s)`` (expert states 1, learner states 0,
binary cross-entropy, ``discriminator_steps`` Adam steps on minibatches); its logit
estimates ``log(rho_E(s) / rho_theta(s))``. The reward then takes one Adam step along
f-IRL's gradient, the covariance over the learner's recent episodes ``tau`` of::

    A(tau) = sum_t -logit(s_t)          (reverse KL's h_f, up to a constant)
    B(tau) = sum_t r_theta(s_t)

divided by the horizon ``T`` (the longest episode): minimising the surrogate
``mean((A - mean A) B) / T`` raises the reward on episodes that look like the expert's.

With ``absorbing`` (:mod:`soar.deep.reward_net`), a terminated episode continues in the
absorbing state up to ``horizon`` (which is then ``T``): its ``B`` adds those steps times
``r_abs`` and its ``A`` those steps times minus the absorbing state's log density ratio,
estimated from the counts of absorbed steps (with one pseudo-count each) since a single
point needs no discriminator, and corrected for the discriminator seeing only the
non-absorbed states.

When the expert's demonstrations never terminate, the absorbing state's reward is not learned
but put at the reward's floor, ``-REWARD_CLIP`` (as CSIL's is): the covariance above is blind to
a common shift of the reward, so while no learner episode terminates (or all end alike) ``r_abs``
gets no signal and the state rewards drift away from it; on InvertedDoublePendulum-v5 they
drifted below it and the learner, having reached the expert, learned to fall at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from soar.deep.discriminator import train_discriminator
from soar.deep.reward_net import REWARD_CLIP, CostUpdate, RewardNet, absorbing_steps, mlp, stack_episodes


class FIRL(CostUpdate):
    """f-IRL (reverse KL) with a state-only reward and a state discriminator.

    Parameters
    ----------
    obs_dim, act_dim:
        Sizes of observations and actions.
    hidden, learning_rate, weight_decay:
        Reward network (and discriminator) widths and the reward's Adam optimiser.
    discriminator_steps, discriminator_batch, discriminator_lr:
        Discriminator training per update.
    reward_steps:
        Adam steps of the reward per update along the same covariance (the reference: 1).
    absorbing, horizon:
        Learn the absorbing state's reward; a terminated episode occupies it for the rest
        of ``horizon`` steps.
    expert_terminates:
        Whether any expert demonstration terminates; if not, the absorbing state's reward is
        the floor ``-REWARD_CLIP`` instead of learned (see the module docstring).
    seed:
        Seeds the discriminator's minibatches.
    device:
        Where the networks live (the SAC learner's device).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64), learning_rate: float = 1e-4,
                 weight_decay: float = 1e-3, discriminator_steps: int = 300, discriminator_batch: int = 256,
                 discriminator_lr: float = 3e-4, seed: int = 0, reward_steps: int = 1, absorbing: bool = False,
                 horizon: int = 1000, expert_terminates: bool = True, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.absorbing_at_floor = bool(absorbing) and not expert_terminates
        self.reward_steps = int(reward_steps)
        self.horizon = int(horizon)
        self.net = RewardNet(obs_dim, act_dim, state_only=True, hidden=hidden, absorbing=absorbing).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        self.discriminator = mlp(obs_dim, tuple(hidden), 1).to(self.device)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=discriminator_lr)
        self.discriminator_steps, self.discriminator_batch = int(discriminator_steps), int(discriminator_batch)
        self.rng = np.random.default_rng(seed)

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(obs)

    def logit(self, obs: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit, an estimate of ``log(rho_E(s) / rho_learner(s))``."""
        return self.discriminator(obs).squeeze(-1)

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        learner_obs = stack_episodes(learner, "obs", self.device)
        discrimination = train_discriminator(lambda x: self.logit(x["obs"]), self.discriminator_optimizer,
                                             {"obs": expert["obs"]}, {"obs": learner_obs}, self.discriminator_steps,
                                             self.discriminator_batch, self.rng)
        states = [stack_episodes([episode], "obs", self.device) for episode in learner]
        if self.net.absorbing is None:
            horizon, absorbed = max(len(episode["obs"]) for episode in learner), torch.zeros(len(learner))
            absorbing_logit = 0.0
        else:
            horizon = self.horizon
            absorbed = torch.tensor([absorbing_steps([episode], horizon) for episode in learner], dtype=torch.float32)
            expert_absorbed, learner_absorbed = int(expert.get("absorbing_steps", 0)), absorbed.sum().item()
            expert_share = (expert_absorbed + 1) / (len(expert["obs"]) + expert_absorbed + 1)
            learner_share = (learner_absorbed + 1) / (len(learner_obs) + learner_absorbed + 1)
            # The discriminator compares the non-absorbed states only: its logit misses log((1 - p_E) / (1 - p_L))
            # on each of an episode's (horizon - absorbed) such steps; with every episode padded to the horizon
            # that is the same as taking it off the absorbing state's log ratio.
            absorbing_logit = (math.log(expert_share / learner_share)
                               - math.log((1 - expert_share) / (1 - learner_share)))
        absorbed = absorbed.to(self.device)
        with torch.no_grad():
            advantage = torch.stack([-self.logit(obs).sum() for obs in states]) - absorbed * absorbing_logit
        first_loss = None
        for _ in range(self.reward_steps):
            returns = torch.stack([self.net(obs).sum() for obs in states])
            if self.net.absorbing is not None and not self.absorbing_at_floor:
                returns = returns + absorbed * self.net.absorbing_reward()
            loss = ((advantage - advantage.mean()) * returns).mean() / horizon
            first_loss = loss.item() if first_loss is None else first_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            expert_reward = self.net(expert["obs"]).mean().item()
            learner_reward = self.net(learner_obs).mean().item()
        absorbing = {} if self.net.absorbing is None else {"absorbing_reward": self.absorbing_reward()}
        return {"cost_loss": first_loss, **discrimination,
                "expert_reward": expert_reward, "learner_reward": learner_reward, **absorbing}

    def absorbing_reward(self) -> float:
        """The reward of the absorbing state: learned, or the floor when the expert never terminates (0 without one)."""
        if self.absorbing_at_floor:
            return -REWARD_CLIP
        with torch.no_grad():
            return float(self.net.absorbing_reward())

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "discriminator": self.discriminator.state_dict(),
                "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        self.rng.bit_generator.state = state["rng"]
