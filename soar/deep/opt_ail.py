"""OPT-AIL: ML-IRL's state-only reward with an optimism term in the critics' loss.

The cost update is ML-IRL's (:mod:`soar.deep.ml_irl`, state-only reward, as the public
SOAR research code ran OPT-AIL); what changes is SAC's critic loss, for every member
``Q_i`` of every pair, on its own minibatch of the replay buffer:

    loss_i = mean (Q_i(s, a) - y)^2  -  lambda * mean Q_i(s, a)          (lambda = 1e-3)

which pushes the critics up where data are few and so makes the actor explore. The term
is this method's alone: ``critic_optimism`` is a setting of ``opt-ail`` only (the research
code switched it on for every method by mistake, see ``../shared/spec/soar.md``).
"""

from __future__ import annotations

import torch

from soar.deep.ml_irl import MLIRL

#: The spec's lambda.
DEFAULT_CRITIC_OPTIMISM = 1e-3


class OPTAIL(MLIRL):
    """ML-IRL (state-only) whose SAC critics carry OPT-AIL's optimism term.

    Parameters
    ----------
    critic_optimism:
        lambda >= 0 in the critic loss above.
    reward:
        The :class:`~soar.deep.ml_irl.MLIRL` arguments but ``state_only``.
    """

    def __init__(self, obs_dim: int, act_dim: int, critic_optimism: float = DEFAULT_CRITIC_OPTIMISM,
                 **reward) -> None:
        super().__init__(obs_dim, act_dim, state_only=True, **reward)
        self.critic_optimism = float(critic_optimism)

    def sac_options(self, expert: dict[str, torch.Tensor]) -> dict:
        return {"critic_optimism": self.critic_optimism}
