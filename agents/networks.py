"""Neural networks for the deep agents: a batched critic ensemble and a tanh-Gaussian actor."""

from __future__ import annotations

import math

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers stored as one stacked weight, applied by one batched matmul.

    Input ``(E, B, in)``, output ``(E, B, out)``. Each member is initialised like
    ``torch.nn.Linear`` (Kaiming-uniform weights, uniform bias), independently.
    """

    def __init__(self, ensemble_size: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        # Same distribution as nn.Linear's default (kaiming_uniform with a = sqrt(5)).
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """``E`` MLPs with ReLU hidden layers, evaluated together: ``(E, B, in) -> (E, B, out)``."""

    def __init__(self, ensemble_size: int, in_features: int, hidden: tuple[int, ...], out_features: int) -> None:
        super().__init__()
        sizes = (in_features, *hidden, out_features)
        self.layers = nn.ModuleList(
            EnsembleLinear(ensemble_size, a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.ensemble_size = ensemble_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class TanhGaussianActor(nn.Module):
    """``a = scale * tanh(u) + offset``, ``u ~ N(mu(s), sigma(s))``; log-std clamped to [-20, 2].

    Parameters
    ----------
    obs_dim, act_dim:
        Observation and action sizes.
    hidden:
        Hidden layer widths (ReLU).
    action_low, action_high:
        Bounds of the action box.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...],
        action_low: torch.Tensor,
        action_high: torch.Tensor,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = obs_dim
        for width in hidden:
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        self.trunk = nn.Sequential(*layers)
        self.mean = nn.Linear(size, act_dim)
        self.log_std = nn.Linear(size, act_dim)
        self.register_buffer("scale", (action_high - action_low) / 2)
        self.register_buffer("offset", (action_high + action_low) / 2)

    @classmethod
    def for_spaces(cls, observation_space, action_space, hidden: tuple[int, ...]) -> "TanhGaussianActor":
        """An actor for 1-D Box observations and a bounded Box action space (SAC's and BC's)."""
        low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
        high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        return cls(observation_space.shape[0], low.numel(), tuple(hidden), low, high)

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the pre-tanh Gaussian."""
        features = self.trunk(obs)
        log_std = self.log_std(features).clamp(LOG_STD_MIN, LOG_STD_MAX)
        return self.mean(features), log_std.exp()

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action and its log-probability (tanh change of variables).

        ``generator`` draws the noise (an agent's own generator keeps runs reproducible).
        """
        mean, std = self.distribution(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        u = mean + std * noise
        log_prob = (-0.5 * noise.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log |d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), numerically stable.
        log_prob = log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        log_prob = log_prob - torch.log(self.scale).sum()
        return torch.tanh(u) * self.scale + self.offset, log_prob

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log-density of ``action`` (inside the box) under the policy."""
        mean, std = self.distribution(obs)
        y = ((action - self.offset) / self.scale).clamp(-1 + 1e-6, 1 - 1e-6)
        u = torch.atanh(y)
        log_prob = (-0.5 * ((u - mean) / std).pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return log_prob - torch.log(self.scale).sum()

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.distribution(obs)
        return torch.tanh(mean) * self.scale + self.offset
