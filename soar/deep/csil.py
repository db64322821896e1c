"""CSIL (coherent soft imitation learning): a reward derived from behavioural cloning.

Fit a tanh-Gaussian policy ``q(a | s)`` to the expert's state-action pairs by maximum
likelihood, then use the reward

    r(s, a) = alpha (log q(a | s) - log p0(a)),     p0 uniform on the action box,

for which ``q`` itself is the soft-optimal policy at entropy coefficient ``alpha``
(hence "coherent"); the SAC actor starts from ``q``. The reward stays fixed: ``update``
only reports how it separates expert from learner pairs.

With ``absorbing`` (:mod:`soar.deep.reward_net`), a terminated episode continues in an
absorbing state whose reward is the reward's floor, ``-REWARD_CLIP``: the expert never
goes there, so ``q``'s log-density ratio there is as low as the clamped reward can say.
Without it, the reward of the learner's own off-expert actions (often negative) makes
ending an episode early the better deal.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.networks import TanhGaussianActor
from soar.deep.bc import maximum_likelihood
from soar.deep.reward_net import REWARD_CLIP, CostUpdate, stack_episodes


class CSIL(CostUpdate):
    """CSIL's BC-derived reward and actor initialisation.

    Parameters
    ----------
    obs_dim, act_dim:
        Sizes of observations and actions.
    low, high:
        The action box.
    alpha:
        SAC's (fixed) entropy coefficient, which the reward is scaled by.
    hidden:
        Widths of ``q`` (those of the SAC actor, which starts as a copy of it).
    bc_steps, bc_batch, bc_lr:
        Maximum-likelihood fit of ``q`` (Adam minibatch steps).
    seed:
        Seeds the initialisation and the minibatches.
    absorbing:
        Terminated episodes continue in an absorbing state at the reward's floor.
    device:
        Where ``q`` lives (the SAC learner's device).
    """

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray, alpha: float,
                 hidden: tuple[int, ...] = (256, 256), bc_steps: int = 10_000, bc_batch: int = 256,
                 bc_lr: float = 1e-3, seed: int = 0, absorbing: bool = False, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.absorbing = bool(absorbing)
        self.low = torch.as_tensor(low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(high, dtype=torch.float32, device=self.device)
        self.alpha = float(alpha)
        self.log_prior = -float(torch.log(self.high - self.low).sum())
        torch.manual_seed(seed)
        self.policy = TanhGaussianActor(obs_dim, act_dim, tuple(hidden), self.low, self.high).to(self.device)
        self.bc_steps, self.bc_batch, self.bc_lr = int(bc_steps), int(bc_batch), float(bc_lr)
        self.rng = np.random.default_rng(seed)

    def fit(self, obs: torch.Tensor, actions: torch.Tensor) -> float:
        """Maximum likelihood of the expert's pairs; returns the final mean negative log-likelihood."""
        optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.bc_lr)
        return maximum_likelihood(self.policy, optimizer, obs, actions, self.bc_steps, self.bc_batch, self.rng,
                                  where="csil BC fit")

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            log_q = self.policy.log_prob(obs, actions)
            return (self.alpha * (log_q - self.log_prior)).clamp(-REWARD_CLIP, REWARD_CLIP)

    def absorbing_reward(self) -> float:
        """The absorbing state's reward: the floor ``-REWARD_CLIP`` (0 without an absorbing state)."""
        return -REWARD_CLIP if self.absorbing else 0.0

    def initialise(self, agent) -> None:
        """The SAC actor starts as ``q`` (same architecture)."""
        agent.actor.load_state_dict(self.policy.state_dict())

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        expert_reward = self.reward(expert["obs"], expert["actions"], expert["next_obs"]).mean().item()
        learner_obs = stack_episodes(learner, "obs", self.device)
        learner_actions = stack_episodes(learner, "actions", self.device)
        learner_reward = self.reward(learner_obs, learner_actions, learner_obs).mean().item()
        return {"cost_loss": learner_reward - expert_reward, "expert_reward": expert_reward,
                "learner_reward": learner_reward}

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
