"""Behavioural cloning: the tanh-Gaussian actor fitted to the expert's pairs by maximum likelihood.

    maximise  E_(s, a) ~ demonstrations [ log pi(a | s) ]       (Adam on minibatches)

No environment step is used for learning: the run fits the policy, then evaluates it once
(logged at step 0, the environment steps it learnt from). :func:`maximum_likelihood` is
the fit CSIL (its reward's ``q``) and DAgger (after every aggregation) share.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.demonstrations import Demonstrations
from agents.harness import Schedule, TrainingRun
from agents.logger import stopping_note
from agents.networks import TanhGaussianActor
from agents.policies import GaussianPolicy, load_policy
from agents.sac import resolve_device
from agents.untrusted import first_non_finite
from soar.deep.config import TrainConfig
from soar.deep.results import EVAL_SEED, TrainResult, check_spaces, expert_tensors, write_expert_summary


def inside_box(actions: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``actions`` pulled a hair inside the box: on its edge a tanh-squashed policy has zero density."""
    margin = 1e-4 * (high - low)
    return torch.minimum(torch.maximum(actions, low + margin), high - margin)


def maximum_likelihood(policy: TanhGaussianActor, optimizer: torch.optim.Optimizer, obs: torch.Tensor,
                       actions: torch.Tensor, steps: int, batch_size: int, rng: np.random.Generator,
                       where: str = "maximum-likelihood fit", step: int = 0) -> float:
    """``steps`` Adam steps on ``-mean log policy(actions | obs)`` over minibatches drawn with replacement.

    Returns the last minibatch's mean negative log-likelihood (``nan`` for ``steps = 0``). A
    non-finite loss raises ``FloatingPointError`` at the step it appears, before the weights it would
    poison reach a checkpoint; ``where`` and ``step`` (the run's environment step) name it.
    """
    actions = inside_box(actions, policy.offset - policy.scale, policy.offset + policy.scale)
    value = float("nan")
    for fit_step in range(int(steps)):
        index = torch.from_numpy(rng.integers(0, len(obs), batch_size))
        loss = -policy.log_prob(obs[index], actions[index]).mean()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"{where}: non-finite negative log-likelihood = {value} at fit step {fit_step + 1} of {steps} "
                f"(step {step}; an observation, action or weight became NaN or infinite, or bc_lr is too large); "
                + _stopping(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    bad = first_non_finite(policy.state_dict())  # the last step's update is not seen by any loss
    if bad is not None:
        raise FloatingPointError(f"{where}: non-finite {bad} after {steps} fit steps (step {step}; bc_lr is "
                                 "probably too large); " + _stopping(step))
    return value


def _stopping(step: int) -> str:
    # A fit at step 0 runs before any checkpoint: running again with the same settings fails again.
    return stopping_note(step) + (" (lower bc_lr, or check the demonstrations)" if step == 0 else "")


def new_policy(env: gym.Env, hidden: tuple[int, ...], seed: int, device: torch.device) -> TanhGaussianActor:
    """A fresh actor of SAC's architecture for ``env``'s spaces, initialised from ``seed``."""
    torch.manual_seed(seed)
    return TanhGaussianActor.for_spaces(env.observation_space, env.action_space, hidden).to(device)


def _save_fit(staging: Path, policy: GaussianPolicy, nll: float) -> None:
    policy.save(staging / "bc_policy.pt")
    (staging / "bc.json").write_text(json.dumps({"negative_log_likelihood": nll}) + "\n")


def run_bc(config: TrainConfig, env: gym.Env, eval_env: gym.Env, demos: Demonstrations, out: str | Path,
           progress: bool = False) -> TrainResult:
    """Fit ``bc_steps`` minibatches of ``bc_batch`` expert pairs, evaluate at step 0, keep the policy.

    The fitted policy is checkpointed at step 0, so a folder that already holds a finished
    BC run is returned as it is.
    """
    check_spaces(env)
    device = resolve_device(config.device)
    # One evaluation at step 0; the schedule's total is that single step.
    schedule = Schedule(1, 1, 1)
    with TrainingRun(out, config, schedule, eval_env, config.eval_episodes, eval_seed=EVAL_SEED + 1000 * config.seed,
                     reference_return=demos.return_mean, title=f"{config.env_id} bc", progress=progress) as run:
        # The fit is checkpointed at step 0 before anything is logged: running the folder again, after a
        # kill or a finished run, takes the fitted policy back and only logs and evaluates what is missing.
        restored = run.resume(lambda folder: (load_policy(folder / "bc_policy.pt"),
                                              json.loads((folder / "bc.json").read_text())))
        write_expert_summary(Path(out), demos)
        if restored is None:
            expert = expert_tensors(demos, env, device, horizon=0)
            policy = new_policy(env, config.hidden, config.seed, device)
            optimizer = torch.optim.Adam(policy.parameters(), lr=config.bc_lr)
            nll = maximum_likelihood(policy, optimizer, expert["obs"], expert["actions"], config.bc_steps,
                                     config.bc_batch, np.random.default_rng(config.seed), where="bc fit")
            deployed = GaussianPolicy(policy.to("cpu").eval(), config.env_id)

            run.checkpoint(0, lambda staging: _save_fit(staging, deployed, nll))
        else:
            deployed, fit = restored
            nll = float(fit["negative_log_likelihood"])
        if not run.logger.read("train"):
            run.logger.log(0, {"train/bc_negative_log_likelihood": nll})
        if not run.evaluations:
            run.evaluate(0, deployed)
            run.logger.log(0, {"time/elapsed_seconds": run.logger.elapsed_seconds()})
            # Again, now with the evaluated policy.pt and its return: a later run of the folder keeps them.
            run.checkpoint(0, lambda staging: _save_fit(staging, deployed, nll))
        deployed.save(Path(out) / "final_policy.pt")
        return TrainResult(deployed, None, list(run.evaluations), Path(out))
