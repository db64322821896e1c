"""The imitation baselines on the deep loop: BC, DAgger, GAIL, AIRL, SQIL and OPT-AIL.

Each checks its method's defining number against an independent computation on a tiny
problem: a linear-Gaussian expert's mean (BC), labelled states against queries (DAgger),
the discriminators' ranking and reward forms recomputed by hand (GAIL, AIRL), the exact
share and rewards of SQIL's minibatches, and OPT-AIL's critic term.
"""

import copy
import json
import math
import sys

import numpy as np
import pytest
import torch

from agents.demonstrations import save_demonstrations
from agents.logger import read_log
from agents.networks import TanhGaussianActor
from agents.run_folder import RunLock
from agents.sac import SAC
from soar.cli import main
from soar.deep import dagger as dagger_module
from soar.deep.airl import AIRL
from soar.deep.bc import maximum_likelihood
from soar.deep.config import SAC_METHODS, build_config
from soar.deep.gail import GAIL
from soar.deep.loop import make_method, train
from soar.deep.sqil import SQIL
from tests.test_deep_imitation import ENV_ID, HORIZON, TINY, Line, Push, StepCounter, expert_demos, no_learning_curve

__all__ = ["no_learning_curve"]  # the autouse fixture, imported to apply here too

BASELINES_ON_SAC = ("gail", "airl", "sqil", "opt-ail")


# ------------------------------------------------------------------------------------------- BC
def test_bc_recovers_a_linear_gaussian_experts_mean():
    """Expert a ~ N(0.6 s - 0.1, 0.05^2), s ~ U[-1, 1]: the fitted policy's mode is that line."""
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(4000, 1)).astype(np.float32)
    actions = (0.6 * obs - 0.1 + 0.05 * rng.normal(size=obs.shape)).astype(np.float32)
    torch.manual_seed(0)
    policy = TanhGaussianActor(1, 1, (32, 32), torch.tensor([-1.0]), torch.tensor([1.0]))
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    nll = maximum_likelihood(policy, optimizer, torch.from_numpy(obs), torch.from_numpy(actions), 3000, 256, rng)
    grid = torch.linspace(-0.9, 0.9, 19).reshape(-1, 1)
    with torch.no_grad():
        mode = policy.deterministic(grid).squeeze(-1).numpy()
        _, std = policy.distribution(grid)
    np.testing.assert_allclose(mode, 0.6 * grid.squeeze(-1).numpy() - 0.1, atol=0.03)
    # The pre-tanh spread matches the expert's noise (tanh' is about 1 - 0.4^2 near these actions).
    assert 0.03 < float(std.mean()) < 0.08
    # The likelihood reached is near the expert's own: -log N(0, 0.05^2) at its typical point.
    assert nll < -0.5 * math.log(2 * math.pi * 0.05 ** 2) + 0.5 + 0.3


def test_bc_run_uses_no_environment_step_for_learning(tmp_path):
    counter = StepCounter()
    settings = dict(TINY, bc_steps=300, bc_lr=1e-2)
    result = train(Line(counter=counter), "bc", expert_demos(), out=tmp_path / "bc", eval_env=Line(counter=counter),
                   **settings)
    # One evaluation at step 0; every environment step counted is an evaluation step.
    assert [row["step"] for row in result.history] == [0]
    assert counter.steps == TINY["eval_episodes"] * HORIZON
    assert result.reward is None and (tmp_path / "bc" / "final_policy.pt").exists()
    # The demonstrator always pushes +1: so does the clone.
    assert result.policy.act(np.zeros(1, np.float32), deterministic=True)[0] > 0.9
    # Running the folder again returns the finished fit, without fitting or evaluating again.
    again = train(Line(counter=counter), "bc", expert_demos(), out=tmp_path / "bc", eval_env=Line(counter=counter),
                  **settings)
    assert counter.steps == TINY["eval_episodes"] * HORIZON and again.history == result.history
    assert (tmp_path / "bc" / "policy.pt").exists()  # the best (only) evaluated policy stays


# ---------------------------------------------------------------------------------------- DAgger
class CountingExpert(Push):
    """Push(+1) that counts its labels and remembers the states it labelled."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.states = []

    def act(self, obs, deterministic=False, rng=None):
        self.states.append(np.array(obs, dtype=np.float32))
        return super().act(obs, deterministic, rng)


@pytest.fixture
def counting_expert(monkeypatch):
    expert = CountingExpert()
    monkeypatch.setattr(dagger_module, "load_expert_policy", lambda source, env_id: expert)
    return expert


def test_dagger_counts_one_query_per_labelled_state(tmp_path, counting_expert):
    counter = StepCounter()
    demos = expert_demos(n=2)
    settings = dict(TINY, dagger_every=30, dagger_bc_steps=20, eval_every=45, checkpoint_every=45)
    result = train(Line(counter=counter), "dagger", demos, out=tmp_path / "d", eval_env=Line(), steps=100, **settings)
    log = read_log(tmp_path / "d" / "logs" / "train.csv")
    # Aggregations after 30, 60 and 90 steps, evaluations at 45, 90 and 100; at each, the queries so far
    # are the states labelled so far: one per step.
    assert [row["step"] for row in log] == [0, 30, 45, 60, 90, 100]
    assert [row["expert_queries"] for row in log] == [0, 30, 45, 60, 90, 100]
    aggregations = [row for row in log if row.get("dataset_size") not in (None, "") and
                    not (isinstance(row["dataset_size"], float) and math.isnan(row["dataset_size"]))]
    assert [row["dataset_size"] for row in aggregations] == [demos.num_transitions + q for q in (0, 30, 60, 90)]
    # The expert was asked exactly once per environment step the learner took, at the states it visited.
    assert len(counting_expert.states) == counter.steps == 100
    saved = torch.load(tmp_path / "d" / "checkpoint" / "dagger.pt", weights_only=True)
    labelled = saved["obs"][demos.num_transitions:].numpy()
    np.testing.assert_array_equal(labelled, np.stack(counting_expert.states[:90]))
    assert (saved["labels"][demos.num_transitions:] == 1.0).all() and saved["queries"] == 100
    # The final checkpoint (step 100) keeps the ten states labelled since the last aggregation.
    np.testing.assert_array_equal(saved["pending_obs"].numpy(), np.stack(counting_expert.states[90:]))
    assert [row["step"] for row in result.history] == [45, 90, 100]


def test_dagger_resumes_exactly(tmp_path, counting_expert):
    settings = dict(TINY, dagger_every=30, dagger_bc_steps=10, eval_every=40, checkpoint_every=40)
    whole = train(Line(), "dagger", expert_demos(), out=tmp_path / "whole", steps=120, **settings)
    train(Line(), "dagger", expert_demos(), out=tmp_path / "part", steps=80, **settings)  # checkpoint at 80
    resumed = train(Line(), "dagger", expert_demos(), out=tmp_path / "part", steps=120, **settings)
    # A checkpoint at 40 and 80 falls between aggregations: the labelled-but-unused states resume too.
    assert resumed.history == whole.history
    for a, b in zip(whole.policy.actor.state_dict().values(), resumed.policy.actor.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method, where", [("bc", "bc fit"), ("csil", "csil BC fit")])
def test_a_diverging_bc_fit_stops_before_its_checkpoint(tmp_path, method, where):
    # A learning rate of 1e30 sends the weights to inf within a few Adam steps.
    settings = dict(TINY, bc_steps=50, bc_lr=1e30)
    with pytest.raises(FloatingPointError, match=rf"^{where}: non-finite .* \(step 0.*stopping before anything was saved"):
        train(Line(), method, expert_demos(), out=tmp_path / "run", **settings)
    assert not (tmp_path / "run" / "checkpoint").exists() and not (tmp_path / "run" / "final_policy.pt").exists()


class PoisonedExpert(CountingExpert):
    """Labels NaN from its ``after``-th query on: the next DAgger round's fit must stop the run."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def act(self, obs, deterministic=False, rng=None):
        action = super().act(obs, deterministic, rng)
        return action * math.nan if len(self.states) > self.after else action


def test_a_nan_label_stops_dagger_before_a_checkpoint_can_store_it(tmp_path, monkeypatch):
    expert = PoisonedExpert(after=45)
    monkeypatch.setattr(dagger_module, "load_expert_policy", lambda source, env_id: expert)
    # A checkpoint at 40 and 50: the one at 50 would hold the NaN label of step 45 among its pending labels.
    settings = dict(TINY, dagger_every=30, dagger_bc_steps=10, eval_every=40, checkpoint_every=40)
    with pytest.raises(FloatingPointError, match=r"^dagger: the expert's label at step 45 is \[nan\]"):
        train(Line(), "dagger", expert_demos(), out=tmp_path / "d", steps=100, **settings)
    saved = torch.load(tmp_path / "d" / "checkpoint" / "dagger.pt", weights_only=True)
    assert saved["step"] == 40 and all(torch.isfinite(t).all() for t in saved["policy"].values())
    # With a sound expert the run resumes from that checkpoint and finishes.
    monkeypatch.setattr(dagger_module, "load_expert_policy", lambda source, env_id: CountingExpert())
    result = train(Line(), "dagger", expert_demos(), out=tmp_path / "d", steps=100, **settings)
    assert [row["step"] for row in result.history] == [40, 80, 100]


def test_a_diverging_dagger_round_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(dagger_module, "load_expert_policy", lambda source, env_id: CountingExpert())
    real_fit = dagger_module.maximum_likelihood

    def fit_that_diverges_after_step_0(policy, optimizer, *args, step=0, **kwargs):
        if step > 0:  # the rounds' fits (not the initial BC) get a step size that sends the weights to inf
            for group in optimizer.param_groups:
                group["lr"] = 1e30
        return real_fit(policy, optimizer, *args, step=step, **kwargs)

    monkeypatch.setattr(dagger_module, "maximum_likelihood", fit_that_diverges_after_step_0)
    settings = dict(TINY, dagger_every=30, dagger_bc_steps=10, eval_every=20, checkpoint_every=20)
    with pytest.raises(FloatingPointError, match=r"^dagger fit: non-finite .*\(step 30.*before this step reaches a checkpoint"):
        train(Line(), "dagger", expert_demos(), out=tmp_path / "d", steps=100, **settings)
    saved = torch.load(tmp_path / "d" / "checkpoint" / "dagger.pt", weights_only=True)
    assert saved["step"] == 20 and all(torch.isfinite(t).all() for t in saved["policy"].values())


# ----------------------------------------------------------------------------------- GAIL, AIRL
def pair_samples(rng, n, action):
    obs = rng.normal(size=(n, 1)).astype(np.float32) * 0.5
    actions = (action + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    next_obs = np.clip(obs + actions / 4, -2, 2).astype(np.float32)
    return {"obs": obs, "actions": actions, "next_obs": next_obs, "terminated": np.zeros(n, np.float32)}


def discriminator_problem(seed=0):
    """Expert actions near +0.5, learner's near -0.5, from the same states."""
    rng = np.random.default_rng(seed)
    expert = {k: torch.from_numpy(v) for k, v in pair_samples(rng, 200, 0.5).items()}
    learner = [pair_samples(rng, 40, -0.5) for _ in range(5)]
    return expert, learner


class FakeAgent:
    def __init__(self):
        torch.manual_seed(1)
        self.actor = TanhGaussianActor(1, 1, (16,), torch.tensor([-1.0]), torch.tensor([1.0]))


@pytest.mark.parametrize("name", ["gail", "airl"])
def test_discriminators_rank_expert_above_learner_after_training(name):
    torch.manual_seed(0)
    expert, learner = discriminator_problem()
    method = (GAIL(1, 1, hidden=(32, 32), discriminator_steps=200) if name == "gail" else
              AIRL(1, 1, hidden=(32, 32), discriminator_steps=200))
    method.attach(FakeAgent())
    learner_flat = {k: torch.from_numpy(np.concatenate([e[k] for e in learner])) for k in ("obs", "actions", "next_obs")}

    def rewards(samples):
        return method.reward(samples["obs"], samples["actions"], samples["next_obs"])

    before = (rewards(expert).mean() - rewards(learner_flat).mean()).item()
    metrics = method.update(expert, learner)
    after_expert, after_learner = rewards(expert), rewards(learner_flat)
    assert metrics["expert_accuracy"] > 0.95 and metrics["learner_accuracy"] > 0.95
    assert metrics["expert_reward"] == pytest.approx(after_expert.mean().item())
    # Every expert pair now earns more than the median learner pair, and the gap grew.
    assert (after_expert > after_learner.median()).float().mean() > 0.95
    assert (after_expert.mean() - after_learner.mean()).item() > before + 0.5


def test_gail_reward_is_minus_log_one_minus_d():
    torch.manual_seed(0)
    expert, learner = discriminator_problem()
    gail = GAIL(1, 1, hidden=(16,), discriminator_steps=20)
    gail.update(expert, learner)
    obs, actions = expert["obs"], expert["actions"]
    with torch.no_grad():
        d = torch.sigmoid(gail.net(torch.cat([obs, actions], dim=-1)).squeeze(-1)).double()
    reward = gail.reward(obs, actions, expert["next_obs"]).double()
    torch.testing.assert_close(reward, -torch.log1p(-d), rtol=1e-5, atol=1e-6)
    assert (reward >= 0).all()  # the documented sign: never negative, a survival bonus


def test_airl_discriminator_and_reward_forms(monkeypatch):
    """The logit AIRL trains is f - log pi(a|s), f = g(s, a) + gamma h(s') - h(s); the reward is f."""
    from soar.deep import airl as airl_module

    captured = {}
    original = airl_module.train_discriminator

    def spy(logit, optimizer, expert, learner, steps, batch, rng):
        captured.update(logit=logit, expert=expert)
        return original(logit, optimizer, expert, learner, steps, batch, rng)

    monkeypatch.setattr(airl_module, "train_discriminator", spy)
    torch.manual_seed(0)
    expert, learner = discriminator_problem()
    expert["actions"][:5] = 1.0  # saturated actions: their density is read just inside the box
    airl = AIRL(1, 1, gamma=0.9, hidden=(16,), discriminator_steps=20)
    agent = FakeAgent()
    airl.attach(agent)
    airl.update(expert, learner)
    obs, actions, next_obs = expert["obs"], expert["actions"], expert["next_obs"]
    with torch.no_grad():
        g = airl.g(torch.cat([obs, actions], dim=-1)).squeeze(-1).double()
        h, h_next = airl.h(obs).squeeze(-1).double(), airl.h(next_obs).squeeze(-1).double()
        inside = actions.clamp(-1 + 2e-4, 1 - 2e-4)
        log_pi = agent.actor.log_prob(obs, inside).double()
        trained_logit = captured["logit"](captured["expert"]).double()
    f = g + 0.9 * h_next - h
    torch.testing.assert_close(trained_logit, f - log_pi, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(airl.reward(obs, actions, next_obs).double(), f.clamp(-10, 10), rtol=1e-5, atol=1e-5)
    # D = sigmoid(logit) is AIRL's exp f / (exp f + pi(a|s)).
    d = torch.exp(f) / (torch.exp(f) + log_pi.exp())
    torch.testing.assert_close(torch.sigmoid(trained_logit), d, rtol=1e-4, atol=1e-6)


def test_airl_needs_the_agent():
    expert, learner = discriminator_problem()
    with pytest.raises(RuntimeError, match="attach"):
        AIRL(1, 1).update(expert, learner)


# ------------------------------------------------------------------------------------------ SQIL
@pytest.mark.parametrize("share, batch, critics", [(0.5, 16, 1), (0.25, 20, 3), (0.7, 10, 2)])
def test_sqil_minibatches_hold_the_expert_share_with_rewards_one_and_zero(share, batch, critics):
    env = Line(reward=math.nan)
    demos = expert_demos(n=3)
    flat = demos.transitions()
    # Expert states shifted far outside the task's [-2, 2] box, so each row's origin shows.
    expert = {"obs": flat["obs"] + 100, "actions": flat["acts"], "next_obs": flat["next_obs"] + 100,
              "terminated": flat["terminated"]}
    method = SQIL(share)
    agent = SAC(env, num_critics=critics, batch_size=batch, hidden=(8,), learning_starts=5, buffer_size=100,
                reward_fn=method.reward, **method.sac_options(expert))
    agent.learn(30)
    for _ in range(5):
        obs, actions, rewards, next_obs, terminated = agent.sample_minibatch()
        is_expert = obs[..., 0] > 50
        expected = round(share * batch)
        assert obs.shape[:2] == (critics, batch)
        assert (is_expert.sum(dim=1) == expected).all(), "every pair's minibatch holds the stated expert share"
        assert (rewards[is_expert] == 1.0).all() and (rewards[~is_expert] == 0.0).all()
        # The environment's NaN reward never reaches a row; the expert's flags are its own (never terminated).
        assert torch.isfinite(rewards).all() and (terminated[is_expert] == 0).all()


@pytest.mark.parametrize("share, batch", [(0.5, 1), (0.9, 3), (0.01, 10)])
def test_an_expert_share_that_leaves_no_expert_or_no_learner_row_is_refused(share, batch):
    flat = expert_demos(n=1).transitions()
    expert = {"obs": flat["obs"], "actions": flat["acts"], "next_obs": flat["next_obs"], "terminated": flat["terminated"]}
    with pytest.raises(ValueError, match="at least one expert and one learner row"):
        SAC(Line(), batch_size=batch, hidden=(8,), buffer_size=100, **SQIL(share).sac_options(expert))


def test_sqil_rows_come_from_the_expert_uniformly():
    env = Line()
    demos = expert_demos(n=1)
    flat = demos.transitions()
    expert = {"obs": np.arange(len(flat["obs"]), dtype=np.float32)[:, None] + 100, "actions": flat["acts"],
              "next_obs": flat["next_obs"], "terminated": flat["terminated"]}
    agent = SAC(env, batch_size=40, hidden=(8,), learning_starts=1, reward_fn=SQIL().reward, buffer_size=100,
                **SQIL().sac_options(expert))
    agent.learn(2)
    counts = np.zeros(len(flat["obs"]))
    for _ in range(400):
        obs = agent.sample_minibatch()[0][0, 20:, 0].numpy()
        np.add.at(counts, (obs - 100).astype(int), 1)
    # 8000 draws over HORIZON rows: a chi-square test of uniformity would flag a biased sampler.
    from scipy import stats

    assert stats.chisquare(counts).pvalue > 1e-3


# --------------------------------------------------------------------------------------- OPT-AIL
def test_opt_ail_term_changes_the_critic_loss_only_when_set():
    fresh = {lam: SAC(Line(), num_critics=2, batch_size=16, hidden=(8,), learning_starts=100, buffer_size=100,
                      critic_optimism=lam, seed=3) for lam in (0.0, 0.5)}
    for agent in fresh.values():
        agent.learn(30)  # no update yet (learning_starts 100): identical buffers and weights
    probe = copy.deepcopy(fresh[0.5])
    obs, actions, *_ = probe.sample_minibatch()  # the minibatch the next step will draw
    q = probe.pair_values(probe.critic, obs, actions).detach()  # (2L, B): every member's Q
    loss_plain = fresh[0.0].train_step()["critic_loss"]
    loss_optimistic = fresh[0.5].train_step()["critic_loss"]
    expected_term = -0.5 * q.mean(dim=1).sum().item()
    assert loss_optimistic - loss_plain == pytest.approx(expected_term, rel=1e-4, abs=1e-6)
    assert expected_term != 0


def test_critic_optimism_is_opt_ail_s_alone(tmp_path):
    assert build_config("X", "opt-ail").critic_optimism == 1e-3
    for name in SAC_METHODS:
        config = build_config("X", name, **TINY)
        method = make_method(config, Line())
        options = method.sac_options({"obs": torch.zeros(1, 1), "actions": torch.zeros(1, 1),
                                      "next_obs": torch.zeros(1, 1), "terminated": torch.zeros(1)})
        assert options.get("critic_optimism", 0.0) == (1e-3 if name == "opt-ail" else 0.0)
    demos_file = tmp_path / "demos.npz"
    save_demonstrations(expert_demos(), demos_file)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--env", ENV_ID, "--method", "ml-irl-sa", "--demos", str(demos_file), "--out",
              str(tmp_path / "r"), "--set", "critic_optimism=0.1"])
    assert exit_info.value.code == 2


# ----------------------------------------------------------------- X + SOAR, and the command line
@pytest.mark.parametrize("name", BASELINES_ON_SAC)
def test_each_baseline_on_sac_takes_the_optimistic_ensemble(tmp_path, name):
    result = train(Line(), name, expert_demos(), out=tmp_path / name, steps=60, critics=2, **TINY)
    state = torch.load(tmp_path / name / "checkpoint" / "agent.pt", weights_only=True)
    assert state["critic"]["layers.0.weight"].shape[0] == 4 and state["hyperparameters"]["num_critics"] == 2
    costs = read_log(tmp_path / name / "logs" / "cost.csv")
    assert [row["step"] for row in costs] == [20, 40, 60]
    assert all(math.isfinite(v) for row in costs for v in row.values())
    assert [row["step"] for row in result.history] == [50, 60]


@pytest.mark.parametrize("argv, problem", [
    (["--method", "bc", "--critics", "4"], "--critics"),
    (["--method", "dagger", "--critics", "2"], "--critics"),
    (["--method", "bc", "--steps", "1000"], "--steps"),
    (["--method", "gail", "--set", "expert_share=0.3"], "expert_share"),
    (["--method", "sqil", "--set", "expert_share=1"], "expert_share"),
    (["--method", "ml-irl", "--set", "dagger_every=10"], "dagger_every"),
    (["--method", "sqil", "--set", "cost_rollouts=5"], "cost_rollouts"),  # would spend steps on nothing
    (["--method", "dagger", "--set", "cost_episodes=5"], "cost_episodes"),
    (["--method", "bc", "--set", "log_every=5"], "log_every"),
])
def test_cli_refuses_settings_a_baseline_does_not_use(tmp_path, capsys, argv, problem):
    demos_file = tmp_path / "demos.npz"
    save_demonstrations(expert_demos(), demos_file)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--env", ENV_ID, "--demos", str(demos_file), "--out", str(tmp_path / "r"), *argv])
    assert exit_info.value.code == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_trains_bc_and_dagger(tmp_path, capsys, counting_expert):
    demos_file = tmp_path / "demos.npz"
    save_demonstrations(expert_demos(), demos_file)
    main(["train", "--env", ENV_ID, "--method", "bc", "--demos", str(demos_file), "--out", str(tmp_path / "bc"),
          "--no-progress", "--set", "bc_steps=30", "--set", "hidden=8", "--set", "eval_episodes=2"])
    assert "best deterministic return" in capsys.readouterr().out
    main(["train", "--env", ENV_ID, "--method", "dagger", "--demos", str(demos_file), "--out", str(tmp_path / "dg"),
          "--no-progress", "--steps", "40", "--set", "bc_steps=30", "--set", "hidden=8", "--set", "eval_episodes=2",
          "--set", "eval_every=20", "--set", "dagger_every=20", "--set", "dagger_bc_steps=5"])
    assert json.loads((tmp_path / "dg" / "config.json").read_text())["method"] == "dagger"
    assert len(counting_expert.states) == 40


# --------------------------------------------------------------------------- the reproduction driver
def load_driver():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_soar_deep.py"
    spec = importlib.util.spec_from_file_location("reproduce_soar_deep", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_driver_commands_leave_out_what_bc_and_dagger_refuse(tmp_path):
    driver = load_driver()
    jobs = {job.method: job for job in driver.SUITES["baselines"].jobs if job.seed == 0}
    assert set(jobs) == {"bc", "dagger", "gail", "airl", "sqil", "opt-ail"}
    bc, dagger, gail = (driver.command(jobs[m], tmp_path / m) for m in ("bc", "dagger", "gail"))
    assert "--critics" not in bc and "--steps" not in bc
    assert "--critics" not in dagger and dagger[dagger.index("--steps") + 1] == "200000"
    assert gail[gail.index("--critics") + 1] == "1"
    # Every command parses: soar train accepts what the driver writes (checked up to the run itself).
    from soar.cli import build_parser

    for argv in (bc, dagger, gail):
        build_parser().parse_args(argv[argv.index("train"):])


def test_driver_report_fills_bc_s_single_evaluation_into_every_column(tmp_path):
    from agents.config import write_config

    driver = load_driver()
    suite = driver.SUITES["baselines"]
    for seed, value in ((0, 100.0), (1, 300.0)):
        logs = tmp_path / "baselines" / f"bc-L1-s{seed}" / "logs"
        logs.mkdir(parents=True)
        (logs / "eval.csv").write_text(f"step,return_mean\n0,{value}\n")
        (logs.parent / "expert.json").write_text(json.dumps({"return_mean": 1000.0}))
        write_config(logs.parent / "config.json", build_config("Hopper-v5", "bc", seed=seed))
    text = driver.report(suite, "baselines", tmp_path, tmp_path / "report")
    row = next(line for line in text.splitlines() if line.startswith("| bc "))
    assert row.split(" | ")[1:7] == ["-", "2", "200", "200", "200", "200"]  # best: the mean of each seed's best
    assert (tmp_path / "report" / "baselines.png").exists()


def test_two_drivers_never_start_the_same_run(tmp_path):
    driver = load_driver()
    folder = tmp_path / "hopper" / "ml-irl-sa-L1-s0"
    first = driver.claim(folder)
    assert first is not None and driver.claim(folder) is None  # a second driver skips it
    first.release()
    again = driver.claim(folder)
    assert again is not None
    again.release()
    # A run folder in use by a soar train process is skipped too.
    folder.mkdir(parents=True)
    with RunLock(folder):
        assert driver.claim(folder) is None
    last = driver.claim(folder)
    assert last is not None
    last.release()
