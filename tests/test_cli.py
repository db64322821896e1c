"""Command lines: one-line errors, options that do not apply, figures never overwritten, outputs under runs/.

Errors about the options are usage errors (exit status 2, ``prog: error: message``), errors the
run meets are ``prog: message`` (exit status 1); both are one line, never a traceback.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mail import cli as mail_cli
from mail import experiment as mail_experiment
from soar import cli as soar_cli
from soar import experiment as soar_experiment

ROOT = Path(__file__).parents[1]


def run_module(*argv, cwd=None):
    """``python -m ...`` in a fresh interpreter: what the user sees, traceback or not."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_error_line(result, prefix):
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
    return lines[0]


# ------------------------------------------------------------------ one line, no traceback
def test_an_output_folder_that_is_a_file_ends_soar_tabular_with_one_line(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    result = run_module("soar", "tabular", "--env", "two-state", "--critics", "1", "--seeds", "1", "--iterations",
                        "2", "--out", str(blocker), "--no-progress")
    assert result.returncode == 1
    assert str(blocker) in one_error_line(result, "soar tabular: ")


def test_an_output_folder_that_is_a_file_ends_mail_run_with_one_line(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    result = run_module("mail", "run", "--algo", "bc", "--seeds", "1", "--queries", "10", "--points", "2",
                        "--out", str(blocker), "--no-progress")
    assert result.returncode == 1
    assert str(blocker) in one_error_line(result, "python -m mail run: ")


def test_usage_errors_are_one_line_too(tmp_path):
    result = run_module("soar", "train", "--env", "InvertedPendulum-v5", "--out", str(tmp_path), "--batch-size", "0")
    assert result.returncode == 2
    line = one_error_line(result, "soar train: error: argument --batch-size: must be an integer >= 1, got 0")
    assert "--help" in line  # the usage block is one --help away, not printed


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{tmp}/none"], "soar evaluate: cannot read the run's settings"),
    (["expert", "rollout", "--policy", "{tmp}/none.pt", "--out", "{tmp}/d.npz"], "soar expert rollout: "),
    (["expert", "train", "--env", "NoSuchEnv-v0", "--steps", "10", "--out", "{tmp}/e"], "soar expert train: "),
    (["train", "--env", "NoSuchEnv-v0", "--out", "{tmp}/t"], "soar train: "),
])
def test_every_soar_command_reports_a_failed_run_in_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        soar_cli.main([part.format(tmp=tmp_path) for part in argv])
    text = str(stop.value.code)
    assert text.startswith(message) and "\n" not in text


# ------------------------------------------------------------------ options that do not apply
@pytest.mark.parametrize("argv, option, reason", [
    (["--game", "random-zero-sum", "--concentrability", "2"], "--concentrability", "by the lower-bound game only"),
    (["--states", "20"], "--states", "by the random zero-sum games only"),
    (["--actions", "4"], "--actions", "by the random zero-sum games only"),
    (["--algo", "bc", "--inner", "exact"], "--inner", "by MURMAIL only"),
    (["--algo", "mail-bro", "--inner-episodes", "3"], "--inner-episodes", "by MURMAIL's UCBVI inner solver only"),
    (["--inner", "exact", "--inner-episodes", "5"], "--inner-episodes", "by MURMAIL's UCBVI inner solver only"),
    (["--algo", "murmail", "--bonus-scale", "5"], "--bonus-scale", "by MAIL-WARM only"),
    (["--game", "grid-race", "--states", "5"], "--states", "by the random zero-sum games only"),
])
def test_mail_run_refuses_options_the_run_does_not_use(tmp_path, capsys, monkeypatch, argv, option, reason):
    ran = []
    monkeypatch.setattr(mail_experiment, "run_grid", lambda *args, **kwargs: ran.append(args) or [])
    with pytest.raises(SystemExit) as stop:
        mail_cli.main(["run", "--seeds", "1", "--queries", "10", "--points", "2", "--out", str(tmp_path), *argv])
    assert stop.value.code == 2 and not ran
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option} does not apply to this run: it is used {reason}" in err


@pytest.mark.parametrize("argv, option, reason", [
    (["--critic", "min", "--optimism", "0.5"], "--optimism", "by the optimistic and ucb critics only"),
    (["--critic", "min", "--optimism", "0.001"], "--optimism", "by the optimistic and ucb critics only"),
    (["--critic", "ucb", "--std-clip", "2"], "--std-clip", "by the optimistic critic only"),
])
def test_soar_tabular_refuses_options_the_critic_does_not_use(tmp_path, capsys, monkeypatch, argv, option, reason):
    ran = []
    monkeypatch.setattr(soar_experiment, "run_sweep", lambda *args, **kwargs: ran.append(args) or [])
    with pytest.raises(SystemExit) as stop:
        soar_cli.main(["tabular", "--out", str(tmp_path), *argv])
    assert stop.value.code == 2 and not ran
    assert f"{option} does not apply to this run: it is used {reason}" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["--critics", "1", "--optimism", "2"], "--optimism"),
    (["--std-clip", "5"], "--std-clip"),
    (["--method", "ml-irl", "--bc-steps", "10"], "--bc-steps"),
    (["--method", "csil", "--reward-lr", "1e-3"], "--reward-lr"),
    (["--method", "ml-irl-sa", "--discriminator-steps", "10"], "--discriminator-steps"),
    (["--cost-rollouts", "2", "--cost-episodes", "4"], "--cost-episodes"),
])
def test_soar_train_refuses_options_the_run_does_not_use(tmp_path, capsys, monkeypatch, argv, option):
    from soar.deep import loop

    trained = []
    monkeypatch.setattr(loop, "run_training", lambda *args, **kwargs: trained.append(args))
    with pytest.raises(SystemExit) as stop:
        soar_cli.main(["train", "--env", "InvertedPendulum-v5", "--out", str(tmp_path / "run"), *argv])
    assert stop.value.code == 2 and not trained
    assert f"soar train: error: {option} does not apply to this run" in capsys.readouterr().err


# ------------------------------------------------------------------ figures are never overwritten
def test_soar_plot_keeps_an_existing_figure(tmp_path):
    figure = tmp_path / "curves.png"
    figure.write_bytes(b"someone else's figure")
    with pytest.raises(SystemExit) as stop:
        soar_cli.main(["plot", str(tmp_path), "--out", str(figure)])
    assert str(stop.value.code) == f"soar plot: {figure} exists; pass --force to replace it, or choose another --out"
    assert figure.read_bytes() == b"someone else's figure"


def test_mail_plot_writes_one_figure_per_policy_and_replaces_none_without_force(tmp_path, capsys):
    assert mail_cli.main(["run", "--algo", "bc", "--seeds", "2", "--queries", "10", "--points", "2",
                          "--out", str(tmp_path), "--no-progress"]) == 0
    sampled = tmp_path / "mail_nash_gap.png"
    stamp = sampled.stat().st_mtime_ns
    with pytest.raises(SystemExit) as stop:
        mail_cli.main(["plot", str(tmp_path)])  # would redraw the sampled-iterate figure
    assert str(stop.value.code) == f"python -m mail plot: {sampled} exists; pass --force to replace it, or choose another --out"
    assert mail_cli.main(["plot", str(tmp_path), "--policy", "last"]) == 0
    assert (tmp_path / "mail_nash_gap_last.png").exists() and sampled.stat().st_mtime_ns == stamp
    assert mail_cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "other.png")]) == 0
    assert mail_cli.main(["plot", str(tmp_path), "--force"]) == 0


# ------------------------------------------------------------------ reproduction scripts
class Stop(Exception):
    """Raised by a stub to end a script once it has shown what it would do."""


def test_reproduce_mail_never_overrides_options_given_with_quick(monkeypatch, tmp_path):
    script = load_script("reproduce_mail")
    configs = []

    def capture(config, *args, **kwargs):
        configs.append(config)
        raise Stop

    monkeypatch.setattr(mail_experiment, "run_grid", capture)
    monkeypatch.setattr(sys, "argv", ["reproduce_mail.py", "--quick", "--seeds", "2", "--queries", "300"])
    with pytest.raises(Stop):
        script.main()
    # --quick sets only what was not given: its 5 points, but the user's seeds and budget.
    assert (configs[0].seeds, configs[0].queries, configs[0].points) == (2, 300, 5)


@pytest.mark.parametrize("name, module, runner, expected", [
    ("reproduce_mail", mail_experiment, "run_grid", Path("runs/mail/csv/mail_results.csv")),
    ("reproduce_soar_tabular", soar_experiment, "run_sweep", Path("runs/soar_tabular/csv/two_state.csv")),
])
def test_reproduction_scripts_write_under_runs_by_default(monkeypatch, tmp_path, name, module, runner, expected):
    script = load_script(name)
    written = []

    def stop_at_write(rows, path):
        written.append(Path(path))
        raise Stop

    def one_run(*args, rows=None, **kwargs):
        if rows is not None:  # the caller collects finished runs as they come
            rows.append({})
        return [{}]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(module, runner, one_run)
    monkeypatch.setattr(module, "write_csv", stop_at_write)
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])
    with pytest.raises(Stop):
        script.main()
    assert written == [expected]  # relative to the working directory, never docs/


def test_reproduction_script_errors_are_one_line(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce_mail.py"), "--quick", "--seeds", "1",
                             "--queries", "10", "--points", "2", "--out", str(blocker)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 1
    assert str(blocker) in one_error_line(result, "reproduce_mail.py: ")
