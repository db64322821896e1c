"""Deep imitation (soar.deep): rewards relabelled, cost updates, CSIL's closed form, NaN stops, exact resumes,
step counting, settings precedence, the Python API on an unregistered environment, the CLI and Minari data.

Everything runs on a one-dimensional toy task (``Line``) with tiny networks and budgets.
"""

import dataclasses
import json
import math
import re
import shutil
import tempfile

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from scipy import integrate, stats

from agents.demonstrations import Demonstrations, save_demonstrations
from agents.harness import TrainingRun
from agents.logger import read_log
from agents.networks import TanhGaussianActor
from agents.policies import GaussianPolicy, load_policy
from agents.rollout import collect
from agents.sac import SAC
from soar.cli import main
from soar.deep import loop as deep_loop
from soar.deep.config import CONFIG_DIR, TrainConfig, build_config, parse_overrides
from soar.deep.csil import CSIL
from soar.deep.demos import load_expert
from soar.deep.loop import TrainResult, make_method, train
from soar.deep.ml_irl import MLIRL
from soar.deep.reward_net import REWARD_CLIP, RewardNet, absorbing_steps

METHODS = ("ml-irl", "ml-irl-sa", "f-irl", "csil", "gail", "airl", "sqil", "opt-ail")
HORIZON = 8
ENV_ID = "SoarTestLine-v0"  # the registered twin of Line, for the command line


class StepCounter:
    """Counts environment steps; shared, not copied, by the copies the loop makes of an environment."""

    def __init__(self) -> None:
        self.steps = 0

    def __deepcopy__(self, memo):
        return self


class Line(gym.Env):
    """``x' = clip(x + (a - offset) / (4 scale), -2, 2)`` per dimension, start ``x ~ U[-0.5, 0.5]``.

    Episodes are truncated after ``horizon`` steps, or terminated when ``x[0]`` reaches ``goal``.
    The reward is ``1 - |x'[0] - 1|``, or the constant ``reward`` (NaN to poison any critic that reads it).
    """

    def __init__(self, reward=None, goal=None, horizon=HORIZON, dim=1, low=-1.0, high=1.0, counter=None):
        self.observation_space = gym.spaces.Box(-2.0, 2.0, (dim,), np.float32)
        self.action_space = gym.spaces.Box(np.full(dim, low, np.float32), np.full(dim, high, np.float32))
        self.constant, self.goal, self.horizon, self.counter = reward, goal, horizon, counter
        self.offset, self.scale = (np.float32(high) + np.float32(low)) / 2, (np.float32(high) - np.float32(low)) / 2

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-0.5, 0.5, size=self.observation_space.shape).astype(np.float32)
        self.t = 0
        return self.x.copy(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float32).reshape(self.x.shape), self.action_space.low,
                    self.action_space.high)
        self.x = np.clip(self.x + (a - self.offset) / (4 * self.scale), -2, 2).astype(np.float32)
        self.t += 1
        if self.counter is not None:
            self.counter.steps += 1
        reward = 1 - abs(float(self.x[0]) - 1) if self.constant is None else self.constant
        terminated = self.goal is not None and bool(self.x[0] >= self.goal)
        return self.x.copy(), reward, terminated, self.t >= self.horizon and not terminated, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=Line)


class Push:
    """The demonstrator: always the same action."""

    def __init__(self, action) -> None:
        self.action = np.atleast_1d(np.asarray(action, dtype=np.float32))

    def act(self, obs, deterministic=False, rng=None):
        return self.action.copy()


def expert_demos(n=2, env_id=ENV_ID) -> Demonstrations:
    return Demonstrations(collect(Push(1.0), Line(), n, seed=0), env_id=env_id, source="test expert")


TINY = dict(learning_starts=20, batch_size=16, hidden=(16, 16), reward_hidden=(16, 16), buffer_size=1000,
            cost_every=20, cost_episodes=3, bc_steps=50, discriminator_steps=5, eval_every=50, eval_episodes=2,
            checkpoint_every=50, log_every=50)


@pytest.fixture(autouse=True)
def no_learning_curve(monkeypatch):
    """Skip drawing evaluations.png at every checkpoint (half of a tiny run's time; tests/test_harness.py covers it)."""
    monkeypatch.setattr(TrainingRun, "plot", lambda self: None)


def tiny(**changes):
    return {**TINY, **changes}


def cli_train(out, demos_file, **settings):
    """``soar train`` arguments for ENV_ID: a few settings as options, the others through --set
    (leaving out those the method does not use, which soar train refuses)."""
    settings = tiny(**settings)
    method = settings.pop("method", "ml-irl-sa")
    config = TrainConfig(env_id=ENV_ID, method=method, **settings)
    rules = {field.name: field.metadata.get("applies") for field in dataclasses.fields(TrainConfig)}
    settings = {name: value for name, value in settings.items() if rules[name] is None or rules[name][0](config)}
    argv = ["train", "--env", ENV_ID, "--out", str(out), "--demos", str(demos_file), "--no-progress",
            "--steps", str(settings.pop("steps")), "--method", method]
    for name, value in settings.items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        argv += ["--set", f"{name}={text}"]
    return argv


def progress_step(out) -> int:
    return json.loads((out / "checkpoint" / "progress.json").read_text())["step"]


def checkpoint_state(out) -> dict:
    return torch.load(out / "checkpoint" / "agent.pt", weights_only=True)


def steps_of(path) -> list[int]:
    return [row["step"] for row in read_log(path)]


# -------------------------------------------------- 1. critics never see the environment's reward
@pytest.mark.parametrize("method", METHODS)
def test_no_critic_is_ever_trained_on_the_environment_reward(tmp_path, monkeypatch, method):
    demos = expert_demos()
    result = train(Line(reward=math.nan), method, demos, out=tmp_path / "run", steps=150, **TINY)
    # Evaluation, and only evaluation, reads the environment's reward: it is NaN.
    assert [row["step"] for row in result.history] == [50, 100, 150]
    assert all(math.isnan(row["return_mean"]) for row in result.history)
    # SAC did learn, on finite rewards: a NaN reward in any critic target would have raised FloatingPointError.
    losses = read_log(tmp_path / "run" / "logs" / "train.csv")
    assert [row["step"] for row in losses] == [50, 100, 150]
    assert all(math.isfinite(row["critic_loss"]) and math.isfinite(row["actor_loss"]) for row in losses)
    # The replay buffer holds the environment's NaN rewards: only relabelling kept them from the critics.
    rewards = checkpoint_state(tmp_path / "run")["buffer_rewards"]
    assert rewards.shape == (150,) and torch.isnan(rewards).all()

    # The test can fail: the same run with SAC reading the buffer's reward stops at its first critic update.
    class Unrelabelled(SAC):
        def __init__(self, env, **settings):
            super().__init__(env, **{**settings, "reward_fn": None})

    monkeypatch.setattr(deep_loop, "SAC", Unrelabelled)
    with pytest.raises(FloatingPointError, match=r"non-finite critic_loss = nan.* at step 20 .*or afresh if there is none yet"):
        train(Line(reward=math.nan), method, demos, out=tmp_path / "unrelabelled", steps=150, **TINY)


# -------------------------------------------------- 2. cost updates move the reward the right way
def toy_samples(method, rng):
    """Expert and learner samples that only the method's reward can tell apart.

    State rewards (ml-irl, f-irl): expert states near +1, learner episodes at states -1 ... +1 (f-IRL's
    gradient is a covariance over episodes, so they must differ in how expert-like they are).
    State-action reward (ml-irl-sa): the same states for both, expert actions near +0.5, learner's near -0.5.
    """
    def episode(state, action, length):
        obs = (state + 0.1 * rng.normal(size=(length, 1))).astype(np.float32)
        actions = (action + 0.1 * rng.normal(size=(length, 1))).astype(np.float32)
        return {"obs": obs, "actions": actions, "next_obs": obs, "terminated": np.zeros(length, bool)}

    if method == "ml-irl-sa":
        expert = episode(rng.normal(size=(100, 1)) * 0.5, 0.5, 100)
        learner = [episode(rng.normal(size=(20, 1)) * 0.5, -0.5, 20) for _ in range(6)]
    else:
        expert = episode(1.0, 0.0, 100)
        learner = [episode(state, 0.0, 20) for state in np.linspace(-1, 1, 6)]
    return {k: torch.from_numpy(v) for k, v in expert.items()}, learner


def mean_reward(method, samples):
    obs, actions = samples["obs"], samples["actions"]
    return method.reward(torch.as_tensor(obs), torch.as_tensor(actions), torch.as_tensor(obs)).mean().item()


@pytest.mark.parametrize("name", ["ml-irl", "ml-irl-sa", "f-irl"])
def test_cost_update_raises_the_reward_of_the_expert_over_the_learner(name):
    torch.manual_seed(0)
    config = build_config("Toy", name, reward_hidden=(32, 32), reward_lr=1e-2, reward_weight_decay=0,
                          discriminator_steps=50)
    method = make_method(config, Line())
    expert, learner = toy_samples(name, np.random.default_rng(0))
    pooled = {k: np.concatenate([episode[k] for episode in learner]) for k in ("obs", "actions")}

    def gap():
        return mean_reward(method, expert) - mean_reward(method, pooled)

    before = gap()
    for _ in range(20):
        metrics = method.update(expert, learner)
    after = gap()
    assert after > max(before, 0.0) + 2.0, (before, after)
    assert all(math.isfinite(value) for value in metrics.values())
    obs = torch.linspace(-1.5, 1.5, 7).reshape(-1, 1)
    one, other = method.reward(obs, torch.full_like(obs, 0.9), obs), method.reward(obs, torch.full_like(obs, -0.9), obs)
    if name == "ml-irl-sa":
        assert torch.all(one > other)  # learnt from the actions alone: expert-like actions score higher
    else:
        torch.testing.assert_close(one, other, rtol=0, atol=0)  # a state-only reward ignores the action
    if name == "f-irl":
        # The discriminator's logit estimates log(rho_E / rho_learner): at +1 the expert's density over the
        # learner's mixture of six episodes (one of them around +1), far below zero where only the learner goes.
        states = np.linspace(-1, 1, 6)
        log_ratio = stats.norm(1.0, 0.1).logpdf(1.0) - np.log(stats.norm(states, 0.1).pdf(1.0).mean())
        logits = method.logit(torch.tensor([[1.0], [-1.0]])).detach()
        assert logits[0].item() == pytest.approx(log_ratio, abs=0.5) and logits[1] < -3


@pytest.mark.parametrize("name", ["ml-irl", "ml-irl-sa", "f-irl"])
def test_the_absorbing_state_is_charged_when_only_the_learner_terminates(name):
    """Expert and learner visit the same states and take the same actions; only the learner's episodes
    terminate (after 10 to 60 of the 100 steps the expert runs): the one thing to learn is that ending an
    episode is worse than anything the expert does."""
    rng = np.random.default_rng(2)

    def episode(length, terminated):
        obs = rng.normal(size=(length, 1)).astype(np.float32)
        actions = rng.normal(size=(length, 1)).astype(np.float32)
        return {"obs": obs, "actions": actions, "next_obs": obs,
                "terminated": np.arange(length) == length - 1 if terminated else np.zeros(length, bool)}

    expert = {k: torch.from_numpy(v) for k, v in episode(100, False).items()}
    expert["absorbing_steps"] = torch.tensor(0)
    learner = [episode(length, True) for length in (10, 20, 30, 40, 50, 60)]
    torch.manual_seed(0)
    config = build_config("Toy", name, reward_hidden=(16,), reward_lr=1e-2, reward_weight_decay=0,
                          discriminator_steps=20)
    method = make_method(config, Line(), horizon=100)
    for _ in range(30):
        metrics = method.update(expert, learner)
    on_expert_pairs = mean_reward(method, expert)
    assert metrics["absorbing_reward"] < 0  # logged before the update's step: the value one update earlier
    assert method.absorbing_reward() < on_expert_pairs - 0.2, (method.absorbing_reward(), on_expert_pairs)
    # Without the absorbing state nothing tells the two apart: the reward stays level.
    torch.manual_seed(0)
    plain = make_method(dataclasses.replace(config, absorbing="off"), Line(), horizon=100)
    for _ in range(30):
        plain.update(expert, learner)
    assert not hasattr(plain.net, "absorbing") or plain.net.absorbing is None
    assert plain.absorbing_reward() == 0.0


def test_mean_reward_counts_absorbed_steps_at_the_absorbing_reward():
    net = RewardNet(1, 1, state_only=True, hidden=(4,), absorbing=True)
    with torch.no_grad():
        net.absorbing.fill_(-3.0)
    obs = torch.tensor([[0.1], [0.7], [-2.0]])
    pairs = net(obs).sum().item()
    assert net.mean_reward(obs, None, absorbing_steps=5).item() == pytest.approx((pairs - 15.0) / 8, rel=1e-6)
    assert net.mean_reward(obs, None, absorbing_steps=0).item() == pytest.approx(pairs / 3, rel=1e-6)
    with torch.no_grad():
        net.absorbing.fill_(-50.0)
    assert net.absorbing_reward().item() == -REWARD_CLIP  # clamped like every output
    episodes = [{"obs": np.zeros(3), "terminated": np.array([0, 0, 1], bool)},
                {"obs": np.zeros(4), "terminated": np.zeros(4, bool)}]
    assert absorbing_steps(episodes, horizon=10) == 7


def test_a_run_written_before_a_setting_existed_resumes_with_the_value_it_had(tmp_path):
    from agents.config import check_resumable, write_config
    from soar.deep.config import read_config

    path = tmp_path / "config.json"
    write_config(path, TrainConfig(env_id=ENV_ID, steps=100))
    stored = json.loads(path.read_text())
    del stored["reward_steps"], stored["absorbing"]  # as written before these settings existed
    path.write_text(json.dumps(stored))
    old = read_config(path)
    assert (old.reward_steps, old.absorbing, old.uses_absorbing) == (1, "off", False)
    check_resumable(path, old)
    with pytest.raises(ValueError, match="absorbing: 'off' there, 'auto' now"):
        check_resumable(path, dataclasses.replace(old, absorbing="auto"))


def test_f_irl_puts_the_absorbing_state_at_the_floor_when_the_expert_never_terminates():
    """f-IRL's covariance gradient cannot tie r_abs to the state rewards' level (it is blind to a common
    shift): with no learner episode terminating, r_abs gets no gradient at all, and the state rewards
    drift; so when the expert never terminates r_abs is the floor, below every state reward."""
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(50, 1)).astype(np.float32)
    expert = {"obs": torch.from_numpy(obs), "actions": torch.from_numpy(obs), "next_obs": torch.from_numpy(obs),
              "absorbing_steps": torch.tensor(0)}
    learner = [{"obs": obs[:20] + 1.0, "actions": obs[:20], "next_obs": obs[:20], "terminated": np.zeros(20, bool)}
               for _ in range(3)]
    config = build_config("Toy", "f-irl", reward_hidden=(8,), discriminator_steps=5)
    learned = make_method(config, Line(), horizon=100, expert_terminates=True)
    floored = make_method(config, Line(), horizon=100, expert_terminates=False)
    for method in (learned, floored):
        for _ in range(5):
            metrics = method.update(expert, learner)
    assert learned.absorbing_reward() == 0.0  # no episode terminated: no gradient reached it
    assert floored.absorbing_reward() == metrics["absorbing_reward"] == -REWARD_CLIP
    rewards = floored.net(torch.from_numpy(np.concatenate([obs, obs + 1.0])))
    assert rewards.min().item() >= -REWARD_CLIP


@pytest.mark.parametrize("method", ["ml-irl", "ml-irl-sa", "f-irl", "csil"])
@pytest.mark.parametrize("absorbing", ["auto", "off"])
def test_terminal_transitions_bootstrap_the_methods_absorbing_value(tmp_path, monkeypatch, method, absorbing):
    """The critics' terminal value is r_abs / (1 - gamma) (csil: the reward's floor -10), or none when off."""
    seen = []

    class Recording(SAC):
        def __init__(self, env, **settings):
            super().__init__(env, **settings)
            seen.append(self)

    monkeypatch.setattr(deep_loop, "SAC", Recording)
    result = train(Line(goal=0.3), method, expert_demos(), out=tmp_path, absorbing=absorbing, gamma=0.9,
                   **tiny(steps=60))
    (agent,) = seen
    if absorbing == "off":
        assert agent.terminal_value is None
        return
    # csil, and f-irl whose expert never terminates here: the floor; ml-irl learns it (the learner's
    # episodes end at the goal, the expert's run to the limit)
    expected = -REWARD_CLIP if method in ("csil", "f-irl") else result.reward.absorbing_reward()
    assert agent.terminal_value() == pytest.approx(expected / (1 - 0.9))
    if method in ("ml-irl", "ml-irl-sa"):
        assert -REWARD_CLIP < expected < 0.0


@pytest.mark.parametrize("name", ["ml-irl-sa", "f-irl"])
def test_reward_steps_equal_repeated_single_step_updates_on_the_same_samples(name):
    expert, learner = toy_samples(name, np.random.default_rng(1))

    def reward_weights(reward_steps, updates):
        torch.manual_seed(0)
        method = make_method(build_config("Toy", name, reward_hidden=(16,), reward_lr=1e-2,
                                          reward_steps=reward_steps, discriminator_steps=1), Line())
        if name == "f-irl":  # freeze the discriminator: only the reward's steps are compared
            method.discriminator_steps = 0
        for _ in range(updates):
            method.update(expert, learner)
        return [p.detach().clone() for p in method.net.parameters()]

    several = reward_weights(reward_steps=3, updates=1)
    for a, b in zip(several, reward_weights(reward_steps=1, updates=3)):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(several, reward_weights(reward_steps=1, updates=1)))


def tanh_gaussian_log_density(mean, std, actions, low, high):
    """log q(a) of a = offset + scale tanh(u), u ~ N(mean, std), by the change of variables (float64)."""
    scale, offset = (high - low) / 2, (high + low) / 2
    y = (actions - offset) / scale
    u = np.arctanh(y)
    return (stats.norm(mean, std).logpdf(u) - np.log(scale * (1 - y**2))).sum(axis=-1)


def test_csil_reward_is_alpha_times_the_bc_log_density_ratio_and_the_actor_starts_as_q():
    low, high, alpha = np.array([-2.0, 0.0]), np.array([1.0, 3.0]), 0.1
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(512, 2)).astype(np.float32)
    expert_actions = np.stack([-0.5 + np.tanh(obs[:, 0]), 1.5 + np.tanh(obs[:, 1])], axis=1)
    expert_actions = (expert_actions + 0.05 * rng.normal(size=expert_actions.shape)).astype(np.float32)
    csil = CSIL(2, 2, low, high, alpha, hidden=(32, 32), bc_steps=300, seed=0)
    csil.fit(torch.from_numpy(obs), torch.from_numpy(expert_actions))

    states = obs[:64]
    uniform = rng.uniform(low + 0.05 * (high - low), high - 0.05 * (high - low), size=(64, 2)).astype(np.float32)
    with torch.no_grad():
        mean, std = (x.double().numpy() for x in csil.policy.distribution(torch.from_numpy(states)))
    for actions in (expert_actions[:64], uniform):
        log_q = tanh_gaussian_log_density(mean, std, actions.astype(np.float64), low, high)
        log_p0 = -np.log((high - low).prod())  # uniform on the box: -log 9
        expected = np.clip(alpha * (log_q - log_p0), -10, 10)
        got = csil.reward(torch.from_numpy(states), torch.from_numpy(actions), torch.from_numpy(states)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    # q learnt the expert: its reward is higher on the expert's actions than on uniform ones at the same states.
    r_expert = csil.reward(torch.from_numpy(states), torch.from_numpy(expert_actions[:64]), None).mean()
    assert r_expert > csil.reward(torch.from_numpy(states), torch.from_numpy(uniform), None).mean() + 0.2
    # exp(r / alpha) p0 is q: a probability density on the box (midpoint rule at one state).
    edges = [np.linspace(lo, hi, 401) for lo, hi in zip(low, high)]
    mids = [(e[1:] + e[:-1]) / 2 for e in edges]
    grid = np.stack(np.meshgrid(*mids, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float32)
    state = np.repeat(states[:1], len(grid), axis=0)
    r = csil.reward(torch.from_numpy(state), torch.from_numpy(grid), None).double().numpy()
    cell = np.prod([e[1] - e[0] for e in edges])
    assert np.exp(r / alpha - np.log((high - low).prod())).sum() * cell == pytest.approx(1.0, abs=1e-3)

    # initialise: the SAC actor becomes q (tanh of q's mean, deterministically; q's density, stochastically).
    agent = SAC(Line(dim=2, low=low, high=high), hidden=(32, 32), seed=0)
    q_action = (high + low) / 2 + (high - low) / 2 * np.tanh(mean)
    assert not np.allclose(agent.act(states, deterministic=True), q_action, atol=1e-3)
    csil.initialise(agent)
    np.testing.assert_allclose(agent.act(states, deterministic=True), q_action, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(agent.log_prob(states, uniform),
                               tanh_gaussian_log_density(mean, std, uniform.astype(np.float64), low, high),
                               rtol=1e-3, atol=1e-3)


def test_csil_run_starts_from_the_bc_policy(tmp_path):
    # No SAC update before learning_starts: the run's policy is q itself.
    result = train(Line(), "csil", expert_demos(), out=tmp_path, **tiny(steps=10, learning_starts=100, eval_every=10))
    obs = np.linspace(-2, 2, 9, dtype=np.float32).reshape(-1, 1)
    with torch.no_grad():
        mean, _ = result.reward.policy.distribution(torch.from_numpy(obs))
    np.testing.assert_allclose(result.policy.act(obs, deterministic=True), np.tanh(mean.numpy()), rtol=1e-5, atol=1e-6)
    assert read_log(tmp_path / "logs" / "cost.csv")[0]["step"] == 0  # the BC fit's likelihood, before any step


# -------------------------------------------------- 3. a NaN stops the run; the last good checkpoint stays
NAN_SETTINGS = tiny(steps=150, cost_every=25)  # cost updates at 25, 50, ..., checkpoints at 50, 100, 150


def poison(monkeypatch, where):
    """Make the ml-irl-sa reward go wrong mid-run; return (error message pattern, last good checkpoint)."""
    original_update, original_reward = MLIRL.update, MLIRL.reward
    calls = []

    if where == "reward":  # the reward turns NaN from the 91st SAC update on: step 20 + 90 = 110
        def reward(self, obs, actions, next_obs):
            calls.append(1)
            value = original_reward(self, obs, actions, next_obs)
            return value * math.nan if len(calls) > 90 else value

        monkeypatch.setattr(MLIRL, "reward", reward)
        return r"^SAC: non-finite critic_loss = nan.* at step 110 ", 100
    if where == "weights":  # the 4th cost update (step 100, a checkpoint step) leaves NaN weights
        def update(self, expert, learner):
            metrics = original_update(self, expert, learner)
            calls.append(1)
            if len(calls) == 4:
                with torch.no_grad():
                    for parameter in self.net.parameters():
                        parameter.fill_(math.nan)
            return metrics

        monkeypatch.setattr(MLIRL, "update", update)
        return r"^ml-irl-sa checkpoint: non-finite reward\.net\..* at step 100;", 50
    # the 3rd cost update (step 75) reports a NaN loss
    def update(self, expert, learner):
        metrics = original_update(self, expert, learner)
        calls.append(1)
        return {**metrics, "cost_loss": math.nan} if len(calls) == 3 else metrics

    monkeypatch.setattr(MLIRL, "update", update)
    return r"^ml-irl-sa cost update: non-finite cost_loss = nan at step 75;", 50


def assert_intact_checkpoint(out, step):
    assert progress_step(out) == step  # no checkpoint after the NaN
    assert int(checkpoint_state(out)["counters"][0]) == step
    assert not (out / "checkpoint.tmp").exists()
    method = torch.load(out / "checkpoint" / "method.pt", weights_only=True)
    assert all(torch.isfinite(tensor).all() for tensor in method["net"].values())


@pytest.mark.parametrize("where", ["reward", "weights", "metric"])
def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, where):
    message, last_good = poison(monkeypatch, where)
    with pytest.raises(FloatingPointError, match=message):
        train(Line(), "ml-irl-sa", expert_demos(), out=tmp_path, **NAN_SETTINGS)
    assert_intact_checkpoint(tmp_path, last_good)
    # Fixed, the run resumes from that checkpoint and finishes.
    monkeypatch.undo()
    result = train(Line(), "ml-irl-sa", expert_demos(), out=tmp_path, **NAN_SETTINGS)
    assert [row["step"] for row in result.history] == [50, 100, 150]
    assert progress_step(tmp_path) == 150


def test_soar_train_stops_on_a_nan_with_one_line(tmp_path, monkeypatch):
    save_demonstrations(expert_demos(), tmp_path / "expert.npz")
    message, last_good = poison(monkeypatch, "metric")
    with pytest.raises(SystemExit) as stop:
        main(cli_train(tmp_path / "run", tmp_path / "expert.npz", **NAN_SETTINGS))
    text = str(stop.value.code)
    assert "\n" not in text and re.match("soar train: " + message[1:], text)
    assert_intact_checkpoint(tmp_path / "run", last_good)


# -------------------------------------------------- 4. a resumed run is the uninterrupted run
@pytest.mark.parametrize("method, rollouts", [(m, 0) for m in METHODS] + [("ml-irl-sa", 1)])
def test_a_run_split_at_a_checkpoint_equals_the_uninterrupted_run(tmp_path, method, rollouts):
    settings = tiny(cost_every=20, eval_every=30, checkpoint_every=60, log_every=30, cost_rollouts=rollouts)
    whole = train(Line(), method, expert_demos(), out=tmp_path / "whole", steps=120, **settings)
    first = train(Line(), method, expert_demos(), out=tmp_path / "split", steps=60, **settings)
    assert first.history == whole.history[: len(first.history)] and len(first.history) < len(whole.history)
    resumed = train(Line(), method, expert_demos(), out=tmp_path / "split", steps=120, **settings)
    assert resumed.history == whole.history
    for log in ("eval", "cost"):
        rows = read_log(tmp_path / "split" / "logs" / f"{log}.csv")
        assert rows and rows == read_log(tmp_path / "whole" / "logs" / f"{log}.csv"), log
    losses = [read_log(tmp_path / out / "logs" / "train.csv") for out in ("split", "whole")]
    assert [row["step"] for row in losses[0]] == [row["step"] for row in losses[1]]
    if not rollouts:
        # (With rollouts the checkpoint falls inside a log_every window of SAC's steps: the resumed run's first
        # logged losses average only the steps after the checkpoint, the uninterrupted run's the whole window.)
        assert losses[0] == losses[1]
    assert progress_step(tmp_path / "split") == progress_step(tmp_path / "whole") >= 120
    weights = [load_policy(tmp_path / out / "final_policy.pt").actor.state_dict() for out in ("split", "whole")]
    for name, tensor in weights[0].items():
        torch.testing.assert_close(tensor, weights[1][name], rtol=0, atol=0, msg=name)
    for name, tensor in resumed.policy.actor.state_dict().items():
        torch.testing.assert_close(tensor, whole.policy.actor.state_dict()[name], rtol=0, atol=0, msg=name)


# -------------------------------------------------- 5. the x-axis counts cost rollouts, never evaluations
def expected_counts(steps, learning_starts, cost_every, rollouts, eval_every):
    """The documented counting, re-implemented: SAC steps, cost rollouts of HORIZON steps each, evaluations
    whenever the count crosses a multiple of eval_every (or reaches the budget)."""
    sac = extra = 0
    updates, evaluations = [], []
    while sac + extra < steps:
        sac += 1
        previous = sac + extra - 1
        if sac >= learning_starts and sac % cost_every == 0:
            extra += rollouts * HORIZON
            updates.append(sac + extra)
        now = sac + extra
        if now // eval_every > previous // eval_every or previous < steps <= now:
            evaluations.append(now)
    return sac, extra, updates, evaluations


@pytest.mark.parametrize("rollouts", [0, 2])
def test_steps_count_cost_rollouts_but_not_evaluation_episodes(tmp_path, rollouts):
    training, evaluation = StepCounter(), StepCounter()
    settings = tiny(steps=100, cost_every=20, eval_every=25, checkpoint_every=50, cost_rollouts=rollouts)
    result = train(Line(counter=training), "ml-irl-sa", expert_demos(), out=tmp_path,
                   eval_env=Line(counter=evaluation), **settings)
    sac, extra, updates, evaluations = expected_counts(100, 20, 20, rollouts, 25)
    assert extra == rollouts * HORIZON * len(updates)
    assert training.steps == sac == int(checkpoint_state(tmp_path)["counters"][0])  # SAC's num_timesteps
    assert progress_step(tmp_path) == sac + extra  # the run's count: SAC's steps plus the rollouts'
    assert steps_of(tmp_path / "logs" / "cost.csv") == updates
    assert [row["step"] for row in result.history] == steps_of(tmp_path / "logs" / "eval.csv") == evaluations
    # The evaluation environment (and its copy for rollouts) ran the rollouts and the evaluation episodes,
    # of which only the rollouts were counted.
    assert evaluation.steps == extra + len(evaluations) * settings["eval_episodes"] * HORIZON


# -------------------------------------------------- 6. settings: defaults < YAML < explicit < --set
DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainConfig)}


def yaml_settings(env_id, method):
    data = yaml.safe_load((CONFIG_DIR / f"{env_id}.yaml").read_text())
    return {**{k: v for k, v in data.items() if k != "methods"}, **(data.get("methods", {}).get(method) or {})}


def test_config_precedence_through_the_api():
    pendulum = yaml_settings("InvertedPendulum-v5", "ml-irl-sa")
    assert pendulum["steps"] != DEFAULTS["steps"] and "batch_size" not in pendulum
    assert build_config("NoSuchEnv-v0", "ml-irl-sa") == TrainConfig(env_id="NoSuchEnv-v0")
    config = build_config("InvertedPendulum-v5")
    assert (config.steps, config.cost_every, config.batch_size) == (
        pendulum["steps"], pendulum["cost_every"], DEFAULTS["batch_size"])
    assert build_config("InvertedPendulum-v5", steps=500, batch_size="8").steps == 500
    # Per-method YAML entries override the file's top level.
    ml_irl, csil = yaml_settings("Hopper-v5", "ml-irl")["std_clip"], yaml_settings("Hopper-v5", "csil")["std_clip"]
    assert ml_irl != csil
    assert (build_config("Hopper-v5", "ml-irl").std_clip, build_config("Hopper-v5", "csil").std_clip) == (ml_irl, csil)
    assert build_config("Hopper-v5", "ml-irl", std_clip=3).std_clip == 3.0


def test_parse_overrides_reads_typed_values():
    assert parse_overrides(["batch_size=256", "hidden=64,64", "learning-rate=3e-4", "steps=1e3", " gamma = 0.9 ",
                            "demos=minari:a/b-v0", "std_clip=inf"]) == {
        "batch_size": 256, "hidden": (64, 64), "learning_rate": 3e-4, "steps": 1000, "gamma": 0.9,
        "demos": "minari:a/b-v0", "std_clip": math.inf}


BAD_SETTINGS = [
    ("batch_size", "--set takes key=value"),
    ("=3", "--set takes key=value"),
    ("no_such_setting=1", "unknown setting 'no_such_setting'"),
    ("batch_size=many", "setting batch_size: cannot read 'many' as int"),
    ("steps=2.5", "setting steps: cannot read '2.5' as int"),
    ("hidden=16,x", "setting hidden: cannot read"),
    ("cost_every=0", "cost_every must be an integer >= 1, got 0"),
    ("learning_rate=0", "learning_rate must be a finite number > 0, got 0.0"),
    ("std_clip=-1", "std_clip must be a number >= 0 or inf, got -1.0"),
    ("gamma=1", "gamma must lie in [0, 1), got 1.0"),
    ("method=trpo", "method must be one of"),
]


@pytest.mark.parametrize("assignment, message", BAD_SETTINGS)
def test_bad_overrides_raise_value_error_through_the_api(assignment, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_config("InvertedPendulum-v5", **{"method": "ml-irl-sa", **parse_overrides([assignment])})


@pytest.fixture
def captured_config(monkeypatch):
    """soar train's settings, with the training itself replaced by a stub."""
    configs = []

    def run_training(config, env, eval_env, demos, out, progress=False):
        configs.append(config)
        return TrainResult(None, None, [], out)

    monkeypatch.setattr(deep_loop, "run_training", run_training)
    return configs


@pytest.mark.parametrize("assignment, message", BAD_SETTINGS)
def test_bad_overrides_stop_soar_train_with_one_line(tmp_path, captured_config, capsys, assignment, message):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--env", "InvertedPendulum-v5", "--out", str(tmp_path), "--set", assignment])
    text = capsys.readouterr().err
    assert stop.value.code == 2  # a usage error, as argparse's own
    assert text.startswith("soar train: error: ") and message in text and text.count("\n") == 1
    assert not captured_config


@pytest.mark.parametrize("options, expected", [
    ([], {}),
    (["--steps", "300", "--batch-size", "8"], {"steps": 300, "batch_size": 8}),
    (["--steps", "300", "--set", "steps=400", "--set", "hidden=8,8"], {"steps": 400, "hidden": (8, 8)}),
    (["--method", "f-irl", "--set", "method=csil"], {"method": "csil"}),
    (["--set", "learning-rate=5e-4", "--learning-rate", "1e-2"], {"learning_rate": 5e-4}),
])
def test_soar_train_settings_precedence(tmp_path, captured_config, options, expected):
    main(["train", "--env", "InvertedPendulum-v5", "--out", str(tmp_path), "--no-progress", *options])
    (config,) = captured_config
    method = expected.get("method", "ml-irl-sa")
    layered = {**DEFAULTS, **yaml_settings("InvertedPendulum-v5", method), **expected}
    assert dataclasses.asdict(config) == {**layered, "env_id": "InvertedPendulum-v5", "method": method}


@pytest.mark.parametrize("precision", ["medium", "highest"])
def test_soar_train_sets_the_matmul_precision_for_the_run(tmp_path, monkeypatch, precision):
    seen = []
    monkeypatch.setattr(deep_loop, "run_training", lambda *args, **kwargs: seen.append(
        torch.get_float32_matmul_precision()) or TrainResult(None, None, [], tmp_path))
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        main(["train", "--env", "InvertedPendulum-v5", "--out", str(tmp_path), "--no-progress",
              "--matmul-precision", precision])
    finally:
        torch.set_float32_matmul_precision(before)
    assert seen == [precision]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A tiny run made by ``soar train`` on the registered toy environment."""
    folder = tmp_path_factory.mktemp("cli")
    save_demonstrations(expert_demos(), folder / "expert.npz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainingRun, "plot", lambda self: None)
        main(cli_train(folder / "run", folder / "expert.npz", steps=60, eval_every=30, checkpoint_every=30))
    return folder / "run"


def test_soar_train_resume_accepts_steps_and_refuses_other_changes(tmp_path, cli_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(cli_run, run)
    for options, refused in ((["--seed", "1"], "['seed']"), (["--set", "batch_size=8"], "['batch_size']"),
                             (["--steps", "90", "--out", str(tmp_path / "other")], "['out']")):
        with pytest.raises(SystemExit) as stop:
            main(["train", "--resume", str(run), "--no-progress", *options])
        assert stop.value.code == 2 and f"may change, drop {refused}" in capsys.readouterr().err
    assert progress_step(run) == 60
    capsys.readouterr()
    main(["train", "--resume", str(run), "--no-progress", "--steps", "90"])
    assert "best deterministic return" in capsys.readouterr().out
    assert progress_step(run) == 90 and steps_of(run / "logs" / "eval.csv") == [30, 60, 90]
    assert json.loads((run / "config.json").read_text())["steps"] == 90
    main(["train", "--resume", str(run), "--no-progress", "--set", "steps=120"])
    assert progress_step(run) == 120


# -------------------------------------------------- 7. the Python API on an unregistered environment
def test_train_on_an_unregistered_environment_instance(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where out=None puts the run
    demos = Demonstrations(collect(Push(1.0), Line(), 3, seed=5), source="python demos")
    result = train(Line(), "ml-irl-sa", demos, trajectories=1, **tiny(steps=60, eval_every=30))
    assert result.out.parent == tmp_path and (result.out / "final_policy.pt").exists()
    action, state = result.policy.predict(np.zeros(1, np.float32), deterministic=True)
    assert state is None and action.shape == (1,) and -1 <= action[0] <= 1
    actions, _ = result.policy.predict(np.zeros((5, 1), np.float32), deterministic=True)
    assert actions.shape == (5, 1)
    assert [row["step"] for row in result.history] == [30, 60]
    assert set(result.history[0]) >= {"step", "return_mean", "return_std", "episodes", "expert_fraction"}
    stored = json.loads((result.out / "config.json").read_text())
    assert (stored["env_id"], stored["trajectories"]) == ("Line", 1)
    expert = json.loads((result.out / "expert.json").read_text())
    assert expert["return_mean"] == pytest.approx(demos.returns[0])  # the first trajectory only


# -------------------------------------------------- 8. soar evaluate and soar plot
def test_soar_evaluate_reports_the_policy_return(cli_run, capsys):
    capsys.readouterr()
    main(["evaluate", str(cli_run), "--episodes", "3", "--seed", "5"])
    line = capsys.readouterr().out.strip()
    # The same episodes rolled out here by hand.
    policy, env, returns = load_policy(cli_run / "policy.pt"), gym.make(ENV_ID), []
    for seed in (5, 6, 7):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.predict(obs, deterministic=True)[0])
            total, done = total + reward, terminated or truncated
        returns.append(total)
    assert line.startswith(f"{ENV_ID} ml-irl-sa L=1 seed 0: return {np.mean(returns):.1f} +- {np.std(returns):.1f} "
                           "over 3 deterministic episodes")
    main(["evaluate", str(cli_run), "--episodes", "1", "--final"])
    assert "over 1 deterministic episodes" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="^soar evaluate: "):
        main(["evaluate", str(cli_run / "logs")])


@pytest.mark.parametrize("mean", [0.0, 12.0])  # 12: tanh(u) is 1 in float32, log_prob of the action is no use
def test_soar_evaluate_stochastic_reports_the_policy_entropy(cli_run, tmp_path, capsys, mean):
    """A policy of pre-tanh N(mean, 0.5^2) everywhere on the box [-2, 2]: its entropy by quadrature."""
    sigma, half_width = 0.5, 2.0
    run = tmp_path / "run"
    shutil.copytree(cli_run, run)
    actor = TanhGaussianActor(1, 1, (4,), torch.tensor([-half_width]), torch.tensor([half_width]))
    with torch.no_grad():
        for layer in (actor.mean, actor.log_std):
            layer.weight.zero_()
        actor.mean.bias.fill_(mean)
        actor.log_std.bias.fill_(math.log(sigma))
    GaussianPolicy(actor, ENV_ID).save(run / "policy.pt")
    # a = tanh(u) on [-1, 1], u ~ N(mean, sigma^2): H = H(u) + E[log(1 - tanh(u)^2)], the log written stably.
    log_jacobian, _ = integrate.quad(
        lambda u: stats.norm.pdf(u, mean, sigma) * 2 * (math.log(2) - u - np.logaddexp(0, -2 * u)),
        mean - 10 * sigma, mean + 10 * sigma)
    squashed = 0.5 * math.log(2 * math.pi * math.e * sigma ** 2) + log_jacobian
    capsys.readouterr()
    main(["evaluate", str(run), "--stochastic", "--episodes", "20"])
    out = capsys.readouterr().out
    assert "over 20 sampled episodes" in out and f"episodes of {HORIZON} steps on average" in out
    number = r"(-?[0-9.]+)"
    # 160 states x 16 draws: a standard error of about 0.01 nats.
    assert float(re.search(rf"entropy {number} nats per step", out).group(1)) == pytest.approx(
        squashed + math.log(half_width), abs=0.05)  # in the environment's units: the box's width adds log 2
    measured = float(re.search(rf"H on SAC's \[-1, 1\] box: {number} nats", out).group(1))
    assert measured == pytest.approx(squashed, abs=0.05)
    bonus = float(re.search(rf"alpha \* H = {number} per step", out).group(1))
    assert bonus == pytest.approx(json.loads((run / "config.json").read_text())["alpha"] * measured, abs=1e-3)


def test_soar_plot_writes_the_figure(cli_run, tmp_path, capsys):
    capsys.readouterr()
    main(["plot", str(cli_run.parent), "--out", str(tmp_path / "fig.png")])
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'fig.png'} (1 runs)"
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="^soar plot: no soar train runs"):
        main(["plot", str(tmp_path), "--out", str(tmp_path / "none.png")])


# -------------------------------------------------- 9. Minari datasets
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_minari_dataset_made_by_its_data_collector_loads_as_demonstrations(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    minari = pytest.importorskip("minari", reason="the optional minari extra is not installed")
    pytest.importorskip("jax", reason="Minari's DataCollector needs minari[create]")
    pytest.importorskip("h5py", reason="Minari's default storage needs minari[hdf5]")
    env = minari.DataCollector(Line(goal=1.0))
    collected = []
    for seed, push in enumerate([1.0, 0.0, 1.0, -0.5]):
        obs, _ = env.reset(seed=seed)
        observations, actions, terminated, truncated = [obs], [], False, False
        while not (terminated or truncated):
            action = np.array([push], np.float32)
            obs, _, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
        collected.append((np.array(observations), np.array(actions), terminated, truncated))
    env.create_dataset("soartest/line/pushes-v0", algorithm_name="constant pushes", author="tests",
                       author_email="tests@example.invalid", code_permalink="tests/test_deep_imitation.py",
                       description="toy", ref_min_score=0.0, ref_max_score=1.0)
    env.close()
    demos = load_expert("minari:soartest/line/pushes-v0", "Line", 3)
    assert len(demos) == 3 and demos.source == "minari:soartest/line/pushes-v0, first 3"
    for trajectory, (obs, actions, terminated, truncated) in zip(demos.trajectories, collected):
        np.testing.assert_array_equal(trajectory.obs, obs)
        np.testing.assert_array_equal(trajectory.acts, actions)
        assert (trajectory.terminated, trajectory.truncated) == (terminated, truncated)
    # Pushing at +1 reaches the goal (terminated) within the horizon; not pushing is cut off (truncated).
    assert [(t.terminated, t.truncated, len(t)) for t in demos.trajectories[1:2]] == [(False, True, HORIZON)]
    assert demos.trajectories[0].terminated and demos.trajectories[2].terminated
    with pytest.raises(ValueError, match=r"trajectories must be an integer in \[1, 4\]"):
        load_expert("minari:soartest/line/pushes-v0", "Line", 5)
    with pytest.raises(ValueError, match="cannot load the Minari dataset 'soartest/line/missing-v0'"):
        load_expert("minari:soartest/line/missing-v0", "Line", 1)


# -------------------------------------------------- 6. --device cuda (runs where a GPU is)
def check_device_run(tmp_path, monkeypatch, method, device):
    """A run on ``device`` keeps networks and minibatches there, checkpoints, and resumes there."""
    seen = set()
    sample = SAC.sample_minibatch

    def placed(self):
        batch = sample(self)
        seen.update({x.device.type for x in batch} | {p.device.type for p in self.critic.parameters()}
                    | {p.device.type for p in self.actor.parameters()})
        return batch

    monkeypatch.setattr(SAC, "sample_minibatch", placed)
    settings = tiny(device=device, cost_every=20, eval_every=30, checkpoint_every=60, log_every=30)
    first = train(Line(), method, expert_demos(), out=tmp_path, steps=60, **settings)
    resumed = train(Line(), method, expert_demos(), out=tmp_path, steps=120, **settings)
    assert seen == {device}
    assert progress_step(tmp_path) == 120 and resumed.history[: len(first.history)] == first.history
    assert all(math.isfinite(row["return_mean"]) for row in resumed.history)
    assert isinstance(load_policy(tmp_path / "final_policy.pt").predict(np.zeros(1, np.float32))[0], np.ndarray)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("method", METHODS)
def test_a_run_on_cuda_stays_there_and_resumes(tmp_path, monkeypatch, method):
    check_device_run(tmp_path, monkeypatch, method, "cuda")


def test_the_device_check_itself_on_the_cpu(tmp_path, monkeypatch):
    # The same check where every machine can run it, so the CUDA test's logic is exercised everywhere.
    check_device_run(tmp_path, monkeypatch, "ml-irl-sa", "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_critic_ensemble_computes_the_same_values_on_cuda():
    agent = SAC(Line(), num_critics=3, hidden=(16, 16), batch_size=8, learning_starts=0, device="cpu")
    on_gpu = type(agent.critic)(6, 2, (16, 16), 1).to("cuda")
    on_gpu.load_state_dict(agent.critic.state_dict())
    obs, actions = torch.randn(3, 8, 1), torch.rand(3, 8, 1) * 2 - 1
    torch.testing.assert_close(agent.pair_values(on_gpu, obs.cuda(), actions.cuda()).cpu(),
                               agent.pair_values(agent.critic, obs, actions), rtol=1e-4, atol=1e-5)
