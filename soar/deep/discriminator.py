"""Classifiers of expert against learner samples (f-IRL, GAIL, AIRL), trained on balanced minibatches.

A discriminator's logit ``l`` says how much more likely a sample is the expert's than the
learner's: trained by binary cross-entropy with the expert's samples labelled 1 and the
learner's 0, in minibatches holding as many of each, ``sigmoid(l) = D`` estimates
``rho_E / (rho_E + rho_learner)`` and ``l`` estimates ``log(rho_E / rho_learner)``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

Samples = dict[str, torch.Tensor]


def balanced_minibatch(expert: Samples, learner: Samples, batch_size: int,
                       rng: np.random.Generator) -> tuple[Samples, Samples]:
    """``batch_size`` rows of each, drawn with replacement (the expert's first), every key alike."""
    rows_e = torch.from_numpy(rng.integers(0, len(next(iter(expert.values()))), batch_size))
    rows_l = torch.from_numpy(rng.integers(0, len(next(iter(learner.values()))), batch_size))
    return {k: v[rows_e] for k, v in expert.items()}, {k: v[rows_l] for k, v in learner.items()}


def train_discriminator(logit: Callable[[Samples], torch.Tensor], optimizer: torch.optim.Optimizer, expert: Samples,
                        learner: Samples, steps: int, batch_size: int, rng: np.random.Generator) -> dict[str, float]:
    """``steps`` Adam steps of binary cross-entropy (expert 1, learner 0) on balanced minibatches.

    ``logit(samples)`` maps a dict of tensors (the keys of ``expert`` and ``learner``) to one
    logit per row. Returns the last minibatch's ``discriminator_loss`` and the fraction of
    its expert (``expert_accuracy``) and learner rows (``learner_accuracy``) classified right.
    """
    loss_fn = nn.BCEWithLogitsLoss()
    metrics = {"discriminator_loss": float("nan"), "expert_accuracy": float("nan"), "learner_accuracy": float("nan")}
    for _ in range(int(steps)):
        e, lrn = balanced_minibatch(expert, learner, batch_size, rng)
        logit_e, logit_l = logit(e), logit(lrn)
        loss = 0.5 * (loss_fn(logit_e, torch.ones_like(logit_e)) + loss_fn(logit_l, torch.zeros_like(logit_l)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        metrics = {"discriminator_loss": loss.item(), "expert_accuracy": (logit_e > 0).float().mean().item(),
                   "learner_accuracy": (logit_l < 0).float().mean().item()}
    return metrics


def learner_samples(learner: list[dict[str, np.ndarray]], device: torch.device | str = "cpu") -> Samples:
    """The learner's recent episodes as one dict of float32 tensors (``obs``, ``actions``, ``next_obs``, ``terminated``)."""
    return {key: torch.from_numpy(np.concatenate([episode[key] for episode in learner]).astype(np.float32)).to(device)
            for key in ("obs", "actions", "next_obs", "terminated")}
