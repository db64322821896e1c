"""SAC with a batched critic ensemble: formulas, equivalences, relabelling, bad input."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.logger import RunLogger, read_log
from agents.networks import EnsembleMLP
from agents.optimism import optimistic_value
from agents.sac import SAC


def small_agent(num_critics=2, **kwargs):
    env = gym.make("Pendulum-v1")
    defaults = dict(hidden=(32, 32), batch_size=16, learning_starts=32, buffer_size=1000)
    defaults.update(kwargs)
    return SAC(env, num_critics=num_critics, **defaults)


def test_optimistic_value_hand_made_values_on_tensors():
    pair_min = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 9.0]])  # L = 3, B = 2
    # Column 0: mean 3, population std sqrt(8/3) = 1.633, clipped to 1.5 -> 3 + 2 * 1.5 = 6.
    # Column 1: mean 3, std sqrt(18) = 4.243 -> clipped to 1.5 -> 6.
    np.testing.assert_allclose(optimistic_value(pair_min, 2.0, 1.5, form="reward"), [6.0, 6.0])
    np.testing.assert_allclose(optimistic_value(pair_min, 0.5, 100.0, form="reward"),
                               [3 + 0.5 * np.sqrt(8 / 3), 3 + 0.5 * np.sqrt(18)], rtol=1e-6)
    # L = 1 is plain SAC: the pair minimum itself.
    np.testing.assert_allclose(optimistic_value(pair_min[:1], 2.0, 1.5, form="reward"), [1.0, 0.0])


def test_actor_loss_uses_the_shared_optimistic_value(monkeypatch):
    import agents.sac

    agent = small_agent(num_critics=3, optimism=0.7, std_clip=2.5)
    agent.learn(40)
    calls = []

    def spy(members, optimism, std_clip, form):
        calls.append((tuple(members.shape), optimism, std_clip, form))
        return optimistic_value(members, optimism, std_clip, form)

    monkeypatch.setattr(agents.sac, "optimistic_value", spy)
    agent.train_step()
    assert calls == [((3, 16), 0.7, 2.5, "reward")]


def test_batched_ensemble_equals_separate_networks():
    torch.manual_seed(0)
    ensemble = EnsembleMLP(3, 5, (8, 8), 1)
    x = torch.randn(3, 4, 5)
    out = ensemble(x)
    for member in range(3):
        layers = []
        for layer in ensemble.layers:
            linear = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[2])
            linear.weight.data = layer.weight.data[member].T.clone()
            linear.bias.data = layer.bias.data[member, 0].clone()
            layers += [linear, torch.nn.ReLU()]
        separate = torch.nn.Sequential(*layers[:-1])
        torch.testing.assert_close(out[member], separate(x[member]))


def test_members_are_initialised_independently():
    ensemble = EnsembleMLP(4, 3, (16,), 1)
    weights = ensemble.layers[0].weight
    assert not torch.allclose(weights[0], weights[1])


def test_relabelled_reward_reaches_the_critic_targets():
    agent = small_agent(num_critics=2, gamma=0.0, reward_fn=lambda s, a, s2: torch.full((s.shape[0],), 7.0))
    agent.learn(40)
    agent.buffer.rewards[:] = -1000.0  # the environment reward must not be used
    rng_state = copy.deepcopy(agent.rng.bit_generator.state)
    critic_before = copy.deepcopy(agent.critic)
    losses = agent.train_step()
    # Same minibatch indices: with gamma = 0 the target is the constant 7.
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    indices = rng.integers(0, agent.buffer.size, size=(2, 16))
    obs, actions, _, _, _ = agent.buffer.sample(indices)
    with torch.no_grad():
        q = agent.pair_values(critic_before, obs, actions)
    expected = ((q - 7.0) ** 2).mean(dim=1).sum()
    assert losses["critic_loss"] == pytest.approx(float(expected), rel=1e-5)


class EndsAtOnce(gym.Env):
    """Every episode terminates after its first step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


@pytest.mark.parametrize("terminal_value, expected_target", [(None, 7.0), (lambda: 4.0, 7.0 + 0.5 * 4.0)])
def test_terminal_transitions_bootstrap_the_terminal_value(terminal_value, expected_target):
    agent = SAC(EndsAtOnce(), num_critics=2, hidden=(16,), batch_size=16, learning_starts=32, buffer_size=100,
                gamma=0.5, reward_fn=lambda s, a, s2: torch.full((s.shape[0],), 7.0), terminal_value=terminal_value)
    agent.learn(40)
    rng_state = copy.deepcopy(agent.rng.bit_generator.state)
    critic_before = copy.deepcopy(agent.critic)
    losses = agent.train_step()
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    obs, actions, _, _, terminated = agent.buffer.sample(rng.integers(0, agent.buffer.size, size=(2, 16)))
    assert bool(terminated.all())
    with torch.no_grad():
        q = agent.pair_values(critic_before, obs, actions)
    expected = ((q - expected_target) ** 2).mean(dim=1).sum()
    assert losses["critic_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_each_pair_gets_its_own_minibatch(monkeypatch):
    agent = small_agent(num_critics=3)
    agent.learn(40)
    seen = []
    original = agent.buffer.sample

    def spy(indices):
        seen.append(indices.copy())
        return original(indices)

    monkeypatch.setattr(agent.buffer, "sample", spy)
    agent.train_step()
    assert seen[0].shape == (3, 16)
    assert not np.array_equal(seen[0][0], seen[0][1])


def test_restore_round_trip(tmp_path):
    agent = small_agent()
    agent.learn(40)
    path = tmp_path / "agent.pt"
    agent.save(path, include_buffer=True)
    other = small_agent(seed=5)
    assert other.restore(path) is other
    obs = np.zeros(3, dtype=np.float32)
    np.testing.assert_allclose(agent.act(obs, deterministic=True), other.act(obs, deterministic=True))
    assert other.num_timesteps == 40 and other.buffer.size == 40
    with pytest.raises(ValueError, match="holds 2 critics, this agent has 3"):
        small_agent(num_critics=3).restore(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable SAC checkpoint"):
        agent.restore(tmp_path / "junk.pt")
    torch.save({"actor": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a SAC checkpoint of this toolkit"):
        SAC.load(tmp_path / "foreign.pt", gym.make("Pendulum-v1"))


def test_recent_episodes_read_back_the_learners_transitions_and_survive_a_restore(tmp_path):
    agent = small_agent(learning_starts=1000)  # random actions: Pendulum episodes are 200 steps
    agent.learn(450)
    assert agent.completed_episodes == [(0, 200), (200, 400)]
    first, second = agent.recent_episodes(5)
    np.testing.assert_array_equal(second["obs"], agent.buffer.obs[200:400])
    np.testing.assert_array_equal(first["next_obs"][:-1], first["obs"][1:])  # contiguous within an episode
    assert "rewards" not in first  # imitation never reads the environment's reward
    agent.save(tmp_path / "agent.pt", include_buffer=True)
    restored = small_agent(seed=3).restore(tmp_path / "agent.pt")
    assert restored.completed_episodes == agent.completed_episodes and restored.episode_start == 400
    # A checkpoint written before episodes were recorded (three counters) still resumes.
    state = torch.load(tmp_path / "agent.pt", weights_only=True)
    state["counters"] = state["counters"][:3]
    del state["completed_episodes"]
    torch.save(state, tmp_path / "older.pt")
    older = small_agent(seed=3).restore(tmp_path / "older.pt")
    assert older.num_timesteps == 450 and older.episode_start == 450 and older.completed_episodes == []
    # An episode cut short (as at a checkpoint) is not a complete one: the cost update never sees it.
    agent.new_episode(seed=5)
    agent.learn(100)
    assert agent.completed_episodes == [(0, 200), (200, 400)] and agent.episode_start == 450
    assert len(agent.recent_episodes(5)) == 2
    # The noise generator's state belongs to a kind of device: another kind is refused by name.
    state["generator_device"] = "cuda"
    torch.save(state, tmp_path / "gpu.pt")
    with pytest.raises(ValueError, match="written on the cuda, this agent runs on the cpu; resume it with device='cuda'"):
        small_agent(seed=3).restore(tmp_path / "gpu.pt")


@pytest.mark.parametrize("num_critics, alpha", [(1, "auto"), (3, 0.2)])
def test_load_class_method_rebuilds_the_agent(tmp_path, num_critics, alpha):
    agent = small_agent(num_critics=num_critics, alpha=alpha, optimism=0.5, std_clip=float("inf"), hidden=(16, 8),
                        gamma=0.9, seed=4)
    agent.learn(40)
    agent.save(tmp_path / "agent.pt")
    # The stored hyperparameters are plain values: the file loads with weights_only=True.
    stored = torch.load(tmp_path / "agent.pt", weights_only=True)["hyperparameters"]
    assert stored == agent.hyperparameters and stored["hidden"] == [16, 8] and stored["alpha"] == alpha
    loaded = SAC.load(tmp_path / "agent.pt", gym.make("Pendulum-v1"))
    assert loaded.hyperparameters == agent.hyperparameters and loaded.num_timesteps == 40
    obs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True), agent.act(obs, deterministic=True))
    # Stochastic actions too: the action-noise generator was restored.
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    for p, q in zip(agent.critic.parameters(), loaded.critic.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # reward_fn is never stored; it and the other arguments can be overridden.
    relabel = lambda s, a, s2: torch.zeros(s.shape[0])  # noqa: E731
    override = SAC.load(tmp_path / "agent.pt", gym.make("Pendulum-v1"), reward_fn=relabel, learning_starts=7)
    assert override.reward_fn is relabel and override.learning_starts == 7
    with pytest.raises(ValueError, match="unknown arguments"):
        SAC.load(tmp_path / "agent.pt", gym.make("Pendulum-v1"), num_q_pairs=2)


def test_predict_returns_the_action_and_no_state():
    agent = small_agent()
    obs = np.zeros((4, 3), dtype=np.float32)
    action, state = agent.predict(obs, deterministic=True)
    assert state is None and action.shape == (4, 1)
    np.testing.assert_array_equal(action, agent.act(obs, deterministic=True))


def test_callback_returning_false_stops_learning():
    agent = small_agent()
    seen = []

    def callback(agent):
        seen.append(agent.num_timesteps)
        return None if agent.num_timesteps < 25 else agent.num_timesteps < 30

    agent.learn(100, callback=callback)
    assert agent.num_timesteps == 30 and seen == list(range(1, 31))
    agent.learn(5, callback=lambda agent: True)
    assert agent.num_timesteps == 35


def test_learn_logs_averaged_losses_every_log_every_steps(tmp_path, monkeypatch):
    agent = small_agent(learning_starts=20)
    losses = []
    original = agent.train_step

    def recording():
        result = original()
        losses.append(result)
        return result

    monkeypatch.setattr(agent, "train_step", recording)
    with RunLogger(tmp_path) as logger:
        agent.learn(50, logger=logger, log_every=20)
    train = read_log(tmp_path / "logs" / "train.csv")
    # Updates start at step 20 (learning_starts) once the buffer holds a batch (16 < 20).
    assert [row["step"] for row in train] == [20, 40]
    assert [row["step"] for row in read_log(tmp_path / "logs" / "time.csv")] == [20, 40]
    first, second = losses[:1], losses[1:21]
    for row, window in ((train[0], first), (train[1], second)):
        for key in ("critic_loss", "actor_loss", "alpha"):
            assert row[key] == pytest.approx(np.mean([loss[key] for loss in window]), rel=1e-12)
    assert all(row["steps_per_second"] > 0 and row["elapsed_seconds"] >= 0
               for row in read_log(tmp_path / "logs" / "time.csv"))
    with pytest.raises(ValueError, match="log_every"):
        agent.learn(5, logger=logger, log_every=0)


def test_seeded_runs_are_reproducible():
    torch.set_num_threads(1)
    a, b = small_agent(seed=3), small_agent(seed=3)
    a.learn(60)
    b.learn(60)
    for p, q in zip(a.actor.parameters(), b.actor.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("learning_starts", [0, 5])
def test_learning_starts_at_learning_starts_even_below_the_batch_size(learning_starts):
    # Spec: one update per environment step after learning_starts random steps. Minibatches are
    # drawn with replacement (as stable-baselines3 does), so a buffer smaller than the batch (16)
    # is no reason to wait: the optimisers' first steps come right after step learning_starts.
    agent = small_agent(num_critics=1, batch_size=16, learning_starts=learning_starts)
    critic_steps, actor_steps = [], []
    agent.critic_optimizer.register_step_post_hook(lambda *_: critic_steps.append(agent.num_timesteps))
    agent.actor_optimizer.register_step_post_hook(lambda *_: actor_steps.append(agent.num_timesteps))
    agent.learn(learning_starts + 3)
    expected = list(range(max(learning_starts, 1), learning_starts + 4))
    assert critic_steps == actor_steps == expected
    assert agent.num_gradient_steps == len(expected)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SAC(gym.make("CartPole-v1")), "Box action space"),
        (lambda: small_agent(num_critics=0), "num_critics must be an integer >= 1"),
        (lambda: small_agent(std_clip=-1.0), "std_clip must be a number >= 0 or inf"),
        (lambda: small_agent(optimism=-0.5), "optimism must be a finite number >= 0"),
        (lambda: small_agent(alpha=-0.1), "alpha must be a finite number >= 0, got -0.1"),
    ],
)
def test_bad_configuration(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_observation_shape():
    agent = small_agent()
    with pytest.raises(ValueError, match=r"observation must have shape \(3,\)"):
        agent.act(np.zeros(4))


def test_resumed_training_matches_uninterrupted(tmp_path):
    torch.set_num_threads(1)
    straight = small_agent(seed=1)
    straight.learn(40)
    straight.save(tmp_path / "mid.pt", include_buffer=True)
    for _ in range(5):
        straight.train_step()
    resumed = small_agent(seed=99).restore(tmp_path / "mid.pt")
    for _ in range(5):
        resumed.train_step()
    for p, q in zip(straight.critic.parameters(), resumed.critic.parameters()):
        torch.testing.assert_close(p, q)


def test_flushed_denormals_zeroes_subnormals_only_inside():
    from agents.sac import flushed_denormals

    tiny = torch.tensor([1e-39])  # below float32's smallest normal, 1.18e-38
    assert (tiny * 2).item() > 0
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    with flushed_denormals():
        assert (tiny * 2).item() == 0.0
        assert (torch.tensor([1e-30]) * 2).item() == pytest.approx(2e-30)
        with flushed_denormals():
            pass
        assert (tiny * 2).item() == 0.0  # an inner exit leaves the outer context flushing
    assert (tiny * 2).item() > 0


def test_resume_keeps_the_write_position_of_a_wrapped_buffer(tmp_path):
    agent = small_agent(buffer_size=50, learning_starts=10)
    agent.learn(70)  # 70 transitions into 50 slots: the oldest is now at index 20
    assert (agent.buffer.size, agent.buffer.position) == (50, 20)
    agent.save(tmp_path / "a.pt", include_buffer=True)
    resumed = SAC.load(tmp_path / "a.pt", gym.make("Pendulum-v1"))
    assert (resumed.buffer.size, resumed.buffer.position) == (50, 20)
    oldest = resumed.buffer.obs[20].copy()
    resumed.learn(1)
    assert not np.array_equal(resumed.buffer.obs[20], oldest)  # the oldest was overwritten


@pytest.mark.parametrize("stop_at", [20, 50])  # inside the random warm-up, and after it
def test_learning_resumed_from_a_checkpoint_continues_exactly(tmp_path, stop_at):
    torch.set_num_threads(1)
    straight = small_agent(seed=2, learning_starts=32)
    straight.learn(stop_at)
    straight.save(tmp_path / "agent.pt", include_buffer=True)
    straight.new_episode(seed=11)
    straight.learn(30)
    resumed = SAC.load(tmp_path / "agent.pt", gym.make("Pendulum-v1"))
    resumed.new_episode(seed=11)
    resumed.learn(30)
    np.testing.assert_array_equal(resumed.buffer.actions, straight.buffer.actions)
    np.testing.assert_array_equal(resumed.buffer.obs, straight.buffer.obs)
    for p, q in zip(straight.actor.parameters(), resumed.actor.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
