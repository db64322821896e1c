"""AIRL on SAC: a discriminator shaped as a reward plus a potential, with the policy's density inside.

The discriminator of adversarial inverse RL is built from the learner's own policy ``pi``:

    f(s, a, s') = g(s, a) + gamma h(s') - h(s)                 (reward g, shaping potential h)
    D(s, a, s') = exp f / (exp f + pi(a | s)),   i.e.  logit l = f(s, a, s') - log pi(a | s)

trained like GAIL's (expert 1, learner 0, balanced minibatches, :mod:`soar.deep.discriminator`),
with ``pi`` the current SAC actor, held fixed during the update. AIRL gives the policy
``log D - log(1 - D) = f - log pi``; SAC adds its own entropy term ``-alpha log pi``, so the
critics learn from

    r(s, a, s') = f(s, a, s')                                   (clamped to +-REWARD_CLIP)

which is AIRL's objective exactly at ``alpha = 1`` and a cooler version of it otherwise.
The relabelling function sees no termination flag, so a terminal transition's potential
is ``h(s')`` of the state the episode ended in, not 0; and ``f`` takes either sign, so
unlike GAIL's reward it carries no survival bonus (no absorbing state here either).
"""

from __future__ import annotations

import numpy as np
import torch

from soar.deep.bc import inside_box
from soar.deep.discriminator import learner_samples, train_discriminator
from soar.deep.reward_net import REWARD_CLIP, CostUpdate, mlp


class AIRL(CostUpdate):
    """AIRL's shaped reward for SAC; needs the agent (:meth:`attach`) for ``log pi``.

    Parameters
    ----------
    obs_dim, act_dim:
        Sizes of observations and actions.
    gamma:
        The discount of the shaping term (SAC's).
    hidden, learning_rate, weight_decay:
        Widths of ``g`` and ``h`` and their Adam optimiser.
    discriminator_steps, discriminator_batch:
        Adam steps per cost update, and expert (and learner) rows in each minibatch.
    seed:
        Seeds the minibatches.
    device:
        Where the networks live (the SAC learner's device).
    """

    def __init__(self, obs_dim: int, act_dim: int, gamma: float = 0.99, hidden: tuple[int, ...] = (64, 64),
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, discriminator_steps: int = 100,
                 discriminator_batch: int = 256, seed: int = 0, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.gamma = float(gamma)
        self.g = mlp(obs_dim + act_dim, tuple(hidden), 1).to(self.device)
        self.h = mlp(obs_dim, tuple(hidden), 1).to(self.device)
        self.optimizer = torch.optim.Adam([*self.g.parameters(), *self.h.parameters()], lr=learning_rate,
                                          weight_decay=weight_decay)
        self.steps, self.batch = int(discriminator_steps), int(discriminator_batch)
        self.rng = np.random.default_rng(seed)
        self.actor = None

    def attach(self, agent) -> None:
        """Read ``log pi`` from ``agent``'s actor from now on."""
        self.actor = agent.actor

    def shaped(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``f(s, a, s') = g(s, a) + gamma h(s') - h(s)``."""
        g = self.g(torch.cat([obs, actions], dim=-1)).squeeze(-1)
        return g + self.gamma * self.h(next_obs).squeeze(-1) - self.h(obs).squeeze(-1)

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.shaped(obs, actions, next_obs).clamp(-REWARD_CLIP, REWARD_CLIP)

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        if self.actor is None:
            raise RuntimeError("AIRL.update needs the agent's policy: call attach(agent) first")
        keys = ("obs", "actions", "next_obs")
        learner_batch = learner_samples(learner, self.device)
        expert_batch, learner_batch = {k: expert[k] for k in keys}, {k: learner_batch[k] for k in keys}
        actor = self.actor
        with torch.no_grad():  # the policy is part of the discriminator, but it is not trained here
            for batch in (expert_batch, learner_batch):
                # Saturated expert actions would have a vanishing tanh-squashed density: pulled inside, as BC does.
                batch["log_pi"] = actor.log_prob(batch["obs"], inside_box(batch["actions"], actor.offset - actor.scale,
                                                                          actor.offset + actor.scale))
        metrics = train_discriminator(lambda x: self.shaped(x["obs"], x["actions"], x["next_obs"]) - x["log_pi"],
                                      self.optimizer, expert_batch, learner_batch, self.steps, self.batch, self.rng)
        expert_reward = self.reward(*(expert_batch[k] for k in keys)).mean().item()
        learner_reward = self.reward(*(learner_batch[k] for k in keys)).mean().item()
        return {**metrics, "expert_reward": expert_reward, "learner_reward": learner_reward}

    def state_dict(self) -> dict:
        return {"g": self.g.state_dict(), "h": self.h.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.g.load_state_dict(state["g"])
        self.h.load_state_dict(state["h"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
