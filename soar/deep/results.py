"""What every deep imitation run shares, whatever its method: checks, the expert's tensors, the result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from agents.checkpoints import write_text_atomic
from agents.demonstrations import Demonstrations
from agents.policies import GaussianPolicy
from agents.sac import check_action_box

#: Evaluation episodes reset with seeds from here (+ 1000 * seed): never a training seed.
EVAL_SEED = 1_000_000


@dataclass(frozen=True)
class TrainResult:
    """What a deep imitation run returns.

    Attributes
    ----------
    policy:
        The final policy (``policy.predict(obs, deterministic=True)``); the best evaluated
        one is ``out / "policy.pt"``.
    reward:
        The learned reward (the method object, ``reward.reward(obs, actions, next_obs)``);
        ``None`` for the methods without one (``bc``, ``dagger``).
    history:
        The evaluations: dicts of ``step``, ``return_mean``, ``return_std``, ``episodes``,
        ``return_min``, ``return_max`` (over the episodes), ``expert_fraction``.
    out:
        The run's folder (config, logs, checkpoints; see :mod:`agents.harness`).
    """

    policy: GaussianPolicy
    reward: Any
    history: list[dict]
    out: Path


def check_spaces(env: gym.Env) -> None:
    """``ValueError`` unless ``env`` has 1-D Box observations and a bounded 1-D Box action space."""
    for space, name in ((env.observation_space, "observation"), (env.action_space, "action")):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"imitation needs 1-D Box {name} spaces, got {space}")
    check_action_box(env.action_space, "imitation")


def episode_horizon(env: gym.Env, demos: Demonstrations) -> int:
    """The episode length an absorbing state lasts to: the environment's time limit, else the longest demonstration."""
    limit = env.spec.max_episode_steps if env.spec is not None else None
    return int(limit) if limit else max(len(t) for t in demos.trajectories)


def expert_tensors(demos: Demonstrations, env: gym.Env, device: torch.device, horizon: int) -> dict[str, torch.Tensor]:
    """The expert's flat transitions (``obs``, ``actions``, ``next_obs``, ``terminated``) on ``device``, and
    ``absorbing_steps``: the steps its terminated trajectories spend absorbed up to ``horizon``."""
    flat = demos.transitions()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if flat["obs"].shape[1] != obs_dim or flat["acts"].shape[1] != act_dim:
        raise ValueError(f"the demonstrations have {flat['obs'].shape[1]} observations and {flat['acts'].shape[1]} "
                         f"actions per step, the environment {obs_dim} and {act_dim}")
    absorbed = sum(max(horizon - len(t), 0) for t in demos.trajectories if t.terminated)
    return {"obs": torch.from_numpy(flat["obs"]).to(device), "actions": torch.from_numpy(flat["acts"]).to(device),
            "next_obs": torch.from_numpy(flat["next_obs"]).to(device),
            "terminated": torch.from_numpy(flat["terminated"].astype("float32")).to(device),
            "absorbing_steps": torch.tensor(absorbed)}


def write_expert_summary(out: Path, demos: Demonstrations) -> None:
    """``out/expert.json``: the demonstrations' return and source (``soar evaluate`` reads it)."""
    path = Path(out) / "expert.json"
    if not path.exists():
        summary = {"return_mean": demos.return_mean, "return_std": demos.return_std, "trajectories": len(demos),
                   "source": demos.source}
        write_text_atomic(path, json.dumps(summary) + "\n")
