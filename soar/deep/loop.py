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
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.checkpoints import write_text_atomic
from agents.demonstrations import Demonstrations
from agents.harness import Schedule, TrainingRun, episode_seed, read_progress
from agents.logger import check_finite
from agents.policies import GaussianPolicy
from agents.rollout import collect
from agents.sac import SAC, check_action_box, flushed_denormals, resolve_device
from agents.untrusted import first_non_finite, load_torch
from soar.deep.config import TrainConfig, build_config
from soar.deep.csil import CSIL
from soar.deep.demos import load_expert
from soar.deep.f_irl import FIRL
from soar.deep.ml_irl import MLIRL
from soar.deep.reward_net import CostUpdate

#: Evaluation episodes reset with seeds from here (+ 1000 * seed): never a training seed.
EVAL_SEED = 1_000_000


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    policy:
        The final policy (``policy.predict(obs, deterministic=True)``); the best evaluated
        one is ``out / "policy.pt"``.
    reward:
        The learned reward (the method object): ``reward.reward(obs, actions, next_obs)``.
    history:
        The evaluations: dicts of ``step``, ``return_mean``, ``return_std``, ``episodes``,
        ``return_min``, ``return_max`` (over the episodes), ``expert_fraction``.
    out:
        The run's folder (config, logs, checkpoints; see :mod:`agents.harness`).
    """

    policy: GaussianPolicy
    reward: CostUpdate
    history: list[dict]
    out: Path


def make_method(config: TrainConfig, env: gym.Env, device: torch.device | str = "cpu",
                horizon: int = 1000, expert_terminates: bool = True) -> CostUpdate:
    """The cost update of ``config.method`` for ``env``'s spaces, its networks on ``device``.

    ``horizon`` is the episode length a terminated episode's absorbing state lasts to;
    ``expert_terminates`` whether any demonstration terminates (f-IRL puts its absorbing
    state at the reward's floor when none does).
    """
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    reward = dict(hidden=config.reward_hidden, learning_rate=config.reward_lr, weight_decay=config.reward_weight_decay,
                  absorbing=config.uses_absorbing, horizon=horizon, device=device)
    if config.method in ("ml-irl", "ml-irl-sa"):
        return MLIRL(obs_dim, act_dim, state_only=config.method == "ml-irl", reward_steps=config.reward_steps, **reward)
    if config.method == "f-irl":
        return FIRL(obs_dim, act_dim, discriminator_steps=config.discriminator_steps, seed=config.seed,
                    reward_steps=config.reward_steps, expert_terminates=expert_terminates, **reward)
    return CSIL(obs_dim, act_dim, env.action_space.low, env.action_space.high, config.alpha, hidden=config.hidden,
                bc_steps=config.bc_steps, seed=config.seed, absorbing=config.uses_absorbing, device=device)


def _check_spaces(env: gym.Env) -> None:
    for space, name in ((env.observation_space, "observation"), (env.action_space, "action")):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"imitation needs 1-D Box {name} spaces, got {space}")
    check_action_box(env.action_space, "imitation")


def episode_horizon(env: gym.Env, demos: Demonstrations) -> int:
    """The episode length an absorbing state lasts to: the environment's time limit, else the longest demonstration."""
    limit = env.spec.max_episode_steps if env.spec is not None else None
    return int(limit) if limit else max(len(t) for t in demos.trajectories)


def _expert_tensors(demos: Demonstrations, env: gym.Env, device: torch.device, horizon: int) -> dict[str, torch.Tensor]:
    """The expert's flat transitions, and the steps its terminated trajectories spend absorbed up to ``horizon``."""
    flat = demos.transitions()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if flat["obs"].shape[1] != obs_dim or flat["acts"].shape[1] != act_dim:
        raise ValueError(f"the demonstrations have {flat['obs'].shape[1]} observations and {flat['acts'].shape[1]} "
                         f"actions per step, the environment {obs_dim} and {act_dim}")
    absorbed = sum(max(horizon - len(t), 0) for t in demos.trajectories if t.terminated)
    return {"obs": torch.from_numpy(flat["obs"]).to(device), "actions": torch.from_numpy(flat["acts"]).to(device),
            "next_obs": torch.from_numpy(flat["next_obs"]).to(device), "absorbing_steps": torch.tensor(absorbed)}


def _check_weights(state: Any, where: str, step: int) -> None:
    """``FloatingPointError`` naming the first non-finite tensor in a (nested) state dict."""
    name = first_non_finite(state)  # the loaders' check (agents.untrusted), so no checkpoint written is refused
    if name is not None:
        raise FloatingPointError(f"{where}: non-finite {name} at step {step}; stopping without writing this "
                                 "checkpoint (the last one is intact and the run resumes from it)")


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
    """Run (or resume) the imitation run ``config`` in ``out``; see the module docstring."""
    _check_spaces(env)
    device = resolve_device(config.device)
    horizon = episode_horizon(env, demos)
    expert = _expert_tensors(demos, env, device, horizon)
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
                             device=config.device)
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
        expert_file = Path(out) / "expert.json"
        if not expert_file.exists():
            summary = {"return_mean": demos.return_mean, "return_std": demos.return_std, "trajectories": len(demos),
                       "source": demos.source}
            write_text_atomic(expert_file, json.dumps(summary) + "\n")
        if restored is None:
            if isinstance(method, CSIL):
                nll = method.fit(expert["obs"], expert["actions"])
                run.logger.log(0, {"cost/bc_negative_log_likelihood": nll})
            agent = SAC(env, num_critics=config.critics, optimism=config.optimism, std_clip=config.std_clip,
                        hidden=config.hidden, learning_rate=config.learning_rate, batch_size=config.batch_size,
                        gamma=config.gamma, tau=config.tau, alpha=config.alpha, buffer_size=config.buffer_size,
                        learning_starts=config.learning_starts, reward_fn=method.reward,
                        terminal_value=terminal_value, seed=config.seed,
                        device=config.device)
            method.initialise(agent)
            loop_state = {"extra_steps": 0}
        else:
            agent, loop_state = restored
            agent.new_episode(episode_seed(config.seed, agent.num_timesteps))
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
        ``"ml-irl"``, ``"ml-irl-sa"``, ``"f-irl"`` or ``"csil"``.
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
