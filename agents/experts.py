"""Expert policies for Gymnasium tasks: the bundled experts, and training new ones.

:func:`train_expert` trains a SAC expert either with stable-baselines3 (the peer users
trust, with rl-zoo3's MuJoCo hyperparameters) or with this toolkit's :class:`agents.sac.SAC`
(same hyperparameters, one critic), both through the run harness
(:class:`agents.harness.TrainingRun`): it evaluates the deterministic policy every
``eval_every`` steps, keeps the best one in the toolkit's policy format, logs to CSV
and TensorBoard, and checkpoints so that a killed run resumes where its last
checkpoint left it, continuing exactly as the uninterrupted run would (on the CPU).
Output folder::

    config.json        the ExpertConfig; a resumed run must share it (the step budget may grow)
    policy.pt          best policy so far (agents.policies.GaussianPolicy, weights only)
    logs/train.csv     step, critic_loss, actor_loss, alpha (own SAC: also critic_std), averaged over log_every steps
    logs/eval.csv      step, return_mean, return_std, episodes, return_min, return_max
    logs/time.csv      step, steps_per_second, elapsed_seconds
    tensorboard/       the same metrics, tags train/..., eval/..., time/...
    evaluations.png    the learning curve (redrawn at every checkpoint)
    checkpoint/        what a resumed run needs: weights, optimisers, replay buffer, counters,
                       random streams (own SAC: agent.pt; SB3: model.zip read with weights_only,
                       buffer.npz, rng.npz, state.json), progress.json and a copy of policy.pt

A checkpoint ends the current training episode (see :func:`agents.harness.episode_seed`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from agents.config import check_settings, non_negative_int, positive_int, setting
from agents.demonstrations import Demonstrations, load_demonstrations
from agents.harness import PROGRESS_FILE, Schedule, TrainingRun, episode_seed, read_progress
from agents.logger import MetricWindow, check_finite
from agents.run_folder import first_line
from agents.untrusted import check_zip_members, read_npz

if TYPE_CHECKING:
    from agents.policies import GaussianPolicy

# torch is imported where it is used: the command line builds its parser from
# ExpertConfig, and its tabular commands must not pay for (or need) torch.

ALGORITHMS = ("sb3", "soar")
# rl-zoo3 (hyperparams/sac.yml) trains every MuJoCo task with SB3's SAC defaults
# (lr 3e-4, buffer 1e6, batch 256, tau 0.005, gamma 0.99, auto entropy, 256x256)
# except for 10k uniformly random warm-up steps.
RL_ZOO_MUJOCO_LEARNING_STARTS = 10_000


BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED_ENVS = ("InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Hopper-v5")


def _bundled(env_id: str, suffix: str) -> Path:
    path = BUNDLED_DIR / f"{env_id}{suffix}"
    if not path.is_file():
        available = sorted(p.name.removesuffix("-demos.npz") for p in BUNDLED_DIR.glob("*-demos.npz"))
        raise ValueError(f"no bundled expert for {env_id!r}; bundled: {available}")
    return path


def bundled_demonstrations(env_id: str) -> Demonstrations:
    """The expert demonstrations shipped with the package (see ``agents/data/README.md``)."""
    return load_demonstrations(_bundled(env_id, "-demos.npz"))


def bundled_policy(env_id: str) -> GaussianPolicy:
    """The expert policy shipped with the package, which made :func:`bundled_demonstrations`."""
    from agents.policies import load_policy

    return load_policy(_bundled(env_id, "-policy.pt"))


@dataclass(frozen=True)
class ExpertConfig:
    """Settings of an expert training run (``soar expert train`` derives its options from them)."""

    env_id: str = setting(help="Gymnasium id with 1-D Box observations and actions, e.g. Hopper-v5", flag="--env")
    steps: int = setting(help="total environment steps, counting those before a resume", parse=positive_int,
                         resumable=True)
    algorithm: str = setting("sb3", choices=ALGORITHMS,
                             help="stable-baselines3's SAC (rl-zoo3 hyperparameters) or this toolkit's SAC")
    seed: int = setting(0, parse=non_negative_int, help="random seed")
    eval_every: int = setting(10_000, parse=positive_int, help="environment steps between evaluations")
    eval_episodes: int = setting(5, parse=positive_int, help="deterministic episodes per evaluation")
    checkpoint_every: int = setting(50_000, parse=positive_int, resumable=True,
                                    help="environment steps between checkpoints (each ends the training episode)")
    log_every: int = setting(1000, parse=positive_int, resumable=True,
                             help="environment steps between train/ and time/ log rows")
    learning_starts: int = setting(RL_ZOO_MUJOCO_LEARNING_STARTS, parse=non_negative_int,
                                   help="uniformly random steps before learning (rl-zoo3's)")
    batch_size: int = setting(256, parse=positive_int, help="minibatch size")
    hidden: tuple[int, ...] = setting((256, 256), parse=positive_int, help="hidden layer widths of actor and critics")

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id must be a Gymnasium id, got {self.env_id!r}")
        # Every value checked as on the command line, and stored as plain ints that config.json can hold.
        check_settings(self)


@dataclass
class TrainingResult:
    """What :func:`train_expert` leaves behind."""

    policy_path: Path
    best_return: float
    evaluations: list[dict]


def train_expert(config: ExpertConfig, out: str | Path, progress: bool = True) -> TrainingResult:
    """Train a SAC expert as ``config`` says, in the folder ``out`` (resuming the run there if it holds one).

    Parameters
    ----------
    config:
        The settings (``config.steps`` counts the steps of a resumed run too).
    out:
        Output folder (see the module docstring).
    progress:
        Show a progress bar.

    Returns
    -------
    TrainingResult
        ``policy_path`` (the best evaluated policy), ``best_return`` and ``evaluations``,
        the rows of ``logs/eval.csv`` (``step``, ``return_mean``, ``return_std``, ``episodes``,
        ``return_min``, ``return_max``).
    """
    from agents.sac import check_action_box, flushed_denormals

    if not isinstance(config, ExpertConfig):
        raise ValueError(f"train_expert takes an ExpertConfig, got {type(config).__name__}")
    env = gym.make(config.env_id)
    for space, name in ((env.observation_space, "observation"), (env.action_space, "action")):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"{config.env_id}: expert training needs a 1-D Box {name} space, got {space}")
    check_action_box(env.action_space, f"{config.env_id}: expert training")
    schedule = Schedule(config.steps, config.eval_every, config.checkpoint_every)
    title = f"{config.env_id} expert ({config.algorithm})"
    with TrainingRun(out, config, schedule, gym.make(config.env_id), config.eval_episodes,
                     eval_seed=10_000 + config.seed, title=title, progress=progress) as run:
        train = _train_sb3 if config.algorithm == "sb3" else _train_soar
        with flushed_denormals():  # long runs slow down on subnormal floats otherwise (agents.sac)
            train(config, env, run)
        return TrainingResult(run.policy_path, run.best_return, list(run.evaluations))


def _check_resumed_step(step: int, folder: Path) -> None:
    recorded = read_progress(folder)["step"]
    if step != recorded:
        raise ValueError(f"the agent is at step {step}, {PROGRESS_FILE} at {recorded}")


# ----------------------------------------------------------------- own back-end
def _train_soar(config: ExpertConfig, env: gym.Env, run: TrainingRun) -> None:
    from agents.sac import SAC

    def restore(folder: Path) -> SAC:
        agent = SAC.load(folder / "agent.pt", env)
        _check_resumed_step(agent.num_timesteps, folder)
        return agent

    agent = run.resume(restore)
    if agent is None:
        agent = SAC(env, hidden=config.hidden, batch_size=config.batch_size, learning_starts=config.learning_starts,
                    seed=config.seed)
    else:
        agent.new_episode(episode_seed(config.seed, agent.num_timesteps))

    def save(staging: Path) -> None:
        agent.new_episode(episode_seed(config.seed, agent.num_timesteps))
        agent.save(staging / "agent.pt", include_buffer=True)

    def after_step(agent: SAC) -> None:
        run.after_step(agent.num_timesteps, lambda: agent.policy(config.env_id), save)

    agent.learn(max(config.steps - agent.num_timesteps, 0), callback=after_step, logger=run.logger,
                log_every=config.log_every)


# ------------------------------------------------------------------ SB3 back-end
_SB3_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
# SB3 records the losses of its last train() call under these names.
_SB3_LOSSES = {"train/critic_loss": "critic_loss", "train/actor_loss": "actor_loss", "train/ent_coef": "alpha"}


def _train_sb3(config: ExpertConfig, env: gym.Env, run: TrainingRun) -> None:
    import torch
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.policies import policy_from_sb3_actor_weights

    model = SB3SAC("MlpPolicy", env, learning_starts=config.learning_starts, batch_size=config.batch_size,
                   policy_kwargs={"net_arch": list(config.hidden)}, seed=config.seed, verbose=0)
    def restore(folder: Path):
        _load_sb3_checkpoint(model, folder)
        _check_resumed_step(model.num_timesteps, folder)
        return model

    if run.resume(restore) is not None:
        model.env.seed(episode_seed(config.seed, model.num_timesteps))  # used by learn()'s first reset
    low = torch.as_tensor(env.action_space.low, dtype=torch.float32)
    high = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    window = MetricWindow("train")
    done = {"step": model.num_timesteps, "updates": model._n_updates}

    def snapshot() -> GaussianPolicy:
        return policy_from_sb3_actor_weights(model.policy.state_dict(), low, high, config.env_id)

    def save(staging: Path) -> None:
        model.env.seed(episode_seed(config.seed, model.num_timesteps))
        model._last_obs = model.env.reset()
        model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)
        _save_sb3_checkpoint(model, staging)

    def after_update() -> None:
        # SB3's callbacks see a step before its transition is stored and learnt from;
        # the start of the next rollout (or the end of learn()) is where it is complete.
        step = model.num_timesteps
        if step == done["step"]:
            return
        done["step"] = step
        window.step()
        if model._n_updates > done["updates"]:
            done["updates"] = model._n_updates
            recorded = model.logger.name_to_value
            losses = {name: recorded[key] for key, name in _SB3_LOSSES.items() if key in recorded}
            # SB3 itself never checks: without this a NaN reward or weight trains on for hours.
            check_finite(losses, "SB3 SAC", step, cause="a reward, observation or weight became NaN or infinite")
            window.add(losses)
        if step % config.log_every == 0:
            window.log(run.logger, step)
        run.after_step(step, snapshot, save)

    class Hook(BaseCallback):
        def _on_rollout_start(self) -> None:
            after_update()

        def _on_step(self) -> bool:
            return True

    remaining = config.steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=Hook(), reset_num_timesteps=False)
        after_update()


def _save_sb3_checkpoint(model, folder: Path) -> None:
    """Everything a resumed SB3 run needs, in files read back without unpickling."""
    import torch

    # Weights and optimisers through SB3 (read back by set_parameters, which loads
    # tensors with weights_only=True); the buffer, counters and random streams in plain
    # files, since SB3's own buffer and metadata files are pickles.
    buffer = model.replay_buffer
    size = buffer.buffer_size if buffer.full else buffer.pos
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {"num_timesteps": model.num_timesteps, "n_updates": model._n_updates, "pos": buffer.pos,
             "full": buffer.full, "log_ent_coef": model.log_ent_coef.item(),
             "numpy_rng": {"pos": int(position), "has_gauss": int(has_gauss),
                           "cached_gaussian": float(cached_gaussian)},
             "action_space_rng": model.action_space.np_random.bit_generator.state}
    model.save(folder / "model.zip")
    np.savez(folder / "buffer.npz", **{k: getattr(buffer, k)[:size] for k in _SB3_BUFFER_FIELDS})
    np.savez(folder / "rng.npz", torch=torch.get_rng_state().numpy(), numpy_keys=keys)
    (folder / "state.json").write_text(json.dumps(state))


def _read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a checkpoint's ``.npz`` file (:func:`agents.untrusted.read_npz`), all required."""
    data = read_npz(path, names)
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"{path.name} lacks the arrays {missing}")
    return data


def _load_sb3_checkpoint(model, folder: Path) -> None:
    """Restore what :func:`_save_sb3_checkpoint` wrote into ``folder`` (``ValueError`` naming it if it cannot)."""
    import torch

    try:
        # Declared sizes first (SB3 then reads the .pth members with weights_only=True).
        with zipfile.ZipFile(folder / "model.zip") as archive:
            check_zip_members(archive, archive.namelist(), str(folder / "model.zip"))
        model.set_parameters(str(folder / "model.zip"), exact_match=True)
        state = json.loads((folder / "state.json").read_text())
        buffer = model.replay_buffer
        data = _read_arrays(folder / "buffer.npz", _SB3_BUFFER_FIELDS)
        for name in _SB3_BUFFER_FIELDS:
            if len(data[name]) > buffer.buffer_size:
                raise ValueError(f"{len(data[name])} transitions for a buffer of {buffer.buffer_size}")
            getattr(buffer, name)[: len(data[name])] = data[name]
        data = _read_arrays(folder / "rng.npz", ("torch", "numpy_keys"))
        torch_rng, numpy_keys = torch.from_numpy(data["torch"]), data["numpy_keys"]
        numpy_rng = state["numpy_rng"]
        np.random.set_state(("MT19937", numpy_keys, numpy_rng["pos"], numpy_rng["has_gauss"],
                             numpy_rng["cached_gaussian"]))
        torch.set_rng_state(torch_rng)
        model.action_space.np_random.bit_generator.state = state["action_space_rng"]
        buffer.pos, buffer.full = int(state["pos"]), bool(state["full"])
        model.num_timesteps, model._n_updates = int(state["num_timesteps"]), int(state["n_updates"])
        log_ent_coef = float(state["log_ent_coef"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile) as error:
        raise ValueError(f"missing entry {error}" if isinstance(error, KeyError) else first_line(error)) from None
    with torch.no_grad():
        model.log_ent_coef.fill_(log_ent_coef)
