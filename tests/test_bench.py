"""The benchmark suite: sweep plans and clip selection on separate seeds, retries, resumes, statistics
checked against closed forms and exact bootstrap enumeration, and the smoke suite end to end
(local launcher; Ray when it is installed)."""

import csv
import dataclasses
import itertools
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.run_folder import RunLock
from soar.bench import launch, stats
from soar.bench import sweep as sweep_module
from soar.bench.plan import (
    PAPER_STEPS, SELECTION_SEED_BASE, Sweep, budget_steps, evaluation_runs, selection_runs,
    train_command,
)
from soar.bench.report import load_results, tables
from soar.bench.sweep import SweepFailed, choose_clips, run_folder, run_sweep
from soar.cli import main


# ------------------------------------------------------------------------------------- statistics
def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm(np.arange(1.0, 9.0)) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert stats.iqm(np.array([0.0, 1, 1, 1000])) == pytest.approx(1.0)  # one outlier per end trimmed


def test_three_runs_give_no_trimming_and_their_range_as_interval():
    # What the report's note on rows of fewer than 4 runs says: all 3^3 resamples are equally likely, and
    # "every run the lowest" (1/27 > 2.5%) and "every run the highest" pin the percentile interval to the range.
    runs = np.array([3.0, 7.0, 20.0])
    assert stats.iqm(runs) == pytest.approx(runs.mean())
    assert stats.stratified_interval([runs], stats.mean) == pytest.approx((3.0, 20.0))
    assert stats.stratified_interval([runs], stats.iqm) == pytest.approx((3.0, 20.0))
    # Four runs: the interval is strictly inside the range (1/4^4 < 2.5%).
    low, high = stats.stratified_interval([[3.0, 7.0, 11.0, 20.0]], stats.mean)
    assert 3.0 < low and high < 20.0


def test_stratified_bootstrap_keeps_each_task_s_runs():
    # Pooled mean of 3 runs at 0 and 3 at 10 is 5 in every stratified resample (each task keeps 3 runs);
    # resampling all 6 runs together would not keep it.
    assert stats.stratified_interval([[0, 0, 0], [10, 10, 10]], stats.mean) == (5.0, 5.0)


def test_stratified_bootstrap_matches_exact_enumeration():
    tasks = [[0.0, 1.0, 5.0], [2.0, 4.0]]
    # Every stratified resample is equally likely: 3^3 * 2^2 = 108 of them.
    values = sorted(np.mean(list(a) + list(b)) for a in itertools.product(tasks[0], repeat=3)
                    for b in itertools.product(tasks[1], repeat=2))
    low, high = stats.stratified_interval(tasks, stats.mean, resamples=20_000)
    # The exact distribution is discrete: its 2.5% and 97.5% points are the smallest values whose
    # cumulative probability reaches them (here 1.2 and 4.2, inside blocks of 2/108 each).
    assert low == pytest.approx(np.quantile(values, 0.025, method="inverted_cdf"), abs=0.05)
    assert high == pytest.approx(np.quantile(values, 0.975, method="inverted_cdf"), abs=0.05)
    assert all(math.isnan(v) for v in stats.stratified_interval([[1.0], [2.0]], stats.mean))


def test_a_task_with_one_run_stays_fixed_in_every_resample():
    # Pooled mean of [0, 0, 0] (always 0) and the lone 10: 2.5 in every resample.
    assert stats.stratified_interval([[0, 0, 0], [10]], stats.mean) == (2.5, 2.5)
    tasks = [[0.0, 1.0, 5.0], [3.0]]
    values = sorted(np.mean(list(a) + [3.0]) for a in itertools.product(tasks[0], repeat=3))
    low, high = stats.stratified_interval(tasks, stats.mean, resamples=20_000)
    assert low == pytest.approx(np.quantile(values, 0.025, method="inverted_cdf"), abs=0.05)
    assert high == pytest.approx(np.quantile(values, 0.975, method="inverted_cdf"), abs=0.05)


def test_performance_profile_closed_form():
    profile = stats.performance_profile([0.1, 0.5, 0.9, 1.1], np.array([0.0, 0.5, 1.0, 2.0]))
    np.testing.assert_allclose(profile, [1.0, 0.5, 0.25, 0.0])


def test_steps_ratio_on_hand_made_curves():
    steps = [10, 20, 30, 40]
    base = [([10, 20, 30, 40], [10, 50, 100, 100]), ([10, 20, 30, 40], [30, 70, 100, 100])]  # final mean 100, at 30
    soar = [(steps, [40, 100, 120, 130]), (steps, [60, 100, 100, 90])]  # mean 50, 100, 110, 110: 100 at 20
    ratio = stats.steps_ratio(base, soar)
    assert ratio == {"target": 100.0, "base_budget": 40, "base_steps": 30, "soar_steps": 20, "ratio": 0.5}
    never = stats.steps_ratio(base, [(steps, [1, 2, 3, 4])])
    assert never["soar_steps"] is None and never["ratio"] is None


def test_seeds_evaluated_at_different_steps_meet_on_one_grid():
    # --cost-rollouts makes each seed's evaluations land on its own steps; none may be dropped.
    a = ([0, 5000, 10000, 17000, 20000], [0, 10, 20, 30, 40])
    b = ([0, 5000, 12000, 15000, 20000, 21000], [0, 30, 50, 70, 90, 95])
    grid, curve = stats.mean_curve([a, b])
    assert grid.tolist() == [0, 5000, 10000, 12000, 15000, 17000, 20000]
    # a carried forward: 0 10 20 20 20 30 40; b: 0 30 30 50 70 70 90.
    assert curve.tolist() == [0, 20, 25, 35, 45, 50, 65]
    same = stats.mean_curve([([10, 20], [1.0, 2.0]), ([10, 20], [3.0, 6.0])])
    assert same[0].tolist() == [10, 20] and same[1].tolist() == [2.0, 4.0]


# ------------------------------------------------------------------------------------------- plans
def test_clips_are_chosen_on_seeds_never_reported():
    sweep = Sweep(("Hopper-v5",), ("ml-irl-sa", "csil"), (1, 4), (1.0, 10.0), seeds=3, selection_seeds=2,
                  budget="short")
    selection = selection_runs(sweep)
    assert len(selection) == 2 * 2 * 2  # methods x clips x selection seeds, L = 4 only
    assert {r.seed for r in selection} == {SELECTION_SEED_BASE, SELECTION_SEED_BASE + 1}
    chosen = {("Hopper-v5", "ml-irl-sa", 4): 1.0, ("Hopper-v5", "csil", 4): 10.0}
    evaluation = evaluation_runs(sweep, chosen)
    assert {r.seed for r in evaluation} == {0, 1, 2}
    assert not {r.seed for r in selection} & {r.seed for r in evaluation}
    assert {(r.method, r.critics, r.std_clip) for r in evaluation} == {
        ("ml-irl-sa", 1, None), ("csil", 1, None), ("ml-irl-sa", 4, 1.0), ("csil", 4, 10.0)}
    assert all(r.steps == PAPER_STEPS["Hopper-v5"] // 10 == 100_000 for r in selection + evaluation)
    # One clip: nothing to choose, no selection stage.
    assert selection_runs(Sweep(("Hopper-v5",), ("ml-irl-sa",), (1, 4), (10.0,))) == []


def test_train_commands_leave_out_what_a_run_does_not_use(tmp_path):
    sweep = Sweep(("Hopper-v5",), ("ml-irl-sa",), (1, 4), (10.0,), seeds=1, budget="smoke")
    base, soar_run = evaluation_runs(sweep, {})
    argv = train_command(base, str(tmp_path / "a"), "smoke")
    assert "--std-clip" not in argv and argv[argv.index("--critics") + 1] == "1"
    argv = train_command(soar_run, str(tmp_path / "b"), "smoke")
    assert argv[argv.index("--std-clip") + 1] == "10" and "--set" in argv
    from soar.cli import build_parser

    build_parser().parse_args(argv)  # soar train takes it
    # A folder that holds a run is resumed with its stored settings, the budget restated.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{}")
    argv = train_command(soar_run, str(tmp_path / "b"), "smoke")
    assert argv[:3] == ["train", "--resume", str(tmp_path / "b")] and argv[argv.index("--steps") + 1] == "2000"
    assert "--std-clip" not in argv and "--set" not in argv
    build_parser().parse_args(argv)


@pytest.mark.parametrize("budget, steps, interval", [("short", 100_000, 5000), ("paper", 1_000_000, None)])
def test_bench_runs_checkpoint_every_5_percent_and_change_nothing_else(tmp_path, budget, steps, interval):
    from soar.cli import build_parser
    from soar.deep.config import build_config, parse_overrides

    sweep = Sweep(("Hopper-v5",), ("ml-irl-sa",), (4,), (10.0,), seeds=1, budget=budget)
    (run,) = evaluation_runs(sweep, {})
    args = build_parser().parse_args(train_command(run, str(tmp_path / "a"), budget))
    overrides = parse_overrides(args.set or [])
    single = build_config("Hopper-v5", "ml-irl-sa")
    assert run.steps == steps and single.checkpoint_every == 25_000
    # 5% of 100k; a 1M-step run keeps soar train's 25k (no --set at all).
    assert overrides == ({} if interval is None else {"checkpoint_every": interval})
    benched = build_config("Hopper-v5", "ml-irl-sa", **overrides)
    assert dataclasses.replace(benched, checkpoint_every=single.checkpoint_every) == single


@pytest.mark.parametrize("kwargs, problem", [
    (dict(envs=("Hopper-v5",), methods=("bc",)), "cannot be swept"),
    (dict(envs=("Hopper-v5",), methods=("ml-irl-sa",), critics=(4, 4)), "repeats"),
    (dict(envs=("CartPole-v1",), methods=("ml-irl-sa",)), "no short budget for CartPole-v1"),
    (dict(envs=("Hopper-v5",), methods=("ml-irl-sa",), demos=(("Ant-v5", "a.npz"),)), "does not run"),
    (dict(envs=("Hopper-v5",), methods=("ml-irl-sa",), critics=(1,), std_clips=(1.0, 10.0)), "no critics > 1"),
    (dict(envs=("Hopper-v5",), methods=("ml-irl-sa",), env_steps=(("Ant-v5", 10),)), "--steps names .* not run"),
    (dict(envs=("Hopper-v5",), methods=("ml-irl-sa",), env_steps=(("Hopper-v5", 0),)), "integer >= 1, got 0"),
    (dict(envs=("Hopper-v5",), methods=("ml-irl-sa",), env_steps=(("Hopper-v5", 5), ("Hopper-v5", 6))), "twice"),
])
def test_bad_sweeps_name_the_problem(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        Sweep(**kwargs)
    assert budget_steps("CartPole-v1", "smoke") == 2000


def test_given_steps_replace_the_budget_for_their_environment_only(tmp_path, capsys):
    sweep = Sweep(("Hopper-v5", "CartPole-v1"), ("ml-irl-sa",), (1,), (10.0,), seeds=1,
                  env_steps=(("CartPole-v1", 30_000),))
    assert sweep.steps == {"Hopper-v5": 100_000, "CartPole-v1": 30_000}
    assert {r.env_id: r.steps for r in evaluation_runs(sweep, {})} == sweep.steps
    assert Sweep.from_json(json.loads(json.dumps(sweep.to_json()))) == sweep
    # bench.json of a sweep written before the option existed reads as one without it.
    older = {k: v for k, v in Sweep(("Hopper-v5",), ("ml-irl-sa",)).to_json().items() if k != "env_steps"}
    assert Sweep.from_json(older) == Sweep(("Hopper-v5",), ("ml-irl-sa",))
    # The same --steps and --demos pairs in another order are the same sweep, so its folder resumes.
    pairs = dict(demos=(("Hopper-v5", "h.npz"), ("CartPole-v1", "c.npz")),
                 env_steps=(("Hopper-v5", 5000), ("CartPole-v1", 30_000)))
    one = Sweep(("Hopper-v5", "CartPole-v1"), ("ml-irl-sa",), **pairs)
    other = Sweep(("Hopper-v5", "CartPole-v1"), ("ml-irl-sa",), **{k: v[::-1] for k, v in pairs.items()})
    assert one == other and one.to_json() == other.to_json() and one.demos_for("CartPole-v1") == "c.npz"
    with pytest.raises(SystemExit):  # an environment without a budget says how to give one
        main(["bench", "--envs", "CartPole-v1", "--out", str(tmp_path / "b")])
    assert "--steps CartPole-v1=100000" in capsys.readouterr().err and not (tmp_path / "b").exists()
    with pytest.raises(SystemExit):
        main(["bench", "--envs", "CartPole-v1", "--steps", "CartPole-v1=2.5k7", "--out", str(tmp_path / "b")])
    assert "argument --steps" in capsys.readouterr().err


def test_missing_experts_say_how_to_make_them(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--envs", "Hopper-v5", "Walker2d-v5", "--budget", "smoke", "--out", str(tmp_path / "b")])
    err = str(exit_info.value.code)
    assert "no bundled expert for Walker2d-v5" in err and "soar expert train --env Walker2d-v5" in err
    assert "--demos Walker2d-v5=" in err and not (tmp_path / "b").exists()


@pytest.mark.parametrize("argv, problem", [
    (["--critics", "1", "--std-clip", "5"], "--std-clip applies to SOAR's ensemble only"),
    (["--std-clip", "5", "--selection-seeds", "3"], "--selection-seeds is for choosing"),
    (["--launcher", "local", "--address", "x"], "--address is for --launcher ray"),
    (["--methods", "bc"], "cannot be swept"),
])
def test_bench_options_that_would_be_ignored_are_refused(tmp_path, argv, problem, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--envs", "Hopper-v5", "--budget", "smoke", "--out", str(tmp_path / "b"), *argv])
    assert exit_info.value.code == 2 and problem in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# ------------------------------------------------------------------- retries, resumes, selection
def fake_finish(out, run, final, curve=None):
    """Write what a finished soar train run leaves: progress, final policy, evaluations, expert."""
    folder = run_folder(out, run)
    (folder / "checkpoint").mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    (folder / "checkpoint" / "progress.json").write_text(json.dumps({"step": run.steps}))
    (folder / "final_policy.pt").write_text("")
    curve = curve or [final]
    steps = np.linspace(run.steps / len(curve), run.steps, len(curve)).astype(int)
    (folder / "logs" / "eval.csv").write_text("step,return_mean\n" + "".join(
        f"{s},{v}\n" for s, v in zip(steps, curve)))
    (folder / "expert.json").write_text(json.dumps({"return_mean": 1000.0}))


class FakeLauncher:
    """Stands in for run_local: 'runs' each job by writing its results; fails the names given, a number of times."""

    def __init__(self, out, sweep, finals, failures=None):
        self.out, self.sweep, self.finals = out, sweep, finals
        self.failures = dict(failures or {})
        self.calls = []
        self.batches = []  # the job names of each launch

    def __call__(self, jobs, workers=None, progress=True, on_done=None):
        status = {}
        self.batches.append([job.name for job in jobs])
        runs = {r.name: r for r in selection_runs(self.sweep) + evaluation_runs(self.sweep, self.chosen())}
        for job in jobs:
            self.calls.append(job.name)
            if self.failures.get(job.name, 0) > 0:
                self.failures[job.name] -= 1
                status[job.name] = 1
                continue
            run = runs[job.name]
            fake_finish(self.out, run, self.finals(run))
            status[job.name] = 0
        return status

    def chosen(self):
        path = self.out / "selection.json"
        return sweep_module.read_choices(self.out) if path.exists() else {
            (e, m, c): self.sweep.std_clips[0] for e in self.sweep.envs for m in self.sweep.methods
            for c in self.sweep.critics}


def small_sweep():
    return Sweep(("Hopper-v5",), ("ml-irl-sa",), (1, 4), (1.0, 10.0), seeds=2, selection_seeds=2, budget="smoke")


def test_selection_reads_selection_seeds_and_the_report_only_evaluation_seeds(tmp_path, monkeypatch):
    sweep = small_sweep()

    def finals(run):
        if run.stage == "selection":  # clip 1 wins on the selection seeds ...
            return 500.0 if run.std_clip == 1.0 else 100.0
        return {1: 200.0, 4: 300.0}[run.critics] + run.seed  # ... and is reported on fresh seeds
    launcher = FakeLauncher(tmp_path, sweep, finals)
    monkeypatch.setattr(launch, "run_local", launcher)
    result = run_sweep(sweep, tmp_path, progress=False)
    assert result.chosen == {("Hopper-v5", "ml-irl-sa", 4): 1.0}
    recorded = json.loads((tmp_path / "selection.json").read_text())
    assert recorded[0]["final_returns"] == {"1": [500.0, 500.0], "10": [100.0, 100.0]}
    _, results, missing = load_results(tmp_path)
    assert not missing and sorted(r.final for r in results) == [200.0, 201.0, 300.0, 301.0]
    text = tables(sweep, results, missing)
    assert "| Hopper-v5 | ml-irl-sa | 4 | 1 | 2 | 300 " in text and "500" not in text.split("Sweep:")[0]
    # The base runs, which need no choice, share the selection runs' pool; only L = 4 waits for the choice.
    assert launcher.batches == [
        [f"Hopper-v5/ml-irl-sa-L4-clip{clip}-s{SELECTION_SEED_BASE + i}" for clip in (1, 10) for i in (0, 1)]
        + ["Hopper-v5/ml-irl-sa-L1-s0", "Hopper-v5/ml-irl-sa-L1-s1"],
        ["Hopper-v5/ml-irl-sa-L4-clip1-s0", "Hopper-v5/ml-irl-sa-L4-clip1-s1"]]
    # Resuming runs nothing: every run is finished.
    launcher.calls.clear()
    run_sweep(sweep, tmp_path, progress=False)
    assert launcher.calls == []


def test_a_failed_run_is_retried_once_then_reported(tmp_path, monkeypatch):
    sweep = Sweep(("Hopper-v5",), ("ml-irl-sa",), (1, 4), (10.0,), seeds=2, budget="smoke")
    flaky, broken = "Hopper-v5/ml-irl-sa-L1-s0", "Hopper-v5/ml-irl-sa-L4-clip10-s1"
    launcher = FakeLauncher(tmp_path, sweep, lambda run: 100.0, failures={flaky: 1, broken: 5})
    monkeypatch.setattr(launch, "run_local", launcher)
    with pytest.raises(SweepFailed, match="1 run\\(s\\) failed twice: Hopper-v5/ml-irl-sa-L4-clip10-s1"):
        run_sweep(sweep, tmp_path, progress=False)
    assert launcher.calls.count(flaky) == 2 and launcher.calls.count(broken) == 2
    assert json.loads((tmp_path / "failed.json").read_text()) == [broken]
    _, results, missing = load_results(tmp_path)
    assert [m.name for m in missing] == [broken] and len(results) == 3
    assert "Missing runs (1)" in tables(sweep, results, missing)  # never silently dropped
    # Run again: only the broken run is tried, and once it works the record of failures goes.
    launcher.failures = {}
    launcher.calls.clear()
    run_sweep(sweep, tmp_path, progress=False)
    assert launcher.calls == [broken] and not (tmp_path / "failed.json").exists()


def test_a_failed_selection_holds_back_its_group_only(tmp_path, monkeypatch):
    sweep = Sweep(("Hopper-v5",), ("ml-irl-sa", "csil"), (1, 4), (1.0, 10.0), seeds=1, selection_seeds=1,
                  budget="smoke")
    broken = f"Hopper-v5/csil-L4-clip10-s{SELECTION_SEED_BASE}"
    launcher = FakeLauncher(tmp_path, sweep, lambda run: 100.0, failures={broken: 5})
    monkeypatch.setattr(launch, "run_local", launcher)
    with pytest.raises(SweepFailed, match="no clip chosen \\(so not run\\) for Hopper-v5 csil L=4"):
        run_sweep(sweep, tmp_path, progress=False)
    # ml-irl-sa chose and ran its evaluation seed; csil's base runs too, its L = 4 waits.
    assert sweep_module.read_choices(tmp_path) == {("Hopper-v5", "ml-irl-sa", 4): 1.0}
    _, results, missing = load_results(tmp_path)
    assert sorted(r.spec.name for r in results) == ["Hopper-v5/csil-L1-s0", "Hopper-v5/ml-irl-sa-L1-s0",
                                                     "Hopper-v5/ml-irl-sa-L4-clip1-s0"]
    assert "csil-L4-s0 (clip not chosen yet)" in tables(sweep, results, missing)


def test_unfinished_runs_are_missing_not_final(tmp_path, monkeypatch):
    sweep = Sweep(("Hopper-v5",), ("ml-irl-sa",), (1,), (10.0,), seeds=2, budget="smoke")
    monkeypatch.setattr(launch, "run_local", FakeLauncher(tmp_path, sweep, lambda run: 100.0))
    run_sweep(sweep, tmp_path, progress=False)
    partial = run_folder(tmp_path, evaluation_runs(sweep, {})[1])
    (partial / "final_policy.pt").unlink()  # as a run killed at 1000 of its 2000 steps leaves it
    (partial / "checkpoint" / "progress.json").write_text(json.dumps({"step": 1000}))
    _, results, missing = load_results(tmp_path)
    assert [r.spec.seed for r in results] == [0] and [m.seed for m in missing] == [1]


def test_a_folder_holding_another_sweep_is_refused(tmp_path, monkeypatch):
    sweep = small_sweep()
    monkeypatch.setattr(launch, "run_local", FakeLauncher(tmp_path, sweep, lambda run: 1.0))
    run_sweep(sweep, tmp_path, progress=False)
    other = Sweep(("Hopper-v5",), ("ml-irl-sa",), (1, 4), (1.0, 10.0), seeds=3, selection_seeds=2, budget="smoke")
    with pytest.raises(ValueError, match="holds another sweep \\(it differs in seeds\\)"):
        run_sweep(other, tmp_path, progress=False)


def test_a_record_holds_finished_runs_without_checkpoints_and_resumes_the_rest(tmp_path, monkeypatch):
    sweep, out, record = small_sweep(), tmp_path / "sweep", tmp_path / "record"
    launcher = FakeLauncher(out, sweep, lambda run: 100.0 + run.seed)
    monkeypatch.setattr(launch, "run_local", launcher)
    run_sweep(sweep, out, progress=False)
    for run in selection_runs(sweep) + evaluation_runs(sweep, sweep_module.read_choices(out)):
        (run_folder(out, run) / "checkpoint" / "agent.pt").write_bytes(b"weights and replay buffer")
    unfinished = evaluation_runs(sweep, sweep_module.read_choices(out))[-1]
    (run_folder(out, unfinished) / "final_policy.pt").unlink()
    copied, left = sweep_module.export_records(out, record)
    assert left == [unfinished.name] and len(copied) == 4 + 3
    assert not list(record.rglob("agent.pt")) and not run_folder(record, unfinished).exists()
    assert (record / "selection.json").read_text() == (out / "selection.json").read_text()
    # The report reads the same numbers from the record ...
    (_, in_sweep, missing), (_, in_record, missing_there) = load_results(out), load_results(record)
    assert [(r.spec, r.final) for r in in_record] == [(r.spec, r.final) for r in in_sweep]
    assert missing_there == missing == [unfinished]
    # ... and the sweep resumed on it runs only the run left out.
    launcher.out, launcher.calls = record, []
    run_sweep(sweep, record, progress=False)
    assert launcher.calls == [unfinished.name]


def test_a_record_copy_stopped_part_way_leaves_the_run_unfinished(tmp_path, monkeypatch):
    sweep, out, record = small_sweep(), tmp_path / "sweep", tmp_path / "record"
    monkeypatch.setattr(launch, "run_local", FakeLauncher(out, sweep, lambda run: 1.0))
    run_sweep(sweep, out, progress=False)
    copy = sweep_module.copy_file_atomic

    def stopped_at_the_final_policy(source, target):
        if Path(target).name == "final_policy.pt":
            raise OSError("No space left on device")
        copy(source, target)

    monkeypatch.setattr(sweep_module, "copy_file_atomic", stopped_at_the_final_policy)
    with pytest.raises(OSError, match="No space left"):
        sweep_module.export_records(out, record)
    first = selection_runs(sweep)[0]
    assert (run_folder(record, first) / "logs" / "eval.csv").exists()
    assert not sweep_module.is_finished(record, first) and not list(record.rglob("*.tmp*"))


COMMITTED_RECORD = Path(__file__).resolve().parents[1] / "docs" / "bench" / "hopper-short"


def test_the_committed_hopper_record_gives_the_committed_report():
    # The README quotes this report: the code that reads the record must still give it, and every
    # final return must be the run's last logged evaluation.
    sweep, results, missing = load_results(COMMITTED_RECORD)
    assert not missing and len(results) == 12
    for result in results:
        with open(run_folder(COMMITTED_RECORD, result.spec) / "logs" / "eval.csv") as log:
            last = list(csv.DictReader(log))[-1]
        assert int(last["step"]) == 100_000 and float(last["return_mean"]) == pytest.approx(result.final)
    assert tables(sweep, results, missing) == (COMMITTED_RECORD / "report.md").read_text()


def test_a_record_goes_outside_its_sweep_and_never_over_another(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    monkeypatch.setattr(launch, "run_local", FakeLauncher(out, small_sweep(), lambda run: 1.0))
    run_sweep(small_sweep(), out, progress=False)
    with pytest.raises(ValueError, match="must lie outside the sweep's folder"):
        sweep_module.export_records(out, out / "record")
    other = tmp_path / "other"
    other.mkdir()
    (other / "bench.json").write_text("{}")
    with pytest.raises(ValueError, match="holds the record of another sweep"):
        sweep_module.export_records(out, other)
    with pytest.raises(ValueError, match="holds no benchmark sweep"):
        sweep_module.export_records(other / "nothing", tmp_path / "record")


def test_choose_clips_breaks_ties_towards_the_first_clip(tmp_path):
    sweep = small_sweep()
    for run in selection_runs(sweep):
        fake_finish(tmp_path, run, 100.0)
    assert choose_clips(tmp_path, sweep) == {("Hopper-v5", "ml-irl-sa", 4): 1.0}


# --------------------------------------------------------------------------- the smoke suite, for real
SMOKE = ["bench", "--envs", "Hopper-v5", "--methods", "ml-irl-sa", "--critics", "1", "4", "--std-clip", "1", "10",
         "--seeds", "1", "--selection-seeds", "1", "--budget", "smoke", "--no-progress"]


def test_smoke_suite_runs_end_to_end_with_the_local_launcher(tmp_path, capsys):
    out = tmp_path / "bench"
    main([*SMOKE, "--out", str(out), "--jobs", "2"])
    assert "chosen on selection seeds: Hopper-v5 ml-irl-sa L=4: clip" in capsys.readouterr().out
    runs = sorted(p.name for p in (out / "runs" / "Hopper-v5").iterdir() if p.is_dir())
    chosen = json.loads((out / "selection.json").read_text())[0]["chosen"]
    assert runs == sorted(["ml-irl-sa-L1-s0", f"ml-irl-sa-L4-clip{chosen:g}-s0", "ml-irl-sa-L4-clip1-s1000",
                           "ml-irl-sa-L4-clip10-s1000"])
    for name in runs:  # every run used exactly the smoke budget, on one thread
        assert json.loads((out / "runs" / "Hopper-v5" / name / "checkpoint" / "progress.json").read_text())[
            "step"] == 2000
    main(["report", str(out)])
    report = (out / "report.md").read_text()
    assert "| Hopper-v5 | ml-irl-sa | 1 | - | 1 |" in report and "SOAR steps to it" in report
    for figure in ("curves.png", "aggregate.png", "profiles.png"):
        assert (out / figure).stat().st_size > 1000
    # The record (no checkpoints) gives the same report, written from its own files.
    record = tmp_path / "record"
    main(["report", str(out), "--records", str(record)])
    assert (record / "report.md").read_text() == report and not list(record.rglob("agent.pt"))
    (record / "report.md").unlink()
    main(["report", str(record)])
    assert (record / "report.md").read_text() == report
    # Again: everything is finished, nothing runs (the run logs do not grow).
    sizes = {p: p.stat().st_size for p in (out / "runs" / "Hopper-v5").glob("*.log")}
    main([*SMOKE, "--out", str(out), "--jobs", "2"])
    assert {p: p.stat().st_size for p in sizes} == sizes


def test_smoke_run_through_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    main(["bench", "--envs", "Hopper-v5", "--methods", "ml-irl-sa", "--critics", "1", "--seeds", "1", "--budget",
          "smoke", "--no-progress", "--launcher", "ray", "--address", "local", "--out", str(out)])
    progress = out / "runs" / "Hopper-v5" / "ml-irl-sa-L1-s0" / "checkpoint" / "progress.json"
    assert json.loads(progress.read_text())["step"] == 2000


def test_sigterm_stops_the_sweep_and_its_runs(tmp_path):
    """A scheduler's ``kill`` (SIGTERM) of soar bench must not leave its runs going on without it."""
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "soar", "bench", "--envs", "Hopper-v5", "--methods", "ml-irl-sa", "--critics",
               "1", "--seeds", "2", "--budget", "smoke", "--no-progress", "--jobs", "2", "--out", str(out)]
    bench = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    folders = [out / "runs" / "Hopper-v5" / f"ml-irl-sa-L1-s{seed}" for seed in (0, 1)]
    deadline = time.monotonic() + 180
    while not all((folder / "config.json").exists() for folder in folders):  # both runs started (and locked)
        assert bench.poll() is None and time.monotonic() < deadline, bench.communicate()
        time.sleep(0.2)
    bench.send_signal(signal.SIGTERM)
    _, err = bench.communicate(timeout=120)
    assert bench.returncode == 143 and "soar bench: terminated" in err  # 128 + SIGTERM, as the shell reports it
    for folder in folders:
        assert not (folder / "final_policy.pt").exists()  # stopped mid-run ...
        RunLock(folder).acquire().release()  # ... and no process holds the folder any more
