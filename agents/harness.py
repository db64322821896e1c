"""The run harness: one output folder per training run, resumable after a kill at any moment.

A :class:`TrainingRun` owns everything around a training loop that is not the
algorithm itself::

    OUT/config.json      the run's settings (agents.config); a resumed run must share them
    OUT/policy.pt        the best evaluated policy so far (replaced atomically)
    OUT/logs/*.csv       one CSV per metric namespace (agents.logger.RunLogger)
    OUT/tensorboard/     TensorBoard event files of the same metrics
    OUT/evaluations.png  the learning curve, redrawn at every checkpoint
    OUT/checkpoint/      the latest complete checkpoint (agents.checkpoints): what the
                         algorithm saves, plus progress.json (step, best return, elapsed
                         seconds) and a copy of policy.pt as of that step

The training loop calls :meth:`TrainingRun.resume` once (it returns the checkpoint
folder to restore the algorithm from) and :meth:`TrainingRun.after_step` after every
environment step, which evaluates and checkpoints on the :class:`Schedule`. At each
checkpoint the logs are fsynced before the checkpoint is swapped in; on resume they are
rewound to the checkpoint's step and ``policy.pt`` and the best return are restored
from the checkpoint, so logs, best return and ``policy.pt`` all describe the same
steps, none lost and none twice.

No torch here: policies and algorithms are reached only through their methods.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

import numpy as np
from tqdm.auto import tqdm

from agents import plotting
from agents.checkpoints import atomic_output, copy_file_atomic, latest_checkpoint, staged_checkpoint
from agents.config import check_resumable, write_config
from agents.interface import Policy
from agents.logger import RunLogger
from agents.run_folder import RunLock, first_line, prepare_output_dir
from agents.rollout import evaluate

PROGRESS_FILE = "progress.json"
EVAL_KEYS = ("return_mean", "return_std", "episodes", "return_min", "return_max")
T = TypeVar("T")


def _folder(folder: Path) -> Path:
    return folder


class SavablePolicy(Policy, Protocol):
    """A policy that can be written to a file (e.g. :class:`agents.policies.GaussianPolicy`)."""

    def save(self, path: str | Path) -> None:
        """Write the policy to ``path``."""


@dataclass(frozen=True)
class Schedule:
    """When a run evaluates and checkpoints: every ``*_every`` steps, and both at ``total_steps``.

    Parameters
    ----------
    total_steps:
        The run's last environment step.
    eval_every, checkpoint_every:
        Environment steps between evaluations and between checkpoints.
    """

    total_steps: int
    eval_every: int
    checkpoint_every: int

    def __post_init__(self) -> None:
        for name in ("total_steps", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    def evaluates_at(self, step: int, previous: int | None = None) -> bool:
        """Whether a multiple of ``eval_every`` lies in ``(previous, step]`` (``previous`` defaults to
        ``step - 1``: loops that count more than one step at a time still evaluate), or the run ends."""
        return self._crosses(self.eval_every, step, previous)

    def checkpoints_at(self, step: int, previous: int | None = None) -> bool:
        return self._crosses(self.checkpoint_every, step, previous)

    def _crosses(self, every: int, step: int, previous: int | None) -> bool:
        previous = step - 1 if previous is None else previous
        return step // every > previous // every or (previous < self.total_steps <= step)

    def evaluation_steps(self, start: int = 0) -> list[int]:
        """The steps after ``start`` at which an uninterrupted run evaluates."""
        steps = set(range(self.eval_every, self.total_steps + 1, self.eval_every)) | {self.total_steps}
        return sorted(step for step in steps if step > start)


def episode_seed(seed: int, step: int) -> int:
    """Reset seed of the episode a run starts after its checkpoint at ``step``.

    Checkpoints end the current episode (an environment's state cannot be saved in
    general) and the next one starts from this seed, in the uninterrupted run and in
    a run resumed from that checkpoint alike: both continue identically.
    """
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


class TrainingRun:
    """Config, logs, evaluations, best policy and checkpoints of one training run in ``out``.

    Parameters
    ----------
    out:
        The run's folder (created if missing; resumed if it holds a run).
    config:
        The run's settings, a dataclass built with :func:`agents.config.setting`:
        written to ``config.json``, and checked against it when resuming (a changed
        setting not marked ``resumable`` raises ``ValueError`` naming it). In a folder
        with a checkpoint it replaces ``config.json`` only once :meth:`resume` has read
        that checkpoint.
    schedule:
        When to evaluate and checkpoint.
    eval_env, eval_episodes, eval_seed:
        Evaluation: ``eval_episodes`` deterministic episodes of ``eval_env`` with reset
        seeds ``eval_seed, eval_seed + 1, ...`` (:func:`agents.rollout.evaluate`).
    reference_return:
        The expert's return, if known: evaluations also log ``eval/expert_fraction``
        and the learning curve draws it as a line.
    title:
        Title of the learning curve.
    progress:
        Show a progress bar.
    tensorboard:
        Also log to TensorBoard event files.
    """

    def __init__(
        self,
        out: str | Path,
        config: Any,
        schedule: Schedule,
        eval_env: Any,
        eval_episodes: int,
        eval_seed: int = 0,
        reference_return: float | None = None,
        title: str = "",
        progress: bool = False,
        tensorboard: bool = True,
    ) -> None:
        self.out = prepare_output_dir(out, option="run folder")
        # Held until close(): a second process on this folder is refused instead of interleaving its writes.
        self._lock = RunLock(self.out).acquire()
        try:
            self._open(config, schedule, eval_env, eval_episodes, eval_seed, reference_return, title, progress,
                       tensorboard)
        except BaseException:  # __exit__ never runs when __init__ raises: release the folder here
            self._lock.release()
            raise

    def _open(self, config: Any, schedule: Schedule, eval_env: Any, eval_episodes: int, eval_seed: int,
              reference_return: float | None, title: str, progress: bool, tensorboard: bool) -> None:
        config_path = self.out / "config.json"
        resumable = config_path.exists() and latest_checkpoint(self.out / "checkpoint") is not None
        if resumable:
            # Only a checkpoint makes the folder a run to continue: a run that stopped before its first one
            # (a bad argument found late, a crash) left nothing to resume and must not block a corrected run.
            check_resumable(config_path, config)
        elif not config_path.exists():
            leftovers = [n for n in ("checkpoint", "checkpoint.old", "logs", "policy.pt") if (self.out / n).exists()]
            if leftovers:
                raise ValueError(
                    f"{self.out} holds {', '.join(leftovers)} but no config.json (a run of an older version?); "
                    "choose another output folder"
                )
        # Rewritten on resume too, so that it records changed resumable settings (a longer budget), but only
        # once resume() has read the checkpoint: a resume that fails changes nothing in the folder.
        self._config = (config_path, config)
        if not resumable:
            self._write_config()
        self.schedule = schedule
        self.eval_env, self.eval_episodes, self.eval_seed = eval_env, int(eval_episodes), int(eval_seed)
        self.title = title
        self.reference_return = reference_return
        self.policy_path = self.out / "policy.pt"
        self.checkpoint_dir = self.out / "checkpoint"
        self.logger = RunLogger(self.out, tensorboard=tensorboard)
        self.best_return = -math.inf
        self.evaluations: list[dict[str, float]] = []
        self.start_step = 0
        self._progress = progress
        self._bar: tqdm | None = None

    def _write_config(self) -> None:
        write_config(*self._config)

    # ------------------------------------------------------------ resume
    def resume(self, restore: Callable[[Path], T] = _folder) -> T | None:
        """Rewind the run to its latest complete checkpoint and restore the algorithm from it.

        Parameters
        ----------
        restore:
            Called with the checkpoint folder; reads the algorithm's state from it and
            returns the restored algorithm (default: returns the folder). It must not
            change anything the caller keeps if it raises.

        Returns what ``restore`` returned, or ``None`` when there is no checkpoint (start
        at step 0). The checkpoint is read and ``restore`` runs before anything in the run
        folder changes: a corrupt or tampered checkpoint raises ``ValueError("cannot
        resume from PATH: REASON")`` and leaves logs and ``policy.pt`` as they were. Then
        logs after the checkpoint's step are dropped, ``policy.pt`` is the checkpoint's
        copy, the best return is the best evaluation the log holds (none without a
        ``policy.pt``, so the next evaluation writes one) and the elapsed-time clock
        continues from its value there. :attr:`start_step` is the step the restored
        algorithm must be at.
        """
        folder = latest_checkpoint(self.checkpoint_dir)
        state = {"step": 0, "best_return": None, "elapsed_seconds": 0.0}
        restored = None
        if folder is not None:
            state = read_progress(folder)
            try:
                restored = restore(folder)
            except Exception as error:  # corrupt, truncated, tampered or unsafe (weights_only refuses code)
                raise ValueError(f"cannot resume from {folder}: {first_line(error)}") from None
        self._write_config()
        self.start_step = state["step"]
        kept = folder / "policy.pt" if folder is not None else None
        if kept is not None and kept.exists():
            copy_file_atomic(kept, self.policy_path)
        else:
            self.policy_path.unlink(missing_ok=True)  # evaluated after the checkpoint: redone
        # Without a checkpoint even the rows of step 0 are redone (a run killed before its first one).
        self.logger.rewind(self.start_step if folder is not None else None, elapsed_seconds=state["elapsed_seconds"])
        self.evaluations = [
            {"step": row["step"], **{k: row[k] for k in (*EVAL_KEYS, "expert_fraction") if k in row}}
            for row in self.logger.read("eval")
        ]
        self.best_return = -math.inf
        if self.policy_path.exists():
            logged = [row["return_mean"] for row in self.evaluations if "return_mean" in row]
            if logged:
                self.best_return = max(logged)
            elif state["best_return"] is not None:  # a log lost with its folder: the checkpoint's record
                self.best_return = state["best_return"]
        return restored

    # ------------------------------------------------------------ the loop
    def after_step(
        self, step: int, policy: Callable[[], SavablePolicy], save: Callable[[Path], None],
        previous: int | None = None,
    ) -> None:
        """Evaluate and checkpoint if the schedule says so at ``step`` (call after every environment step).

        Parameters
        ----------
        step:
            The number of environment steps done, all of them processed (stored, learnt from).
        policy:
            Returns the deterministic policy to evaluate (called only when evaluating).
        save:
            Writes the algorithm's state into the folder it is given (only when checkpointing).
        previous:
            The step of the previous call, when a loop counts several steps at once
            (default ``step - 1``).
        """
        if self._bar is None:  # created at the first step, so that its rate leaves out the setup
            self._bar = tqdm(total=self.schedule.total_steps, initial=self.start_step, disable=not self._progress,
                             desc=self.title or "training", unit="step", smoothing=0.05)
        self._bar.update(step - self._bar.n)
        if self.schedule.evaluates_at(step, previous):
            row = self.evaluate(step, policy())
            self._bar.set_postfix(best=f"{self.best_return:.0f}", last=f"{row['return_mean']:.0f}", refresh=False)
        if self.schedule.checkpoints_at(step, previous):
            self.checkpoint(step, save)

    def evaluate(self, step: int, policy: SavablePolicy) -> dict[str, float]:
        """Evaluate ``policy``, log ``eval/...`` at ``step`` and keep it as ``policy.pt`` if it is the best so far."""
        returns = evaluate(policy, self.eval_env, self.eval_episodes, seed=self.eval_seed, deterministic=True)
        row = {"step": int(step), "return_mean": float(returns.mean()), "return_std": float(returns.std()),
               "episodes": len(returns), "return_min": float(returns.min()), "return_max": float(returns.max())}
        if self.reference_return:
            row["expert_fraction"] = row["return_mean"] / self.reference_return
        self.logger.log(step, {f"eval/{key}": value for key, value in row.items() if key != "step"})
        self.evaluations.append(row)
        if row["return_mean"] > self.best_return:
            self.best_return = row["return_mean"]
            with atomic_output(self.policy_path) as temporary:
                policy.save(temporary)
        return row

    def checkpoint(self, step: int, save: Callable[[Path], None]) -> None:
        """Write a checkpoint at ``step``: ``save(folder)`` for the algorithm, then the harness's own state."""
        with staged_checkpoint(self.checkpoint_dir) as staging:
            save(staging)
            best = self.best_return if math.isfinite(self.best_return) else None
            progress = {"step": int(step), "best_return": best, "elapsed_seconds": self.logger.elapsed_seconds()}
            (staging / PROGRESS_FILE).write_text(json.dumps(progress) + "\n")
            if self.policy_path.exists():
                shutil.copyfile(self.policy_path, staging / "policy.pt")
            # Before the swap: a checkpoint never refers to log rows that could still be lost.
            self.logger.flush()
        self.plot()

    def plot(self) -> None:
        """``evaluations.png``: the learning curve so far, shaded with mean +- std of the evaluation
        episodes clipped to their lowest and highest return (a band past every episode's return would
        show returns the policy never had); the legend, right of the axes, says so."""
        if not self.evaluations:
            return
        steps = np.array([r["step"] for r in self.evaluations])
        mean = np.array([r["return_mean"] for r in self.evaluations])
        std = np.array([r["return_std"] for r in self.evaluations])
        # Logs written before return_min/return_max existed leave those points unclipped (NaN).
        lowest = np.array([r.get("return_min", np.nan) for r in self.evaluations])
        highest = np.array([r.get("return_max", np.nan) for r in self.evaluations])
        figure, axes = plotting.new_figure(width=8, height=3.5)
        axis = axes[0, 0]
        line, = axis.plot(steps, mean, marker=".", label="mean return")
        low, high = plotting.clipped_band(mean, std, lowest, highest)
        plotting.draw_band(axis, steps, low, high, line.get_color(), alpha=0.25)
        if self.reference_return:
            axis.axhline(self.reference_return, color="black", linestyle="--", linewidth=1, label="expert")
        episodes = [int(r["episodes"]) for r in self.evaluations]
        clipped = "their lowest..highest return" if not np.isnan(lowest).all() else ""
        text = plotting.band_text(f"mean ± std of {plotting.count_text(episodes, 'episodes')}", clipped)
        plotting.legend_outside(axis, extra=[plotting.band_handle(text)])
        axis.set_xlabel("environment steps")
        axis.set_ylabel("deterministic return")
        axis.set_title(f"{self.title} (best {self.best_return:.1f})")
        plotting.save_figure(figure, self.out / "evaluations.png")

    def close(self) -> None:
        """Flush and close the logs and the progress bar; release the run folder."""
        try:
            if self._bar is not None:
                self._bar.close()
            self.logger.close()
        finally:
            self._lock.release()

    def __enter__(self) -> "TrainingRun":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_progress(folder: Path) -> dict:
    """``progress.json`` of the checkpoint ``folder``: step, best return, elapsed seconds (``ValueError`` if unreadable)."""
    path = Path(folder) / PROGRESS_FILE
    try:
        state = json.loads(path.read_text())
        step, best, elapsed = state["step"], state["best_return"], state["elapsed_seconds"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step {step!r}")
        best = None if best is None else float(best)
        elapsed = float(elapsed)
        if (best is not None and not math.isfinite(best)) or not math.isfinite(elapsed) or elapsed < 0:
            raise ValueError(f"best return {best!r}, elapsed seconds {elapsed!r}")
        return {"step": step, "best_return": best, "elapsed_seconds": elapsed}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"cannot resume from {path.parent}: unreadable {path.name} ({error})") from None
