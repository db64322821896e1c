"""Figures a reader can trust: every plot of the toolkit, drawn from tiny made-up results.

Bands stay within the values the plotted quantity can take and the legend says what they
are; the MAIL panels show a gap of 0.05 next to one of 12; no legend lies over a curve.
"""

import importlib.util
import itertools
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from agents.experts import ExpertConfig
from agents.harness import Schedule, TrainingRun
from agents.logger import read_log
from agents.rollout import evaluate
from envs import mdps
from mail import experiment as mail_experiment
from soar import experiment as soar_experiment
from soar import tabular
from soar.deep.config import TrainConfig
from soar.deep.plot import find_runs, plot_runs

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def saved(monkeypatch):
    """Every figure saved while the test runs (the plotting functions keep none)."""
    figures = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


# ------------------------------------------------------------------ made-up results, one per figure
def two_state_extremes() -> tuple[float, float]:
    """The worst and the best value of the two-state MDP, by brute force over its deterministic policies."""
    mdp = mdps.two_state_mdp(num_actions=3)  # the values do not depend on the number of actions
    values = [tabular.policy_value(mdp, np.eye(3)[list(actions)]) for actions in itertools.product(range(3), repeat=2)]
    return min(values), max(values)


def tabular_figure(tmp_path: Path) -> dict:
    """Seeds at the best and at the worst value: a t-interval of the mean reaches past both."""
    worst, best = two_state_extremes()
    rows = []
    for seed, value in enumerate((best, best, worst)):
        for iteration in range(1, 6):
            rows.append(dict(env="two-state", num_critics=1, seed=seed, iteration=iteration, samples=10 * iteration,
                             value=value, expert_value=best))
    soar_experiment.plot_sweep(rows, tmp_path / "tabular.png")
    return dict(lower=worst, upper=best, statistic="95% t-interval of the mean over 3 seeds")


def write_deep_run(folder: Path, seed: int, episodes: list[list[float]]) -> None:
    """A ``soar train`` run folder whose evaluation at step 1000 (k + 1) saw the returns ``episodes[k]``."""
    (folder / "logs").mkdir(parents=True)
    config = TrainConfig(env_id="InvertedPendulum-v5", seed=seed)
    fields = {name: getattr(config, name) for name in config.__dataclass_fields__}
    (folder / "config.json").write_text(json.dumps({"config": "TrainConfig", **fields}, default=list))
    (folder / "expert.json").write_text(json.dumps({"return_mean": 1000.0}))
    lines = ["step,return_mean,return_std,episodes,return_min,return_max"]
    for k, returns in enumerate(episodes):
        lines.append(f"{1000 * (k + 1)},{np.mean(returns)},{np.std(returns)},{len(returns)},"
                     f"{min(returns)},{max(returns)}")
    (folder / "logs" / "eval.csv").write_text("\n".join(lines) + "\n")


def deep_figure(tmp_path: Path) -> dict:
    """InvertedPendulum returns (at most 1000): two seeds balance all along, one falls early in some episodes."""
    write_deep_run(tmp_path / "runs" / "a", 0, [[1000.0] * 3] * 3)
    write_deep_run(tmp_path / "runs" / "b", 1, [[1000.0] * 3] * 3)
    write_deep_run(tmp_path / "runs" / "c", 2, [[1000.0, 100.0, 40.0]] * 3)
    plot_runs(find_runs([tmp_path / "runs"]), tmp_path / "deep.png")
    return dict(lower=40.0, upper=1000.0, statistic="95% t-interval of the mean over 3 seeds")


class SeededReturn(gym.Env):
    """One step whose reward the reset seed sets (0 for multiples of 4, else 10): episodes of one policy differ."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.reward = 0.0 if seed is not None and seed % 4 == 0 else 10.0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), self.reward, True, False, {}


class Still:
    def act(self, obs, deterministic=False, rng=None):
        return np.zeros(1, np.float32)

    def predict(self, obs, deterministic=False):
        return self.act(obs), None

    def save(self, path):
        Path(path).write_text("still")


def make_run(out: Path, episodes: int = 5) -> TrainingRun:
    config = ExpertConfig(env_id="Pendulum-v1", steps=100, eval_every=100, checkpoint_every=100)
    return TrainingRun(out, config, Schedule(100, 100, 100), SeededReturn(), eval_episodes=episodes,
                       eval_seed=3, tensorboard=False)


def harness_figure(tmp_path: Path) -> dict:
    """Episode returns 10, 0, 10, 10, 10 (reset seeds 3..7): mean +- std reaches past 10."""
    with make_run(tmp_path / "run") as run:
        run.resume()
        for step in (100, 200, 300):
            run.evaluate(step, Still())
        run.plot()
    return dict(lower=0.0, upper=10.0, statistic="mean ± std of 5 episodes")


def mail_rows() -> list[dict]:
    """BC stuck at a gap of about 12, MAIL-BRO at about 0.05 (one seed exactly at 0), MURMAIL at 0.5."""
    rows = []
    for game, target_c in (("lower-bound", 2.0), ("random-zero-sum", float("nan"))):
        for algo, gaps in (("bc-first", (11.9, 12.0, 12.1)), ("mail-bro", (0.0, 0.05, 0.1)),
                           ("murmail", (0.4, 0.5, 0.6))):
            for budget in (10, 100, 1000):
                for seed, gap in enumerate(gaps):
                    rows.append(dict(game=game, target_c=target_c, c_single=2.0, c_all=3.0, algo=algo, seed=seed,
                                     budget=budget, iterations=1, expert_queries=budget, oracle_calls=0,
                                     simulator_steps=0, gap_last=gap, gap_average=gap, gap_sampled=gap, seconds=0.0))
    return rows


def mail_figure(tmp_path: Path) -> dict:
    mail_experiment.plot(mail_rows(), tmp_path / "mail.png")
    return dict(lower=0.0, upper=np.inf, statistic="95% t-interval of the mean over 3 seeds")


def pendulum_figure(tmp_path: Path) -> dict:
    spec = importlib.util.spec_from_file_location("check_pendulum", REPOSITORY / "scripts" / "check_pendulum.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = [dict(learner=learner, seed=seed, step=step, return_mean=-1000.0 + 300 * step / 1000 + 50 * seed)
            for learner in ("ours", "sb3") for seed in (0, 1) for step in (1000, 2000, 3000)]
    script.plot(rows, ["ours", "sb3"], tmp_path / "pendulum.png")
    return dict(lower=-np.inf, upper=np.inf, statistic="min..max over 2 seeds")


FIGURES = {"tabular": tabular_figure, "deep": deep_figure, "harness": harness_figure, "mail": mail_figure,
           "pendulum": pendulum_figure}


def drawn(figure: Figure):
    """The figure laid out and drawn with Agg, and the renderer that drew it."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def legends(figure: Figure) -> list:
    return list(figure.legends) + [axis.get_legend() for axis in figure.axes if axis.get_legend() is not None]


# ------------------------------------------------------------------ bands
@pytest.mark.parametrize("name", ["tabular", "deep", "harness", "mail"])
def test_bands_stay_within_the_attainable_range(tmp_path, saved, name):
    expected = FIGURES[name](tmp_path)
    bands = [c for figure in saved for axis in figure.axes for c in axis.collections if isinstance(c, PolyCollection)]
    assert bands, "the figure draws its bands"
    edges = np.concatenate([path.vertices[:, 1] for band in bands for path in band.get_paths()])
    # The data reach past the range (spread seeds or episodes hugging a bound): unclipped bands would leave it.
    assert edges.min() >= expected["lower"] - 1e-9
    assert edges.max() <= expected["upper"] + 1e-9


def test_the_harness_logs_the_range_of_its_evaluation_episodes(tmp_path):
    with make_run(tmp_path) as run:
        run.resume()
        row = run.evaluate(100, Still())
    returns = evaluate(Still(), SeededReturn(), 5, seed=3, deterministic=True)
    assert sorted(returns) == [0.0, 10.0, 10.0, 10.0, 10.0]
    assert (row["return_min"], row["return_max"]) == (returns.min(), returns.max())
    logged = read_log(tmp_path / "logs" / "eval.csv")[0]
    assert (logged["return_min"], logged["return_max"]) == (0.0, 10.0)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_the_legend_says_what_the_bands_are(tmp_path, saved, name):
    expected = FIGURES[name](tmp_path)
    texts = [text.get_text() for figure in saved for legend in legends(figure) for text in legend.get_texts()]
    assert any(text.startswith("shaded: ") and expected["statistic"] in text for text in texts), texts


# ------------------------------------------------------------------ MAIL axis
def test_mail_panels_show_a_small_gap_next_to_a_large_one(tmp_path, saved):
    mail_figure(tmp_path)
    (figure,) = saved
    drawn(figure)
    panels = [axis for axis in figure.axes if axis.get_visible() and axis.axison]
    assert len(panels) == 2
    assert len({axis.get_ylim() for axis in panels}) == 1, "one y-scale for all panels"
    for axis in panels:
        assert axis.get_yscale() in ("log", "symlog")

        def height(gap: float) -> float:
            """Where ``gap`` is drawn, as a fraction of the axes' height from its bottom."""
            return float(axis.transAxes.inverted().transform(axis.transData.transform((1.0, gap)))[1])

        assert height(0.0) >= 0.0 and height(12.0) <= 1.0, "the limits hold both gaps"
        # Each step is a visible fraction of the axis (on a linear axis to 13, 0.05 is 0.4% of it).
        assert height(0.05) - height(0.0) >= 0.08
        assert height(0.5) - height(0.05) >= 0.08
        assert height(12.0) - height(1.2) >= 0.08


# ------------------------------------------------------------------ legends
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_legends_never_cover_curves(tmp_path, saved, name):
    FIGURES[name](tmp_path)
    for figure in saved:
        renderer = drawn(figure)
        boxes = [legend.get_window_extent(renderer) for legend in legends(figure)]
        assert boxes
        for box, axis in itertools.product(boxes, figure.axes):
            if not (axis.get_visible() and axis.axison):
                continue
            area = axis.get_window_extent(renderer)
            overlap = min(box.x1, area.x1) - max(box.x0, area.x0), min(box.y1, area.y1) - max(box.y0, area.y0)
            assert min(overlap) <= 0.5, f"a legend lies over the axes {axis.get_title()!r}"
            for line in axis.get_lines():
                x, y = line.get_transform().transform(line.get_xydata()).T
                inside = (box.x0 < x) & (x < box.x1) & (box.y0 < y) & (y < box.y1)
                assert not inside.any(), f"the legend covers the curve {line.get_label()!r}"
