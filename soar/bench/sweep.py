"""Run a benchmark sweep (``soar bench``): check the experts, run the selection stage, choose, run the rest.

Output folder::

    bench.json          the sweep (a second command on the folder must ask for the same one)
    selection.json      per (env, method, L > 1): every clip's final returns on the selection seeds, the choice
    failed.json         runs that failed twice (absent when none did)
    runs/ENV/RUN/       one soar train run folder each, RUN = METHOD-L{critics}[-clip{clip}]-s{seed}
    runs/ENV/RUN.log    its output

``export_records`` copies what the report reads, and what shows each run finished, without
checkpoint weights or replay buffers: a folder small enough to publish or commit, that
``soar report`` reads and the same ``soar bench`` command completes (on another machine too).

The evaluation runs that need no chosen clip (L = 1, or a sweep of one clip) run beside the
selection runs, in the same pool. Interrupted, the same command resumes: finished runs are
skipped, unfinished ones resume from their last checkpoint (``soar train --resume``). A run
that fails is retried once (resuming); one that fails again is listed in ``failed.json`` and
makes the command fail, naming it, after every other run has finished. A group (environment, method, L > 1) whose
selection runs did not all finish chooses no clip and runs no evaluation seed until a later
command completes them; the other groups go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.checkpoints import copy_file_atomic, write_text_atomic
from agents.logger import read_log
from agents.run_folder import RunLock, prepare_output_dir
from soar.bench import launch
from soar.bench.plan import (
    RunSpec, Sweep, clip_text, evaluation_runs, selection_runs, train_command, unchosen_groups,
)

#: SAC steps per second of stable-baselines3 on one core here (README, "SAC with L critic pairs").
SB3_STEPS_PER_SECOND = 90


class SweepFailed(RuntimeError):
    """Runs failed twice; the message names them and their logs."""


def run_folder(out: Path, run: RunSpec) -> Path:
    return Path(out) / "runs" / run.name


def is_finished(out: Path, run: RunSpec) -> bool:
    """Whether ``run``'s folder holds a run that reached its steps (and wrote its final policy)."""
    folder = run_folder(out, run)
    progress = folder / "checkpoint" / "progress.json"
    return (folder / "final_policy.pt").exists() and progress.exists() and \
        json.loads(progress.read_text())["step"] >= run.steps


def final_return(folder: Path) -> float:
    """The last deterministic evaluation's mean return of a finished run."""
    rows = read_log(Path(folder) / "logs" / "eval.csv")
    if not rows:
        raise ValueError(f"{folder} holds no evaluation")
    return float(rows[-1]["return_mean"])


def check_experts(sweep: Sweep) -> None:
    """``ValueError`` naming every environment without demonstrations, and how to make them here."""
    from agents.experts import BUNDLED_ENVS

    missing = [env_id for env_id in sweep.envs if sweep.demos_for(env_id) == "bundled" and env_id not in BUNDLED_ENVS]
    if missing:
        steps = 1_000_000
        hours = steps / SB3_STEPS_PER_SECOND / 3600
        lines = [f"no bundled expert for {', '.join(missing)} (bundled: {', '.join(BUNDLED_ENVS)}). For each, train "
                 f"one (about {hours:.0f} h per million SAC steps on one core here), roll it out, and pass the file:"]
        for env_id in missing:
            lines.append(f"  soar expert train --env {env_id} --steps {steps} --out experts/{env_id} && "
                         f"soar expert rollout --policy experts/{env_id}/policy.pt --episodes 16 "
                         f"--out experts/{env_id}.npz, then --demos {env_id}=experts/{env_id}.npz;")
        raise ValueError("\n".join(lines))


def _open_folder(out: Path, sweep: Sweep) -> None:
    stored = out / "bench.json"
    if stored.exists():
        try:
            previous = Sweep.from_json(json.loads(stored.read_text()))
        except (json.JSONDecodeError, ValueError) as error:
            raise ValueError(f"{stored} is not a sweep of soar bench ({error})") from None
        if previous != sweep:
            changed = [k for k, v in sweep.to_json().items() if previous.to_json()[k] != v]
            raise ValueError(f"{out} holds another sweep (it differs in {', '.join(changed)}); rerun the same "
                             "command to resume it, or choose another --out")
    else:
        write_text_atomic(stored, json.dumps(sweep.to_json(), indent=1) + "\n")


def _run_stage(out: Path, sweep: Sweep, runs: list[RunSpec], launcher: str, address: str | None,
               workers: int | None, progress: bool) -> list[str]:
    """Run the unfinished ``runs``, retrying each failure once; the names of those that failed twice."""
    def jobs(pending: list[RunSpec]) -> list[launch.Job]:
        return [launch.Job(run.name, tuple(train_command(run, str(run_folder(out, run)), sweep.budget)),
                           str(run_folder(out, run)) + ".log") for run in pending]

    def execute(pending: list[RunSpec]) -> list[RunSpec]:
        if not pending:
            return []
        if launcher == "ray":
            status = launch.run_ray(jobs(pending), address or "local", progress)
        else:
            status = launch.run_local(jobs(pending), workers, progress)
        return [run for run in pending if status[run.name] != 0 or not is_finished(out, run)]

    failed = execute([run for run in runs if not is_finished(out, run)])
    if failed:
        print(f"soar bench: {len(failed)} run(s) failed, retrying once: {', '.join(r.name for r in failed)}",
              flush=True)
        failed = execute(failed)
    return [run.name for run in failed]


def choose_clips(out: Path, sweep: Sweep) -> dict[tuple[str, str, int], float]:
    """Per (env, method, L > 1) whose selection runs all finished, the clip with the best mean final return on
    the selection seeds (ties: the first given); writes ``selection.json``. Only selection runs are read."""
    runs = selection_runs(sweep)
    incomplete = {run.group for run in runs if not is_finished(out, run)}
    finals: dict[tuple[str, str, int], dict[float, list[float]]] = {}
    for run in runs:
        if run.group not in incomplete:  # a group chooses once all its selection runs finished
            finals.setdefault(run.group, {}).setdefault(run.std_clip, []).append(final_return(run_folder(out, run)))
    chosen = {group: max(sweep.std_clips, key=lambda clip: (np.mean(by_clip[clip]), -sweep.std_clips.index(clip)))
              for group, by_clip in finals.items()}
    record = [{"env": env_id, "method": method, "critics": critics, "chosen": chosen[(env_id, method, critics)],
               "selection_seeds": sorted({r.seed for r in runs}),
               "final_returns": {clip_text(clip): values for clip, values in by_clip.items()}}
              for (env_id, method, critics), by_clip in finals.items()]
    write_text_atomic(Path(out) / "selection.json", json.dumps(record, indent=1) + "\n")
    return chosen


def read_choices(out: Path) -> dict[tuple[str, str, int], float]:
    """The clips ``selection.json`` records (empty if the sweep chose none)."""
    path = Path(out) / "selection.json"
    if not path.exists():
        return {}
    return {(row["env"], row["method"], int(row["critics"])): float(row["chosen"]) for row in json.loads(path.read_text())}


@dataclass(frozen=True)
class SweepResult:
    """The evaluation runs of a finished sweep and the clips chosen for them."""

    runs: list[RunSpec]
    chosen: dict[tuple[str, str, int], float]


def run_sweep(sweep: Sweep, out: str | Path, launcher: str = "local", address: str | None = None,
              workers: int | None = None, progress: bool = True) -> SweepResult:
    """Run (or resume) ``sweep`` in ``out``; see the module docstring."""
    if launcher not in ("local", "ray"):
        raise ValueError(f"launcher must be 'local' or 'ray', got {launcher!r}")
    check_experts(sweep)
    out = prepare_output_dir(out, option="--out")
    lock = RunLock(out).acquire()
    try:
        _open_folder(out, sweep)
        # The evaluation runs that wait for no choice (L = 1) share the first stage's pool, so no core idles
        # while the last selection runs finish. A group whose selection runs failed is held back; every
        # other group goes on to its evaluation runs.
        first = selection_runs(sweep) + evaluation_runs(sweep, {})
        failed = _run_stage(out, sweep, first, launcher, address, workers, progress)
        chosen = choose_clips(out, sweep) if sweep.selects else {}
        runs = evaluation_runs(sweep, chosen)
        failed += _run_stage(out, sweep, [run for run in runs if run not in first], launcher, address, workers,
                             progress)
        if failed:
            _record_failures(out, failed)
            held = ", ".join(f"{e} {m} L={c}" for e, m, c in unchosen_groups(sweep, chosen))
            raise SweepFailed(_failure_message(out, failed) + (f"; no clip chosen (so not run) for {held}" if held
                                                               else ""))
        (out / "failed.json").unlink(missing_ok=True)
        return SweepResult(runs, chosen)
    finally:
        lock.release()


def _record_failures(out: Path, names: list[str]) -> None:
    write_text_atomic(out / "failed.json", json.dumps(sorted(names), indent=1) + "\n")


def _failure_message(out: Path, names: list[str]) -> str:
    logs = ", ".join(str(out / "runs" / name) + ".log" for name in names)
    return (f"{len(names)} run(s) failed twice: {', '.join(names)} (logs: {logs}); the other runs are kept, "
            "and the same command retries these")


#: What a finished run's record holds (paths in its folder): enough for ``is_finished`` and the report. The two
#: files ``is_finished`` reads come last, so a copy stopped part way leaves a run the record counts unfinished.
RECORD_FILES = ("config.json", "expert.json", "logs/eval.csv", "logs/train.csv", "logs/cost.csv", "logs/time.csv",
                "final_policy.pt", "checkpoint/progress.json")


def export_records(out: str | Path, dest: str | Path) -> tuple[list[str], list[str]]:
    """Copy the record of the sweep in ``out`` to ``dest``: ``bench.json``, ``selection.json``, ``failed.json``
    and, per finished run, ``RECORD_FILES`` and its log. Unfinished runs are left out (a checkpoint without its
    weights could not resume), so ``soar bench`` on ``dest`` runs them from the start.

    :param out: a folder written by ``soar bench``
    :param dest: the record's folder; one holding another sweep is refused, one holding this sweep is updated
    :return: the names of the runs copied and of those left out
    """
    out, dest = Path(out).resolve(), Path(dest).resolve()
    if not (out / "bench.json").is_file():
        raise ValueError(f"{out} holds no benchmark sweep (no bench.json)")
    if dest == out or out in dest.parents:
        raise ValueError(f"the record's folder {dest} must lie outside the sweep's folder {out}")
    sweep = Sweep.from_json(json.loads((out / "bench.json").read_text()))
    if (dest / "bench.json").exists() and (dest / "bench.json").read_text() != (out / "bench.json").read_text():
        raise ValueError(f"{dest} holds the record of another sweep; choose another folder")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("bench.json", "selection.json", "failed.json"):
        if (out / name).exists():
            copy_file_atomic(out / name, dest / name)
    copied, left = [], []
    for run in selection_runs(sweep) + evaluation_runs(sweep, read_choices(out)):
        if not is_finished(out, run):
            left.append(run.name)
            continue
        source, target = run_folder(out, run), run_folder(dest, run)
        for relative in RECORD_FILES:
            if (source / relative).exists():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                copy_file_atomic(source / relative, target / relative)
        log = source.parent / (source.name + ".log")
        if log.exists():
            copy_file_atomic(log, target.parent / log.name)
        copied.append(run.name)
    return copied, left
