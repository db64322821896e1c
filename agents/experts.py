"""Expert training and evaluation for Gymnasium environments.

:func:`train_expert` trains a SAC expert either with stable-baselines3 (the peer users
trust, with rl-zoo3's MuJoCo hyperparameters) or with this toolkit's :class:`agents.sac.SAC`,
evaluates it every ``eval_every`` steps, keeps the best deterministic policy in the
toolkit's policy format, and checkpoints so that an interrupted run resumes where it
stopped without losing its evaluation log. Output folder::

    policy.pt          best policy so far (agents.policies.GaussianPolicy, weights only)
    evaluations.csv    step, return_mean, return_std, episodes, seconds
    evaluations.png    the learning curve (redrawn at every checkpoint)
    run.json           the settings a resumed run must share (env, algorithm, seed, warm-up)
    checkpoint/        what a resumed run needs: weights, optimisers, replay buffer, counters
                       (SB3: model.zip read with weights_only, buffer.npz, state.json; own SAC: agent.pt)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from agents.demonstrations import Demonstrations, collect, load_demonstrations
from agents.policies import GaussianPolicy, Policy, load_policy, policy_from_sb3_actor_weights
from agents.records import read_rows, write_rows
from agents.sac import flushed_denormals

ALGORITHMS = ("sb3", "soar")
# rl-zoo3 (hyperparams/sac.yml) trains every MuJoCo task with SB3's SAC defaults
# (lr 3e-4, buffer 1e6, batch 256, tau 0.005, gamma 0.99, auto entropy, 256x256)
# except for 10k uniformly random warm-up steps.
RL_ZOO_MUJOCO_LEARNING_STARTS = 10_000
EVALUATION_FIELDS = {"step": int, "return_mean": float, "return_std": float, "episodes": int, "seconds": float}


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
    return load_policy(_bundled(env_id, "-policy.pt"))


def evaluate(policy: Policy, env: gym.Env, episodes: int, seed: int = 0, deterministic: bool = True) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes (seeds ``seed, seed + 1, ...``)."""
    return np.array([t.episode_return for t in collect(policy, env, episodes, seed=seed, deterministic=deterministic)])


@dataclass
class TrainingResult:
    """What :func:`train_expert` leaves behind."""

    policy_path: Path
    best_return: float
    evaluations: list[dict]


class _Tracker:
    """Evaluates, logs and keeps the best policy; shared by both training back-ends."""

    def __init__(self, env_id: str, out: Path, eval_every: int, eval_episodes: int, seed: int) -> None:
        self.env_id, self.out = env_id, out
        self.eval_env = gym.make(env_id)
        self.eval_every, self.eval_episodes, self.seed = eval_every, eval_episodes, seed
        self.csv = out / "evaluations.csv"
        self.rows = read_rows(self.csv, EVALUATION_FIELDS, "evaluation") if self.csv.exists() else []
        self.best = max((r["return_mean"] for r in self.rows), default=-np.inf)
        self.start = time.perf_counter() - (self.rows[-1]["seconds"] if self.rows else 0.0)

    def rewind(self, step: int) -> None:
        """Forget evaluations after ``step``, where a resumed run restarts (they will be redone).

        The best return stays: ``policy.pt`` still holds the policy that achieved it.
        """
        kept = [row for row in self.rows if row["step"] <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            write_rows(self.rows, self.csv, EVALUATION_FIELDS)
        self.start = time.perf_counter() - (self.rows[-1]["seconds"] if self.rows else 0.0)

    def plot(self) -> None:
        """``evaluations.png``: the learning curve so far (mean +- std of the evaluation episodes)."""
        if not self.rows:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = np.array([r["step"] for r in self.rows])
        mean = np.array([r["return_mean"] for r in self.rows])
        std = np.array([r["return_std"] for r in self.rows])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(steps, mean, marker=".")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.25)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"deterministic return ({self.eval_episodes} episodes)")
        ax.set_title(f"{self.env_id} expert training (best {self.best:.1f})")
        fig.tight_layout()
        fig.savefig(self.out / "evaluations.png", dpi=110)
        plt.close(fig)

    def maybe_evaluate(self, step: int, make_policy: Callable[[], GaussianPolicy], final: bool = False) -> None:
        """Evaluate every ``eval_every`` steps and at the final step."""
        if step % self.eval_every and not final:
            return
        policy = make_policy()
        returns = evaluate(policy, self.eval_env, self.eval_episodes, seed=10_000 + self.seed)
        self.rows.append({
            "step": step, "return_mean": float(returns.mean()), "return_std": float(returns.std()),
            "episodes": self.eval_episodes, "seconds": round(time.perf_counter() - self.start, 1),
        })
        write_rows(self.rows, self.csv, EVALUATION_FIELDS)
        if returns.mean() > self.best:
            self.best = float(returns.mean())
            policy.save(self.out / "policy.pt.tmp")  # replace, so a crash never leaves half a file
            (self.out / "policy.pt.tmp").replace(self.out / "policy.pt")


def train_expert(
    env_id: str,
    steps: int,
    out: str | Path,
    algorithm: str = "sb3",
    seed: int = 0,
    eval_every: int = 10_000,
    eval_episodes: int = 5,
    checkpoint_every: int = 50_000,
    learning_starts: int = RL_ZOO_MUJOCO_LEARNING_STARTS,
    progress: bool = True,
) -> TrainingResult:
    """Train a SAC expert on ``env_id`` for ``steps`` environment steps (resuming if ``out`` has a checkpoint).

    Parameters
    ----------
    env_id:
        Gymnasium id with ``Box`` observations and actions (e.g. ``"Hopper-v5"``).
    steps:
        Total environment steps, counting those of a resumed run.
    out:
        Output folder (see the module docstring).
    algorithm:
        ``"sb3"`` (stable-baselines3 SAC, rl-zoo3 hyperparameters) or ``"soar"`` (this toolkit's SAC, L = 1,
        same hyperparameters).
    eval_every, eval_episodes:
        Deterministic evaluation schedule; the best evaluated policy is kept as ``policy.pt``.
    checkpoint_every:
        Environment steps between checkpoints (and one at the end).
    learning_starts:
        Uniformly random steps before learning (rl-zoo3: 10k).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if steps < 1 or eval_every < 1 or eval_episodes < 1 or checkpoint_every < 1 or learning_starts < 0:
        raise ValueError("steps, eval_every, eval_episodes and checkpoint_every must be >= 1, learning_starts >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(env_id)
    for space, name in ((env.observation_space, "observation"), (env.action_space, "action")):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"{env_id}: expert training needs a 1-D Box {name} space, got {space}")
    _check_same_run(out, {"env_id": env_id, "algorithm": algorithm, "seed": seed, "learning_starts": learning_starts})
    tracker = _Tracker(env_id, out, eval_every, eval_episodes, seed)
    train = _train_sb3 if algorithm == "sb3" else _train_soar
    with flushed_denormals():  # long runs slow down on subnormal floats otherwise (agents.sac)
        train(env, env_id, steps, out / "checkpoint", tracker, seed, checkpoint_every, learning_starts, progress)
    return TrainingResult(out / "policy.pt", tracker.best, tracker.rows)


def _check_same_run(out: Path, settings: dict) -> None:
    """Record the settings a run cannot change; refuse to resume one made with other settings."""
    path = out / "run.json"
    if path.exists():
        previous = json.loads(path.read_text())
        changed = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} there, {new!r} here" for k, (old, new) in changed.items())
            raise ValueError(f"{out} holds a run with other settings ({details}); pass another --out to start anew")
    else:
        path.write_text(json.dumps(settings, indent=1) + "\n")


@contextlib.contextmanager
def _staged_checkpoint(checkpoint: Path) -> Iterator[Path]:
    """Yield an empty staging folder; once written, swap it in whole (a crash never leaves half a checkpoint)."""
    staging = checkpoint.with_name(checkpoint.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    (staging / "done").touch()
    old = checkpoint.with_name(checkpoint.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if checkpoint.exists():
        checkpoint.rename(old)
    staging.rename(checkpoint)
    shutil.rmtree(old, ignore_errors=True)


def _latest_checkpoint(checkpoint: Path) -> Path | None:
    """The checkpoint folder to resume from (the previous one if a crash hit the swap)."""
    for folder in (checkpoint, checkpoint.with_name(checkpoint.name + ".old")):
        if (folder / "done").exists():
            return folder
    return None


def _progress(total: int, done: int, enabled: bool, env_id: str) -> tqdm:
    return tqdm(total=total, initial=done, disable=not enabled, desc=f"{env_id} expert", unit="step", smoothing=0.05)


# ------------------------------------------------------------------ SB3 back-end
_SB3_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _train_sb3(env, env_id, steps, checkpoint: Path, tracker: _Tracker, seed, checkpoint_every, learning_starts, progress) -> None:
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.callbacks import BaseCallback

    model = SB3SAC("MlpPolicy", env, learning_starts=learning_starts, seed=seed, verbose=0)
    low = torch.as_tensor(env.action_space.low, dtype=torch.float32)
    high = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    resume_from = _latest_checkpoint(checkpoint)
    if resume_from is not None:
        _load_sb3_checkpoint(model, resume_from)
    tracker.rewind(model.num_timesteps)
    bar = _progress(steps, model.num_timesteps, progress, env_id)

    def snapshot() -> GaussianPolicy:
        return policy_from_sb3_actor_weights(model.policy.state_dict(), low, high, env_id)

    class Hook(BaseCallback):
        def _on_step(self) -> bool:
            step = self.model.num_timesteps
            bar.update(1)
            tracker.maybe_evaluate(step, snapshot, final=step >= steps)
            if tracker.rows:
                bar.set_postfix(best=f"{tracker.best:.0f}", last=f"{tracker.rows[-1]['return_mean']:.0f}", refresh=False)
            if step % checkpoint_every == 0 and step < steps:
                # SB3 calls this after env.step but before storing that transition and
                # training on it: model and buffer hold step - 1 steps, and so does the checkpoint.
                _save_sb3_checkpoint(self.model, checkpoint, step - 1)
                tracker.plot()
            return True

    remaining = steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=Hook(), reset_num_timesteps=False)
        _save_sb3_checkpoint(model, checkpoint, model.num_timesteps)
        tracker.plot()
    bar.close()


def _save_sb3_checkpoint(model, checkpoint: Path, num_timesteps: int) -> None:
    # Weights and optimisers through SB3 (read back by set_parameters, which loads
    # tensors with weights_only=True); the buffer and counters in plain files, since
    # SB3's own buffer and metadata files are pickles.
    buffer = model.replay_buffer
    size = buffer.buffer_size if buffer.full else buffer.pos
    state = {"num_timesteps": num_timesteps, "n_updates": model._n_updates, "pos": buffer.pos,
             "full": buffer.full, "log_ent_coef": model.log_ent_coef.item()}
    with _staged_checkpoint(checkpoint) as staging:
        model.save(staging / "model.zip")
        np.savez(staging / "buffer.npz", **{k: getattr(buffer, k)[:size] for k in _SB3_BUFFER_FIELDS})
        (staging / "state.json").write_text(json.dumps(state))


def _load_sb3_checkpoint(model, checkpoint: Path) -> None:
    try:
        model.set_parameters(str(checkpoint / "model.zip"), exact_match=True)
        state = json.loads((checkpoint / "state.json").read_text())
        with np.load(checkpoint / "buffer.npz", allow_pickle=False) as data:
            buffer = model.replay_buffer
            for name in _SB3_BUFFER_FIELDS:
                getattr(buffer, name)[: len(data[name])] = data[name]
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ValueError(f"cannot resume from {checkpoint}: {str(error).strip().splitlines()[0]}") from None
    buffer.pos, buffer.full = int(state["pos"]), bool(state["full"])
    model.num_timesteps, model._n_updates = int(state["num_timesteps"]), int(state["n_updates"])
    with torch.no_grad():
        model.log_ent_coef.fill_(float(state["log_ent_coef"]))


# ----------------------------------------------------------------- own back-end
def _train_soar(env, env_id, steps, checkpoint: Path, tracker: _Tracker, seed, checkpoint_every, learning_starts, progress) -> None:
    from agents.sac import SAC

    agent = SAC(env, learning_starts=learning_starts, seed=seed)
    resume_from = _latest_checkpoint(checkpoint)
    if resume_from is not None:
        agent.load(resume_from / "agent.pt")
    tracker.rewind(agent.num_timesteps)
    bar = _progress(steps, agent.num_timesteps, progress, env_id)

    def hook(agent: SAC) -> None:
        step = agent.num_timesteps
        bar.update(1)
        tracker.maybe_evaluate(step, lambda: agent.policy(env_id), final=step >= steps)
        if step % checkpoint_every == 0 or step >= steps:
            with _staged_checkpoint(checkpoint) as staging:
                agent.save(staging / "agent.pt", include_buffer=True)
            tracker.plot()

    agent.learn(max(steps - agent.num_timesteps, 0), callback=hook)
    bar.close()
