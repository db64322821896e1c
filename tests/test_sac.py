"""SAC with a batched critic ensemble: formulas, equivalences, relabelling, bad input."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.networks import EnsembleMLP
from agents.sac import SAC, optimistic_q


def small_agent(num_q_pairs=2, **kwargs):
    env = gym.make("Pendulum-v1")
    defaults = dict(hidden=(32, 32), batch_size=16, learning_starts=32, buffer_size=1000)
    defaults.update(kwargs)
    return SAC(env, num_q_pairs=num_q_pairs, **defaults)


def test_optimistic_q_hand_made_values():
    pair_min = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 9.0]])  # L = 3, B = 2
    # Column 0: mean 3, population std sqrt(8/3) = 1.633, clipped to 1.5 -> 3 + 2 * 1.5 = 6.
    # Column 1: mean 3, std sqrt(18) = 4.243 -> clipped to 1.5 -> 6.
    np.testing.assert_allclose(optimistic_q(pair_min, 2.0, 1.5), [6.0, 6.0])
    np.testing.assert_allclose(optimistic_q(pair_min, 0.5, 100.0), [3 + 0.5 * np.sqrt(8 / 3), 3 + 0.5 * np.sqrt(18)], rtol=1e-6)
    # L = 1 is plain SAC: the pair minimum itself.
    np.testing.assert_allclose(optimistic_q(pair_min[:1], 2.0, 1.5), [1.0, 0.0])


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
    agent = small_agent(num_q_pairs=2, gamma=0.0, reward_fn=lambda s, a, s2: torch.full((s.shape[0],), 7.0))
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


def test_each_pair_gets_its_own_minibatch(monkeypatch):
    agent = small_agent(num_q_pairs=3)
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


def test_save_load_round_trip(tmp_path):
    agent = small_agent()
    agent.learn(40)
    path = tmp_path / "agent.pt"
    agent.save(path, include_buffer=True)
    other = small_agent(seed=5)
    other.load(path)
    obs = np.zeros(3, dtype=np.float32)
    np.testing.assert_allclose(agent.predict(obs, deterministic=True), other.predict(obs, deterministic=True))
    assert other.num_timesteps == 40 and other.buffer.size == 40
    with pytest.raises(ValueError, match="critic pairs"):
        small_agent(num_q_pairs=3).load(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable SAC checkpoint"):
        agent.load(tmp_path / "junk.pt")


def test_seeded_runs_are_reproducible():
    torch.set_num_threads(1)
    a, b = small_agent(seed=3), small_agent(seed=3)
    a.learn(60)
    b.learn(60)
    for p, q in zip(a.actor.parameters(), b.actor.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SAC(gym.make("CartPole-v1")), "Box action space"),
        (lambda: small_agent(num_q_pairs=0), "num_q_pairs must be an integer >= 1"),
        (lambda: small_agent(q_std_clip=-1.0), "q_std_clip must be >= 0"),
        (lambda: small_agent(alpha=-0.1), "alpha must be 'auto' or a number >= 0"),
    ],
)
def test_bad_configuration(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_observation_shape():
    agent = small_agent()
    with pytest.raises(ValueError, match=r"observation must have shape \(3,\)"):
        agent.predict(np.zeros(4))


def test_resumed_training_matches_uninterrupted(tmp_path):
    torch.set_num_threads(1)
    straight = small_agent(seed=1)
    straight.learn(40)
    straight.save(tmp_path / "mid.pt", include_buffer=True)
    for _ in range(5):
        straight.train_step()
    resumed = small_agent(seed=99).load(tmp_path / "mid.pt")
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
    resumed = small_agent(buffer_size=50, learning_starts=10).load(tmp_path / "a.pt")
    assert (resumed.buffer.size, resumed.buffer.position) == (50, 20)
    oldest = resumed.buffer.obs[20].copy()
    resumed.learn(1)
    assert not np.array_equal(resumed.buffer.obs[20], oldest)  # the oldest was overwritten
