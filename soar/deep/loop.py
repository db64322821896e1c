"""The deep imitation loop every method shares: SOAR's primal-dual template on SAC.

One run, top to bottom::

    reward r <- the method's (CSIL: fitted to the expert by behavioural cloning)
    SAC with L critic pairs; every critic minibatch relabelled by r (never the env reward)
    every step:      one environment step, one SAC update (after learning_starts)
    every cost_every steps: one cost update of r from the expert's transitions and the
                     learner's most recent complete episodes (or cost_rollouts fresh
                     rollouts, whose steps are counted)
    on a schedule:   deterministic evaluation (never used for learning), best policy,
                     logs, checkpoints (agents.harness)

The x-axis of every log is the environment steps used for learning: SAC's steps plus
any fresh cost rollouts; evaluation episodes are not counted.

The methods (each a module over this loop): ``ml-irl``, ``ml-irl-sa``, ``f-irl``, ``csil``,
``gail``, ``airl``, ``sqil``, ``opt-ail``; ``bc`` and ``dagger`` train no critic and run
their own short loops (:mod:`soar.deep.bc`, :mod:`soar.deep.dagger`).
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.demonstrations import Demonstrations
from agents.harness import Schedule, TrainingRun, episode_seed, read_progress
from agents.logger import check_finite
from agents.rollout import collect
from agents.sac import SAC, flushed_denormals, resolve_device
from agents.untrusted import first_non_finite, load_torch
from soar.deep.airl import AIRL
from soar.deep.bc import run_bc
from soar.deep.config import TrainConfig, build_config
from soar.deep.csil import CSIL
from soar.deep.dagger import run_dagger
from soar.deep.demos import load_expert
from soar.deep.f_irl import FIRL
from soar.deep.gail import GAIL
from soar.deep.ml_irl import MLIRL
from soar.deep.opt_ail import OPTAIL
from soar.deep.results import (  # noqa: F401  (EVAL_SEED and TrainResult: part of this module's API)
    EVAL_SEED, TrainResult, check_spaces, episode_horizon, expert_tensors, write_expert_summary,
)
from soar.deep.reward_net import CostUpdate
from soar.deep.sqil import SQIL

def make_method(config: TrainConfig, env: gym.Env, device: torch.device | str = "cpu",
                horizon: int = 1000, expert_terminates: bool = True) -> CostUpdate:
    """The cost update of ``config.method`` for ``env``'s spaces, its networks on ``device``.

    ``horizon`` is the episode length a terminated episode's absorbing state lasts to;
    ``expert_terminates`` whether any demonstration terminates (f-IRL puts its absorbing
    state at the reward's floor when none does).
    """
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    network = dict(hidden=config.reward_hidden, learning_rate=config.reward_lr, weight_decay=config.reward_weight_decay,
                   device=device)
    reward = dict(network, absorbing=config.uses_absorbing, horizon=horizon, reward_steps=config.reward_steps)
    discriminator = dict(network, discriminator_steps=config.discriminator_steps, seed=config.seed)
    if config.method in ("ml-irl", "ml-irl-sa"):
        return MLIRL(obs_dim, act_dim, state_only=config.method == "ml-irl", **reward)
    if config.method == "opt-ail":
        return OPTAIL(obs_dim, act_dim, critic_optimism=config.critic_optimism, **reward)
    if config.method == "f-irl":
        return FIRL(obs_dim, act_dim, discriminator_steps=config.discriminator_steps, seed=config.seed,
                    expert_terminates=expert_terminates, **reward)
    if config.method == "gail":
        return GAIL(obs_dim, act_dim, **discriminator)
    if config.method == "airl":
        return AIRL(obs_dim, act_dim, gamma=config.gamma, **discriminator)
    if config.method == "sqil":
        return SQIL(config.expert_share)
    if config.method == "csil":
        return CSIL(obs_dim, act_dim, env.action_space.low, env.action_space.high, config.alpha, hidden=config.hidden,
                    bc_steps=config.bc_steps, bc_batch=config.bc_batch, bc_lr=config.bc_lr, seed=config.seed,
                    absorbing=config.uses_absorbing, device=device)
    raise ValueError(f"{config.method} is not a method on SAC (bc and dagger run without one)")


def _check_weights(state: Any, where: str, step: int) -> None:
    """``FloatingPointError`` naming the first non-finite tensor in a (nested) state dict."""
    name = first_non_finite(state)  # the loaders' check (agents.untrusted), so no checkpoint written is refused
    if name is not None:
        raise FloatingPointError(f"{where}: non-finite {name} at step {step}; stopping without writing this "
                                 "checkpoint (a resume starts from the last one written, or afresh if there is none)")


class _OffsetLogger:
    """Logs SAC's metrics at the run's step count (SAC's steps plus counted cost rollouts)."""

    def __init__(self, logger, loop_state: dict) -> None:
        self.logger, self.loop_state = logger, loop_state

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.logger.log(step + self.loop_state["extra_steps"], metrics)

    def elapsed_seconds(self) -> float:
        return self.logger.elapsed_seconds()


def run_training(
    config: TrainConfig, env: gym.Env, eval_env: gym.Env, demos: Demonstrations, out: str | Path,
    progress: bool = False,
) -> TrainResult:
    """Run (or resume) the imitation run ``config`` in ``out``; see the module docstring.

    ``bc`` and ``dagger`` train no critic: they run their own loops (:mod:`soar.deep.bc`,
    :mod:`soar.deep.dagger`) with the same folder, logs and result.
    """
    if config.method == "bc":
        return run_bc(config, env, eval_env, demos, out, progress)
    if config.method == "dagger":
        return run_dagger(config, env, eval_env, demos, out, progress)
    check_spaces(env)
    device = resolve_device(config.device)
    horizon = episode_horizon(env, demos)
    expert = expert_tensors(demos, env, device, horizon)
    torch.manual_seed(config.seed)
    method = make_method(config, env, device, horizon, any(t.terminated for t in demos.trajectories))
    # A terminated episode bootstraps the absorbing state's value (soar.deep.reward_net), else 0. It changes only
    # with the reward, so it is read once per cost update (and after a restore), not at every gradient step.
    absorbing_value = {"value": 0.0}

    def refresh_absorbing_value() -> None:
        absorbing_value["value"] = method.absorbing_reward() / (1.0 - config.gamma)

    refresh_absorbing_value()
    terminal_value = (lambda: absorbing_value["value"]) if config.uses_absorbing else None
    schedule = Schedule(config.steps, config.eval_every, config.checkpoint_every)
    title = f"{config.env_id} {config.method} L={config.critics}"
    with TrainingRun(out, config, schedule, eval_env, config.eval_episodes, eval_seed=EVAL_SEED + 1000 * config.seed,
                     reference_return=demos.return_mean, title=title, progress=progress) as run, flushed_denormals():
        def restore(folder: Path) -> tuple[SAC, dict]:
            # Everything is read and checked before the fresh method takes any of it.
            agent = SAC.load(folder / "agent.pt", env, reward_fn=method.reward, terminal_value=terminal_value,
                             device=config.device, **method.sac_options(expert))
            # Sizes checked, NaN or infinite weights refused, no code run (agents.untrusted).
            state = load_torch(folder / "method.pt")
            loop_state = json.loads((folder / "loop.json").read_text())
            if not isinstance(loop_state, dict) or not isinstance(loop_state.get("extra_steps"), int):
                raise ValueError(f"{folder / 'loop.json'} holds no step count")
            if agent.num_timesteps + loop_state["extra_steps"] != read_progress(folder)["step"]:
                raise ValueError("its agent and progress.json disagree on the step")
            method.load_state_dict(state)
            refresh_absorbing_value()
            return agent, loop_state

        restored = run.resume(restore)
        write_expert_summary(Path(out), demos)
        if restored is None:
            if isinstance(method, CSIL):
                nll = method.fit(expert["obs"], expert["actions"])
                run.logger.log(0, {"cost/bc_negative_log_likelihood": nll})
            agent = SAC(env, num_critics=config.critics, optimism=config.optimism, std_clip=config.std_clip,
                        hidden=config.hidden, learning_rate=config.learning_rate, batch_size=config.batch_size,
                        gamma=config.gamma, tau=config.tau, alpha=config.alpha, buffer_size=config.buffer_size,
                        learning_starts=config.learning_starts, reward_fn=method.reward,
                        terminal_value=terminal_value, seed=config.seed,
                        device=config.device, **method.sac_options(expert))
            method.initialise(agent)
            loop_state = {"extra_steps": 0}
        else:
            agent, loop_state = restored
            agent.new_episode(episode_seed(config.seed, agent.num_timesteps))
        method.attach(agent)
        rollout_env = copy.deepcopy(eval_env) if config.cost_rollouts else None

        def used() -> int:
            return agent.num_timesteps + loop_state["extra_steps"]

        def save(staging: Path) -> None:
            # A weight that became NaN in this step's update is caught here, not after the checkpoint.
            # Everything the loaders check (SAC.load, method.pt), so a checkpoint written is one they accept.
            _check_weights({"reward": method.state_dict(), "actor": agent.actor.state_dict(),
                            "critic": agent.critic.state_dict(), "critic_target": agent.critic_target.state_dict(),
                            "actor_optimizer": agent.actor_optimizer.state_dict(),
                            "critic_optimizer": agent.critic_optimizer.state_dict(), "log_alpha": agent.log_alpha},
                           f"{config.method} checkpoint", used())
            agent.new_episode(episode_seed(config.seed, agent.num_timesteps))
            agent.save(staging / "agent.pt", include_buffer=True)
            torch.save(method.state_dict(), staging / "method.pt")
            (staging / "loop.json").write_text(json.dumps(loop_state))

        def cost_update() -> None:
            if config.cost_rollouts:
                trajectories = collect(agent, rollout_env, config.cost_rollouts, seed=episode_seed(config.seed + 1, used()))
                loop_state["extra_steps"] += sum(len(t) for t in trajectories)
                learner = [{"obs": t.obs[:-1], "actions": t.acts, "next_obs": t.obs[1:],
                            "terminated": np.arange(len(t)) == len(t) - 1 if t.terminated else np.zeros(len(t), bool)}
                           for t in trajectories]
            else:
                learner = agent.recent_episodes(config.cost_episodes)
            if learner:
                metrics = method.update(expert, learner)
                refresh_absorbing_value()
                check_finite(metrics, f"{config.method} cost update", used())
                run.logger.log(used(), {f"cost/{name}": value for name, value in metrics.items()})

        def after_step(agent: SAC) -> bool:
            previous = used() - 1
            if agent.num_timesteps >= config.learning_starts and agent.num_timesteps % config.cost_every == 0:
                cost_update()
            run.after_step(used(), lambda: agent.policy(config.env_id), save, previous=previous)
            return used() < config.steps

        if used() < config.steps:
            agent.learn(config.steps - used(), callback=after_step, logger=_OffsetLogger(run.logger, loop_state),
                        log_every=config.log_every)
        final = agent.policy(config.env_id)
        final.save(Path(out) / "final_policy.pt")  # replaced whole
        return TrainResult(final, method, list(run.evaluations), Path(out))


def train(
    env: str | gym.Env,
    method: str = "ml-irl-sa",
    demonstrations: str | Demonstrations = "bundled",
    *,
    out: str | Path | None = None,
    eval_env: gym.Env | None = None,
    progress: bool = False,
    **settings: Any,
) -> TrainResult:
    """Imitate ``demonstrations`` in ``env`` with ``method`` (SOAR when ``critics > 1``).

    Parameters
    ----------
    env:
        A Gymnasium id, or any Gymnasium environment with 1-D ``Box`` observations and a
        bounded ``Box`` action space (registration is not needed).
    method:
        One of :data:`soar.deep.config.METHODS`: ``"ml-irl"``, ``"ml-irl-sa"``, ``"f-irl"``,
        ``"csil"``, ``"gail"``, ``"airl"``, ``"sqil"``, ``"opt-ail"``, ``"bc"``, ``"dagger"``.
    demonstrations:
        :class:`~agents.demonstrations.Demonstrations`, or a source for
        :func:`soar.deep.demos.load_expert` (``"bundled"``, a file, ``"minari:ID"``).
    out:
        The run's folder (resumed if it holds this run); a fresh temporary folder if ``None``.
    eval_env:
        Environment for evaluation (default: a new one of the same id, or a copy of ``env``).
    progress:
        Show a progress bar.
    settings:
        Any :class:`~soar.deep.config.TrainConfig` field (``critics=4``, ``steps=50_000``, ...);
        the environment's YAML defaults apply to the others.
    """
    if isinstance(env, str):
        env_id, env = env, gym.make(env)
        eval_env = eval_env if eval_env is not None else gym.make(env_id)
    else:
        env_id = env.spec.id if env.spec is not None else type(env).__name__
        eval_env = eval_env if eval_env is not None else copy.deepcopy(env)
    if isinstance(demonstrations, Demonstrations):
        trajectories = settings.pop("trajectories", len(demonstrations))
        demos = Demonstrations(demonstrations.trajectories[: int(trajectories)], demonstrations.env_id,
                               demonstrations.source)
        config = build_config(env_id, method, demos=demonstrations.source or "python", trajectories=len(demos),
                              **settings)
    else:
        config = build_config(env_id, method, demos=demonstrations, **settings)
        demos = load_expert(config.demos, env_id, config.trajectories)
    return run_training(config, env, eval_env, demos, out or tempfile.mkdtemp(prefix="soar-train-"), progress)
