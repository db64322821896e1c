"""No lost work: files replaced whole, checkpoints that survive crashes, honest resumes, locked run folders,
outputs checked before compute, Ctrl-C and full disks handled, corrupt checkpoints refused untouched."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import checkpoints
from agents.checkpoints import latest_checkpoint, staged_checkpoint
from agents.config import write_config
from agents.demonstrations import Demonstrations, Trajectory, save_demonstrations
from agents.experts import ExpertConfig
from agents.harness import Schedule, TrainingRun
from agents.interface import PolicyProfile
from agents.logger import read_log
from agents.records import write_rows
from agents.run_folder import RunLock, prepare_output_dir, prepare_output_file
from agents.sac import SAC
from agents.tabular_demonstrations import TabularDemonstrations
from soar.cli import main as soar_main
from mail.cli import main as mail_main
from tests.conftest import ConstantPolicy, RewardIsAction

REPOSITORY = Path(__file__).resolve().parents[1]


def make_run(out, **kwargs):
    config = ExpertConfig(env_id="Pendulum-v1", steps=400, eval_every=100, checkpoint_every=200)
    return TrainingRun(out, config, Schedule(config.steps, config.eval_every, config.checkpoint_every),
                       RewardIsAction(), eval_episodes=1, tensorboard=False, **kwargs)


# ------------------------------------------------------- files are replaced whole
def _disk_full_midway(target_argument):
    """A writer that puts half a file where it was told to write, then fails as a full disk does."""

    def write(*args, **kwargs):
        target = args[target_argument] if len(args) > target_argument else None
        if hasattr(target, "write"):
            target.write(b"half a file")
        else:
            Path(target).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def _small_sac():
    return SAC(gym.make("Pendulum-v1"), hidden=(8, 8), batch_size=4, learning_starts=4, buffer_size=16)


def _writers(tmp_path):
    trajectory = Trajectory(np.zeros((3, 2), np.float32), np.zeros((2, 1), np.float32), np.ones(2, np.float32),
                            terminated=False, truncated=True)
    profile = PolicyProfile([np.full((2, 2), 0.5), np.full((2, 3), 1 / 3)])
    policy = _small_sac().policy("Pendulum-v1")
    return {
        "config.json": (lambda p: write_config(p, ExpertConfig(env_id="Pendulum-v1", steps=10)), "json", "dumps", 0),
        "policy.pt": (policy.save, "torch", "save", 1),
        "agent.pt": (lambda p: _small_sac().save(p), "torch", "save", 1),
        "demos.npz": (lambda p: save_demonstrations(Demonstrations([trajectory], "Pendulum-v1"), p),
                      "numpy", "savez_compressed", 0),
        "tabular.npz": (TabularDemonstrations(np.zeros(2, np.int64), np.zeros((2, 1), np.int64)).save,
                        "numpy", "savez_compressed", 0),
        "rows.csv": (lambda p: write_rows([{"a": 1}], p, {"a": int}), None, None, None),
        "profile.npz": (profile.save, "numpy", "savez_compressed", 0),
    }


@pytest.mark.parametrize("name", ["config.json", "policy.pt", "agent.pt", "demos.npz", "tabular.npz", "rows.csv",
                                  "profile.npz"])
def test_a_write_that_fails_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch, name):
    write, module_name, function, target_argument = _writers(tmp_path)[name]
    path = tmp_path / name
    write(path)
    before = path.read_bytes()
    if module_name == "json":
        monkeypatch.setattr(Path, "write_text", lambda self, text, *a, **k: (
            self.write_bytes(b"half"), (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))))
    elif module_name is None:
        import csv

        def fail(self, rows):
            self.writer.writerow(["half"])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(csv.DictWriter, "writerows", fail)
    else:
        module = {"torch": torch, "numpy": np}[module_name]
        monkeypatch.setattr(module, function, _disk_full_midway(target_argument))
    with pytest.raises(OSError, match="No space left"):
        write(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left behind


# ------------------------------------------------- checkpoints survive two crashes
def _crash_at(operation_index: int, write) -> None:
    """Run ``write`` in a child process killed (``os._exit``, no clean-up) at its ``operation_index``-th
    file-system operation of the checkpoint swap."""
    pid = os.fork()
    if pid == 0:  # child
        count = {"n": 0}

        def counted(function):
            def wrapper(*args, **kwargs):
                count["n"] += 1
                if count["n"] == operation_index:
                    os._exit(17)
                return function(*args, **kwargs)
            return wrapper

        for name in ("rename",):
            setattr(Path, name, counted(getattr(Path, name)))
        checkpoints.shutil.rmtree = counted(checkpoints.shutil.rmtree)
        checkpoints.fsync_path = counted(checkpoints.fsync_path)
        try:
            write()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _write_checkpoint(folder: Path, label: str):
    def write():
        with staged_checkpoint(folder) as staging:
            (staging / "label").write_text(label)
    return write


def _label(folder: Path) -> str | None:
    found = latest_checkpoint(folder)
    return None if found is None else (found / "label").read_text()


def test_two_crashes_in_a_row_during_checkpoint_swaps_never_leave_the_run_without_a_checkpoint(tmp_path):
    for first in range(1, 12):
        for second in range(1, 12):
            folder = tmp_path / f"{first}-{second}" / "checkpoint"
            folder.parent.mkdir()
            _write_checkpoint(folder, "A")()
            _crash_at(first, _write_checkpoint(folder, "B"))
            after_first = _label(folder)
            assert after_first in ("A", "B"), (first, second)
            _crash_at(second, _write_checkpoint(folder, "C"))
            assert _label(folder) in (after_first, "C"), (first, second)
            _write_checkpoint(folder, "D")()  # and a clean write afterwards still works
            assert _label(folder) == "D"


# ------------------------------------------------------------- an honest resume
def test_a_resumed_runs_best_is_what_the_log_and_policy_hold(tmp_path):
    with make_run(tmp_path) as run:
        run.resume()
        run.evaluate(100, ConstantPolicy(2.0))  # return 6
        run.evaluate(200, ConstantPolicy(1.0))  # return 3
        run.checkpoint(200, lambda folder: None)
    progress = tmp_path / "checkpoint" / "progress.json"
    state = json.loads(progress.read_text())
    state["best_return"] = 1e9  # a tampered record that no evaluation in the log supports
    progress.write_text(json.dumps(state))
    with make_run(tmp_path) as run:
        run.resume()
        assert run.best_return == pytest.approx(6.0)
        run.evaluate(300, ConstantPolicy(2.5))  # return 7.5: better than anything logged
        assert json.loads((tmp_path / "policy.pt").read_text()) == 2.5


def test_a_checkpoint_without_its_policy_file_lets_the_next_evaluation_write_one(tmp_path):
    with make_run(tmp_path) as run:
        run.resume()
        run.evaluate(100, ConstantPolicy(2.0))
        run.checkpoint(200, lambda folder: None)
    (tmp_path / "checkpoint" / "policy.pt").unlink()
    with make_run(tmp_path) as run:
        run.resume()
        assert not (tmp_path / "policy.pt").exists()
        run.evaluate(300, ConstantPolicy(1.0))
        assert json.loads((tmp_path / "policy.pt").read_text()) == 1.0


def test_a_run_that_failed_before_its_first_checkpoint_does_not_block_a_corrected_one(tmp_path):
    with make_run(tmp_path) as run:
        run.resume()
        # the algorithm's own check fails here (e.g. a bad size), after config.json was written
    config = ExpertConfig(env_id="Pendulum-v1", steps=400, eval_every=100, checkpoint_every=200, seed=3)
    with TrainingRun(tmp_path, config, Schedule(400, 100, 200), RewardIsAction(), eval_episodes=1,
                     tensorboard=False) as run:
        assert run.resume() is None
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 3


# ---------------------------------------------------------------- locked folders
def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path):
    with make_run(tmp_path):
        with pytest.raises(ValueError, match=f"in use by another process \\(pid {os.getpid()}\\)"):
            make_run(tmp_path)
    make_run(tmp_path).close()  # released on close


def test_a_killed_process_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from agents.run_folder import RunLock; "
         "lock = RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        cwd=REPOSITORY, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ValueError, match=f"pid {holder.pid}"):
        RunLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    RunLock(tmp_path).acquire().release()


# ------------------------------------------------------- outputs checked up front
def test_output_folders_and_files_are_checked_before_any_compute(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out .*file exists and is not a folder"):
        prepare_output_dir(tmp_path / "file")
    with pytest.raises(ValueError, match="cannot be written"):
        prepare_output_dir("/proc/soar-mail-test")
    with pytest.raises(ValueError, match="is a folder, not a file"):
        prepare_output_file(tmp_path)
    assert prepare_output_dir(tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("argv", [
    ["soar", "tabular", "--seeds", "1", "--iterations", "2", "--no-progress", "--out", "{file}"],
    ["mail", "run", "--seeds", "1", "--queries", "10", "--no-progress", "--out", "{file}"],
    ["soar", "expert", "train", "--env", "Pendulum-v1", "--steps", "10", "--no-progress", "--out", "{file}"],
    ["soar", "train", "--env", "InvertedPendulum-v5", "--steps", "10", "--no-progress", "--out", "{file}"],
    ["soar", "expert", "rollout", "--policy", "{policy}", "--episodes", "1", "--no-progress", "--out", "{dir}"],
])
def test_commands_refuse_an_unusable_output_in_one_line_before_computing(tmp_path, monkeypatch, argv):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr("soar.experiment.run_sweep", lambda *a, **k: pytest.fail("computed first"))
    monkeypatch.setattr("mail.experiment.run_grid", lambda *a, **k: pytest.fail("computed first"))
    policy = REPOSITORY / "agents" / "data" / "InvertedPendulum-v5-policy.pt"
    argv = [a.format(file=tmp_path / "file", dir=tmp_path, policy=policy) for a in argv]
    main = soar_main if argv[0] == "soar" else mail_main
    with pytest.raises(SystemExit) as stopped:
        main(argv[1:])
    message = str(stopped.value.code)
    assert "\n" not in message and str(tmp_path) in message, message


# --------------------------------------------------------- Ctrl-C and full disks
def test_ctrl_c_in_a_tabular_sweep_keeps_the_finished_runs(tmp_path, monkeypatch, capsys):
    from soar import tabular

    real, calls = tabular.soar_il, {"n": 0}

    def interrupted_on_the_third_run(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tabular, "soar_il", interrupted_on_the_third_run)
    with pytest.raises(SystemExit) as stopped:
        soar_main(["tabular", "--seeds", "2", "--critics", "1", "2", "--iterations", "3", "--no-progress",
                   "--out", str(tmp_path)])
    assert stopped.value.code == 130
    rows = list(csv_rows(tmp_path / "soar_tabular.csv"))
    assert {(r["num_critics"], r["seed"]) for r in rows} == {("1", "0"), ("1", "1")}
    assert "2 of 4 runs (interrupted)" in (tmp_path / "summary.md").read_text()


def test_ctrl_c_in_a_mail_grid_keeps_the_finished_runs(tmp_path, monkeypatch):
    from mail import experiment

    real, calls = experiment.run_one, {"n": 0}

    def interrupted_on_the_second_run(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "run_one", interrupted_on_the_second_run)
    with pytest.raises(SystemExit) as stopped:
        mail_main(["run", "--seeds", "2", "--queries", "10", "--algo", "bc", "--no-progress", "--out", str(tmp_path)])
    assert stopped.value.code == 130
    rows = list(csv_rows(tmp_path / "mail_results.csv"))
    assert rows and {r["seed"] for r in rows} == {"0"}


def csv_rows(path):
    import csv

    with open(path, newline="") as handle:
        yield from csv.DictReader(handle)


def test_a_full_disk_ends_a_command_with_one_line_naming_the_path(tmp_path, monkeypatch):
    from soar import experiment

    def full(rows, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(experiment, "write_csv", full)
    with pytest.raises(SystemExit) as stopped:
        soar_main(["tabular", "--seeds", "1", "--critics", "1", "--iterations", "2", "--no-progress",
                   "--out", str(tmp_path)])
    assert stopped.value.code == f"soar tabular: {tmp_path / 'soar_tabular.csv'}: No space left on device"


# --------------------------------------------------------- NaN at the first bad value
@pytest.mark.parametrize("low, high, message", [
    (-np.inf, np.inf, "bounded action box"),
    (-1.0, -1.0, "high > low"),
])
def test_an_unbounded_or_degenerate_action_box_is_refused_before_training(low, high, message):
    class Box(RewardIsAction):
        action_space = gym.spaces.Box(np.float32(low), np.float32(high), (1,), np.float32)

    with pytest.raises(ValueError, match=message):
        SAC(Box(), hidden=(8, 8), batch_size=4, learning_starts=4, buffer_size=16)


def test_a_reward_function_returning_nan_stops_at_the_first_update():
    agent = SAC(gym.make("Pendulum-v1"), hidden=(8, 8), batch_size=4, learning_starts=8, buffer_size=64,
                reward_fn=lambda obs, actions, next_obs: torch.full((len(obs),), float("nan")))
    with pytest.raises(FloatingPointError, match="at step 8"):
        agent.learn(50)


# ------------------------------------------- corrupt checkpoints leave things untouched
def _parameters(agent):
    return {name: value.clone() for name, value in {**agent.actor.state_dict(), **{
        f"critic.{k}": v for k, v in agent.critic.state_dict().items()}}.items()}


@pytest.mark.parametrize("tamper, message", [
    (lambda s: s["critic"].update({next(iter(s["critic"])): torch.zeros(3)}), "critic"),
    (lambda s: s.update(numpy_rng={"bit_generator": "PCG64", "state": "junk"}), "does not fit"),
    (lambda s: s["critic"].update({k: torch.full_like(v, float("nan")) for k, v in s["critic"].items()}), "NaN"),
    (lambda s: s.update(counters=torch.tensor([5, 5, 99999, 0])), "replay buffer|counters"),
])
def test_a_tampered_checkpoint_is_refused_and_the_agent_left_untouched(tmp_path, tamper, message):
    trained = _small_sac()
    trained.learn(12)
    path = tmp_path / "agent.pt"
    trained.save(path, include_buffer=True)
    state = torch.load(path, weights_only=True)
    tamper(state)
    torch.save(state, path)
    agent = _small_sac()
    before, rng_before = _parameters(agent), agent.rng.bit_generator.state
    with pytest.raises(ValueError, match=message):
        agent.restore(path)
    after = _parameters(agent)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert agent.rng.bit_generator.state == rng_before and agent.num_timesteps == 0 and agent.buffer.size == 0


def test_a_corrupt_checkpoint_stops_a_resume_before_logs_or_policy_change(tmp_path):
    from agents.experts import train_expert

    config = ExpertConfig(env_id="Pendulum-v1", algorithm="soar", steps=300, eval_every=100, checkpoint_every=200,
                          eval_episodes=1, hidden=(8, 8), batch_size=8, learning_starts=50)
    train_expert(config, tmp_path)
    eval_rows, policy = read_log(tmp_path / "logs" / "eval.csv"), (tmp_path / "policy.pt").read_bytes()
    written = (tmp_path / "config.json").read_text()
    assert [row["step"] for row in eval_rows] == [100, 200, 300]
    agent_file = tmp_path / "checkpoint" / "agent.pt"
    agent_file.write_bytes(agent_file.read_bytes()[:1000])  # truncated
    with pytest.raises(ValueError, match=f"cannot resume from {tmp_path / 'checkpoint'}: "):
        train_expert(dataclasses.replace(config, steps=500), tmp_path)  # a longer budget: a resumable change
    assert read_log(tmp_path / "logs" / "eval.csv") == eval_rows
    assert (tmp_path / "policy.pt").read_bytes() == policy
    assert (tmp_path / "config.json").read_text() == written  # still the run that the checkpoint belongs to
