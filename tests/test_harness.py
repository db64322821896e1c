"""The run harness: RunLogger (CSV and TensorBoard), staged checkpoints, config checks, best-policy
keeping, and a training run killed with SIGKILL and resumed."""

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.checkpoints import latest_checkpoint, staged_checkpoint
from agents.config import from_arguments
from agents.experts import ExpertConfig
from agents.harness import Schedule, TrainingRun
from agents.logger import RunLogger, read_log
from soar.cli import build_parser, main
from tests.conftest import ConstantPolicy, RewardIsAction

REPOSITORY = Path(__file__).resolve().parents[1]


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows: every scalar tag's (step, value) pairs, after its purges."""
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def steps(path: Path) -> list[int]:
    return [row["step"] for row in read_log(path)]


# ------------------------------------------------------------------ RunLogger
def test_run_logger_writes_csv_per_namespace_and_tensorboard(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(10, {"train/loss": 1.5, "train/alpha": 0.25, "eval/return_mean": -3.0, "eval/episodes": 5})
        logger.log(20, {"train/loss": 0.1, "train/alpha": np.float32(0.5)})
        logger.log(30, {"train/loss": 0.7, "train/grad_norm": 2.0})  # a new key widens train.csv
    assert (tmp_path / "logs" / "train.csv").read_text().splitlines() == [
        "step,loss,alpha,grad_norm", "10,1.5,0.25,", "20,0.1,0.5,", "30,0.7,,2.0",
    ]
    assert read_log(tmp_path / "logs" / "eval.csv") == [{"step": 10, "return_mean": -3.0, "episodes": 5}]
    assert read_log(tmp_path / "logs" / "train.csv")[2] == {"step": 30, "loss": 0.7, "grad_norm": 2.0}
    shown = scalars(tmp_path / "tensorboard")
    assert set(shown) == {"train/loss", "train/alpha", "train/grad_norm", "eval/return_mean", "eval/episodes"}
    assert [s for s, _ in shown["train/loss"]] == [10, 20, 30]
    np.testing.assert_allclose([v for _, v in shown["train/loss"]], [1.5, 0.1, 0.7], rtol=1e-6)
    assert shown["eval/episodes"] == [(10, 5.0)]


@pytest.mark.parametrize("metrics, step, message", [
    ({"loss": 1.0}, 1, "namespace/name"),
    ({"train/": 1.0}, 1, "namespace/name"),
    ({"train/loss,x": 1.0}, 1, "namespace/name"),
    ({"train/loss": "high"}, 1, "must be a number"),
    ({"train/loss": None}, 1, "must be a number"),
    ({"train/loss": 1.0}, -1, "step must be an integer >= 0"),
    ({"train/loss": 1.0}, 5, "steps must increase"),
])
def test_run_logger_rejects_bad_input(tmp_path, metrics, step, message):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        logger.log(5, {"train/loss": 0.0})
        with pytest.raises(ValueError, match=message):
            logger.log(step, metrics)


@pytest.mark.parametrize("torn", ["", "40,0."])
def test_rewind_drops_later_rows_and_a_torn_line_and_purges_tensorboard(tmp_path, torn):
    with RunLogger(tmp_path) as logger:
        for step in (10, 20, 30):
            logger.log(step, {"train/loss": float(step), "time/elapsed_seconds": step / 10})
        logger.log(30, {"eval/return_mean": 1.0})
    with open(tmp_path / "logs" / "train.csv", "a") as handle:
        handle.write(torn)  # what a kill in the middle of a write leaves
    with RunLogger(tmp_path) as logger:
        logger.rewind(20)
        assert steps(tmp_path / "logs" / "train.csv") == [10, 20]
        assert (tmp_path / "logs" / "eval.csv").read_text() == "step,return_mean\n"
        # The clock continues from the last elapsed time logged up to the checkpoint.
        assert 2.0 <= logger.elapsed_seconds() < 3.0
        logger.log(30, {"train/loss": -30.0})
        logger.log(40, {"train/loss": -40.0})
    assert (tmp_path / "logs" / "train.csv").read_text().splitlines() == [
        "step,loss", "10,10.0", "20,20.0", "30,-30.0", "40,-40.0",
    ]
    shown = scalars(tmp_path / "tensorboard")
    assert shown["train/loss"] == [(10, 10.0), (20, 20.0), (30, -30.0), (40, -40.0)]
    assert shown["time/elapsed_seconds"] == [(10, 1.0), (20, 2.0)]
    assert shown.get("eval/return_mean", []) == []


def test_rewind_refuses_a_malformed_log(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "train.csv").write_text("step,loss\n10,1.0\nten,2.0\n20,3.0\n")
    with pytest.raises(ValueError, match=r"train.csv, line 3: step 'ten'"):
        RunLogger(tmp_path, tensorboard=False).rewind(15)


# --------------------------------------------------------------- checkpoints
def test_staged_checkpoint_swaps_whole_folders(tmp_path):
    folder = tmp_path / "checkpoint"
    assert latest_checkpoint(folder) is None
    for generation in (1, 2):
        with staged_checkpoint(folder) as staging:
            (staging / "state.txt").write_text(str(generation))
        assert latest_checkpoint(folder) == folder and (folder / "state.txt").read_text() == str(generation)
    with pytest.raises(RuntimeError):
        with staged_checkpoint(folder) as staging:
            (staging / "state.txt").write_text("3")
            raise RuntimeError("crash while writing")
    assert (folder / "state.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_a_crash_between_the_two_renames_resumes_from_the_previous_checkpoint(tmp_path):
    folder = tmp_path / "checkpoint"
    with staged_checkpoint(folder) as staging:
        (staging / "state.txt").write_text("old")
    folder.rename(tmp_path / "checkpoint.old")  # the swap's first rename happened, its second did not
    assert latest_checkpoint(folder) == tmp_path / "checkpoint.old"
    with staged_checkpoint(folder) as staging:
        # The previous checkpoint is still complete while the next one is written.
        assert latest_checkpoint(folder) == tmp_path / "checkpoint.old"
        (staging / "state.txt").write_text("new")
    assert latest_checkpoint(folder) == folder and (folder / "state.txt").read_text() == "new"
    assert not (tmp_path / "checkpoint.old").exists()


# ------------------------------------------------- config and best policy
def make_run(out, config=None, **kwargs):
    config = config or ExpertConfig(env_id="Pendulum-v1", steps=400, eval_every=100, checkpoint_every=200)
    schedule = Schedule(config.steps, config.eval_every, config.checkpoint_every)
    return TrainingRun(out, config, schedule, RewardIsAction(), eval_episodes=2, tensorboard=False, **kwargs)


@pytest.mark.parametrize("change, message", [
    ({"seed": 1}, "seed: 0 there, 1 now"),
    ({"algorithm": "soar"}, "algorithm: 'sb3' there, 'soar' now"),
    ({"hidden": (64, 64)}, "hidden: [256, 256] there, [64, 64] now"),
])
def test_a_changed_setting_is_refused_and_a_resumable_one_accepted(tmp_path, change, message):
    config = ExpertConfig(env_id="Pendulum-v1", steps=400)
    with make_run(tmp_path, config) as run:
        run.checkpoint(100, lambda folder: None)
    with pytest.raises(ValueError, match=re.escape(message)):
        make_run(tmp_path, replace(config, **change))
    longer = replace(config, steps=800, checkpoint_every=1000, log_every=10)
    with make_run(tmp_path, longer) as run:
        assert json.loads((tmp_path / "config.json").read_text())["steps"] == 400  # until the checkpoint is read
        run.resume()
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 800


def test_a_folder_with_a_run_but_no_config_is_refused(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        make_run(tmp_path)


def test_resume_restores_the_best_policy_of_the_checkpoint(tmp_path):
    saved = []
    with make_run(tmp_path) as run:
        assert run.resume() is None and run.start_step == 0
        for step, value in ((100, 1.0), (200, 3.0), (300, 5.0)):
            run.after_step(step, lambda: ConstantPolicy(value), lambda folder: saved.append(step))
        assert saved == [200] and run.best_return == pytest.approx(15.0)
        assert json.loads((tmp_path / "policy.pt").read_text()) == 5.0
        # Killed here: step 300 was logged and its better policy kept, but no checkpoint is due before 400.
    with make_run(tmp_path) as run:
        assert run.resume() == tmp_path / "checkpoint" and run.start_step == 200
        assert run.best_return == pytest.approx(9.0)
        assert json.loads((tmp_path / "policy.pt").read_text()) == 3.0
        assert [row["step"] for row in run.evaluations] == [100, 200]
        assert steps(tmp_path / "logs" / "eval.csv") == [100, 200]
        assert (tmp_path / "evaluations.png").stat().st_size > 0
        run.after_step(300, lambda: ConstantPolicy(2.0), lambda folder: None)
        assert run.best_return == pytest.approx(9.0) and json.loads((tmp_path / "policy.pt").read_text()) == 3.0


def test_resume_without_a_checkpoint_forgets_everything_evaluated(tmp_path):
    with make_run(tmp_path) as run:
        run.resume()
        run.after_step(100, lambda: ConstantPolicy(1.0), lambda folder: None)
    with make_run(tmp_path) as run:
        assert run.resume() is None and run.best_return == -np.inf
        assert not (tmp_path / "policy.pt").exists() and steps(tmp_path / "logs" / "eval.csv") == []


def test_resume_without_a_checkpoint_redoes_the_rows_of_step_0(tmp_path):
    # What DAgger and BC log before their first checkpoint: a kill there must not leave a second step-0 row.
    with make_run(tmp_path) as run:
        run.resume()
        run.logger.log(0, {"train/expert_queries": 0})
        run.after_step(100, lambda: ConstantPolicy(1.0), lambda folder: None)  # killed before the checkpoint at 200
    with make_run(tmp_path) as run:
        assert run.resume() is None
        run.logger.log(0, {"train/expert_queries": 0})
    assert steps(tmp_path / "logs" / "train.csv") == [0]
    assert steps(tmp_path / "logs" / "eval.csv") == []


def test_rewind_to_none_forgets_every_row_and_purges_tensorboard_from_step_0(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(0, {"train/loss": 1.0})
        logger.log(10, {"train/loss": 2.0})
    with RunLogger(tmp_path) as logger:
        logger.rewind(None)
        assert logger.elapsed_seconds() < 1.0
        logger.log(0, {"train/loss": 3.0})
    assert (tmp_path / "logs" / "train.csv").read_text().splitlines() == ["step,loss", "0,3.0"]
    assert scalars(tmp_path / "tensorboard")["train/loss"] == [(0, 3.0)]


def test_schedule():
    schedule = Schedule(total_steps=450, eval_every=100, checkpoint_every=200)
    assert schedule.evaluation_steps() == [100, 200, 300, 400, 450]
    assert schedule.evaluation_steps(start=200) == [300, 400, 450]
    assert [s for s in range(1, 451) if schedule.checkpoints_at(s)] == [200, 400, 450]
    with pytest.raises(ValueError, match="eval_every must be an integer >= 1"):
        Schedule(10, 0, 5)


# ---------------------------------------------------- kill -9 and resume
TRAIN = ["expert", "train", "--env", "Pendulum-v1", "--algorithm", "soar", "--steps", "300", "--learning-starts", "50",
         "--eval-every", "50", "--eval-episodes", "1", "--checkpoint-every", "100", "--log-every", "25",
         "--hidden", "32", "32", "--batch-size", "32", "--no-progress"]

# Runs `soar expert train`, stops right after step PAUSE (its logs written, its checkpoint
# not due) and waits there to be killed.
PAUSING_CHILD = r"""
import sys, time
from pathlib import Path
import agents.harness
from soar.cli import main

pause, marker = int(sys.argv[1]), Path(sys.argv[2])
after_step = agents.harness.TrainingRun.after_step

def pausing(self, step, policy, save):
    after_step(self, step, policy, save)
    if step == pause:
        marker.write_text(str(step))
        time.sleep(600)

agents.harness.TrainingRun.after_step = pausing
main(sys.argv[3:])
"""


def start_pausing_run(out: Path, pause: int) -> tuple[subprocess.Popen, Path, Path]:
    marker, output = out.parent / f"{out.name}.paused", out.parent / f"{out.name}.log"
    with open(output, "w") as log:
        command = [sys.executable, "-c", PAUSING_CHILD, str(pause), str(marker), *TRAIN, "--out", str(out)]
        child = subprocess.Popen(command, cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT)
    return child, marker, output


def kill_when_paused(child: subprocess.Popen, marker: Path, output: Path) -> None:
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert child.poll() is None, f"the run ended before its pause:\n{output.read_text()}"
            assert time.monotonic() < deadline, "the run did not reach its pause"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def test_expert_training_killed_with_sigkill_resumes_without_lost_or_repeated_logs(tmp_path):
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    child = start_pausing_run(killed, pause=260)
    main([*TRAIN, "--out", str(straight)])  # an uninterrupted run to compare with, meanwhile
    kill_when_paused(*child)
    # At the kill: the checkpoint of step 200, and logs up to step 260 that a resume must drop.
    assert json.loads((killed / "checkpoint" / "progress.json").read_text())["step"] == 200
    assert steps(killed / "logs" / "train.csv") == [50, 75, 100, 125, 150, 175, 200, 225, 250]
    assert steps(killed / "logs" / "eval.csv") == [50, 100, 150, 200, 250]
    assert [s for s, _ in scalars(killed / "tensorboard")["eval/return_mean"]] == [50, 100, 150, 200, 250]
    with open(killed / "logs" / "train.csv", "a") as handle:
        handle.write("27")  # as if the kill had torn the next line

    main([*TRAIN, "--out", str(killed)])  # the same command resumes

    schedule = Schedule(300, 50, 100)
    for out in (killed, straight):
        assert steps(out / "logs" / "eval.csv") == schedule.evaluation_steps() == list(range(50, 301, 50))
        assert steps(out / "logs" / "train.csv") == list(range(50, 301, 25))
        assert steps(out / "logs" / "time.csv") == list(range(25, 301, 25))
        shown = scalars(out / "tensorboard")
        assert [s for s, _ in shown["eval/return_mean"]] == list(range(50, 301, 50))
        assert [s for s, _ in shown["train/critic_loss"]] == list(range(50, 301, 25))
        assert [s for s, _ in shown["time/elapsed_seconds"]] == list(range(25, 301, 25))
    assert len(list((killed / "tensorboard").iterdir())) == 2  # the killed session's file and the resumed one's

    # The resumed run continued from the checkpoint's step count, weights and random streams:
    # from step 200 on it logged, kept and saved exactly what the uninterrupted run did.
    for name in ("train", "eval"):
        assert read_log(killed / "logs" / f"{name}.csv") == read_log(straight / "logs" / f"{name}.csv")
    killed_tb, straight_tb = scalars(killed / "tensorboard"), scalars(straight / "tensorboard")
    for tag in straight_tb:
        if not tag.startswith("time/"):
            assert killed_tb[tag] == straight_tb[tag], tag
    for name in ("policy.pt", "checkpoint/agent.pt"):
        a, b = (torch.load(out / name, weights_only=True) for out in (killed, straight))
        assert_same_state(a, b, name)
    best = max(row["return_mean"] for row in read_log(straight / "logs" / "eval.csv"))
    assert json.loads((killed / "checkpoint" / "progress.json").read_text())["best_return"] == best
    assert (killed / "checkpoint" / "policy.pt").read_bytes() == (killed / "policy.pt").read_bytes()
    assert (killed / "evaluations.png").stat().st_size > 0
    assert not [p.name for p in killed.iterdir() if p.name.endswith((".tmp", ".old"))]


def assert_same_state(a, b, where):
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=where)
    else:
        assert a == b, where


def test_cli_expert_train_options_come_from_expert_config():
    args = build_parser().parse_args(["expert", "train", "--env", "Hopper-v5", "--steps", "1e6", "--out", "x"])
    assert from_arguments(ExpertConfig, args) == ExpertConfig(env_id="Hopper-v5", steps=1_000_000)
    args = build_parser().parse_args(["expert", "train", "--env", "Hopper-v5", "--steps", "200k", "--out", "x",
                                      "--hidden", "64", "32", "--learning-starts", "0", "--algorithm", "soar"])
    assert from_arguments(ExpertConfig, args) == ExpertConfig(env_id="Hopper-v5", steps=200_000, hidden=(64, 32),
                                                              learning_starts=0, algorithm="soar")


def test_a_setting_added_later_counts_as_its_default_when_resuming(tmp_path):
    import dataclasses as dc

    from agents.config import check_resumable, setting, write_config

    @dc.dataclass(frozen=True)
    class Old:
        seed: int = setting(0, help="seed")

    @dc.dataclass(frozen=True)
    class New:
        seed: int = setting(0, help="seed")
        width: int = setting(64, help="added later")

    Old.__name__ = New.__name__ = "Settings"
    write_config(tmp_path / "config.json", Old(seed=3))
    check_resumable(tmp_path / "config.json", New(seed=3))
    with pytest.raises(ValueError, match="width: 64 there, 32 now"):
        check_resumable(tmp_path / "config.json", New(seed=3, width=32))
