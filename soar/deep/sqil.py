"""SQIL: soft Q imitation learning, SAC with reward 1 on the expert's transitions and 0 on the learner's.

Every critic minibatch is balanced: a fixed share ``expert_share`` of its rows (half by
default) are the expert's transitions, with reward exactly 1, the rest the learner's from
the replay buffer, with reward exactly 0 (:class:`agents.sac.SAC`'s ``demonstrations``
rows). Nothing is learned besides SAC: the reward never changes, and the expert's
transitions keep their own termination flags (a demonstration that ended by the time
limit does not terminate). The pull towards the expert comes only from the critics:
states like the expert's lead to rewarded transitions, the others to none.
"""

from __future__ import annotations

import numpy as np
import torch

from soar.deep.reward_net import CostUpdate, stack_episodes

EXPERT_REWARD, LEARNER_REWARD = 1.0, 0.0


class SQIL(CostUpdate):
    """SQIL's constant rewards and balanced minibatches.

    Parameters
    ----------
    expert_share:
        Fraction of every critic minibatch drawn from the expert's transitions, in (0, 1).
    """

    def __init__(self, expert_share: float = 0.5) -> None:
        if not 0.0 < float(expert_share) < 1.0:
            raise ValueError(f"expert_share must be in (0, 1), got {expert_share!r}")
        self.expert_share = float(expert_share)

    def sac_options(self, expert: dict[str, torch.Tensor]) -> dict:
        return {"demonstrations": expert, "demo_share": self.expert_share, "demo_reward": EXPERT_REWARD}

    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """The learner's rows: 0 (the expert's rows are set to 1 by SAC)."""
        return torch.full(obs.shape[:-1], LEARNER_REWARD, device=obs.device)

    def update(self, expert: dict[str, torch.Tensor], learner: list[dict[str, np.ndarray]]) -> dict[str, float]:
        """Nothing to learn; reports the learner's recent episode lengths (SQIL's rewards are fixed)."""
        steps = len(stack_episodes(learner, "obs"))
        return {"learner_episode_length": steps / len(learner)}
