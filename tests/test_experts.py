"""Policy/critic interface, demonstration files and converters, expert training and the expert CLI."""

import math
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats

from agents.demonstrations import (
    Demonstrations, Trajectory, from_imitation, from_minari, from_transition_arrays, load_demonstrations,
    save_demonstrations, to_imitation, to_minari,
)
from agents.experts import BUNDLED_ENVS, ExpertConfig, bundled_demonstrations, bundled_policy, train_expert
from agents.interface import Critic, Policy, TabularCritic, TabularPolicy
from agents.logger import read_log
from agents.networks import TanhGaussianActor
from agents.policies import GaussianPolicy, load_policy
from agents.rollout import collect, evaluate
from agents.sac import SAC
from soar.cli import main


def pendulum_policy(seed=0, hidden=(8,)):
    torch.manual_seed(seed)
    env = gym.make("Pendulum-v1")
    actor = TanhGaussianActor(3, 1, hidden, torch.tensor([-2.0]), torch.tensor([2.0]))
    return GaussianPolicy(actor, "Pendulum-v1"), env


def random_demos(n=3, seed=0, obs_dim=3, act_dim=2):
    rng = np.random.default_rng(seed)
    trajectories = []
    for i in range(n):
        T = 2 + i
        trajectories.append(Trajectory(
            rng.normal(size=(T + 1, obs_dim)).astype(np.float32), rng.normal(size=(T, act_dim)).astype(np.float32),
            rng.normal(size=T).astype(np.float32), terminated=i % 2 == 0, truncated=i % 2 == 1,
        ))
    return Demonstrations(trajectories, env_id="Fake-v0", source="test")


# ----------------------------------------------------------------- interface
def test_tabular_and_neural_policies_satisfy_the_interface():
    policy, env = pendulum_policy()
    agent = SAC(env, hidden=(8,), learning_starts=10, batch_size=4, buffer_size=100)
    for candidate in (TabularPolicy(np.full((3, 2), 0.5)), policy, agent):
        assert isinstance(candidate, Policy)
    for candidate in (TabularCritic(np.zeros((3, 2))), agent):
        assert isinstance(candidate, Critic)
    assert agent.q_values(np.zeros((5, 3)), np.zeros((5, 1))).shape == (2, 5)


def test_gaussian_log_prob_matches_the_change_of_variables_closed_form():
    policy, _ = pendulum_policy()
    with torch.no_grad():  # mean 0.3, std e^-0.5 whatever the observation
        for module in policy.actor.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.zero_()
        policy.actor.mean.bias.fill_(0.3)
        policy.actor.log_std.bias.fill_(-0.5)
    actions = np.array([[-1.5], [0.1], [1.9]], dtype=np.float32)
    y = actions[:, 0] / 2.0
    u = np.arctanh(y)
    # a = 2 tanh(u): density of u, divided by |da/du| = 2 (1 - y^2).
    expected = stats.norm(0.3, math.exp(-0.5)).logpdf(u) - np.log(2 * (1 - y**2))
    np.testing.assert_allclose(policy.log_prob(np.zeros((3, 3)), actions), expected, rtol=1e-4)
    np.testing.assert_allclose(policy.act(np.zeros(3), deterministic=True), [2 * math.tanh(0.3)], rtol=1e-6)


def test_policy_file_round_trip(tmp_path):
    policy, _ = pendulum_policy(hidden=(8, 6))
    policy.save(tmp_path / "p.pt")
    loaded = load_policy(tmp_path / "p.pt")
    obs = np.random.default_rng(0).normal(size=(7, 3))
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True), policy.act(obs, deterministic=True))
    assert loaded.env_id == "Pendulum-v1"


def test_policy_from_stable_baselines3_matches_its_predictions(tmp_path):
    from stable_baselines3 import SAC as SB3SAC

    model = SB3SAC("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [16, 16]}, seed=0)
    model.save(tmp_path / "sb3.zip")
    policy = load_policy(tmp_path / "sb3.zip")
    obs = np.random.default_rng(0).normal(size=(9, 3)).astype(np.float32)
    np.testing.assert_allclose(policy.act(obs, deterministic=True), model.predict(obs, deterministic=True)[0], atol=1e-5)
    with torch.no_grad():  # the whole distribution, not only its mean
        mean, log_std, _ = model.actor.get_action_dist_params(torch.as_tensor(obs))
        our_mean, our_std = policy.actor.distribution(torch.as_tensor(obs))
    torch.testing.assert_close(our_mean, mean)
    torch.testing.assert_close(our_std.log(), log_std)


@pytest.mark.parametrize("content", [b"not a policy", b""])
def test_corrupt_policy_files_are_rejected(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable policy file"):
        load_policy(path)


def test_foreign_torch_and_zip_files_are_rejected(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a policy file of this toolkit"):
        load_policy(tmp_path / "other.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("policy.pth", b"junk")
        archive.writestr("data", "{}")
    with pytest.raises(ValueError, match="other.zip"):
        load_policy(tmp_path / "other.zip")
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing.pt")


# ------------------------------------------------------------ demonstrations
def test_demonstration_file_round_trip(tmp_path):
    demos = random_demos()
    save_demonstrations(demos, tmp_path / "d.npz")
    loaded = load_demonstrations(tmp_path / "d.npz")
    assert loaded.env_id == "Fake-v0" and loaded.source == "test" and len(loaded) == 3
    for a, b in zip(demos.trajectories, loaded.trajectories):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.acts, b.acts)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        assert (a.terminated, a.truncated) == (b.terminated, b.truncated)
    with np.load(tmp_path / "d.npz", allow_pickle=False) as data:
        returns = [t.rewards.sum() for t in demos.trajectories]
        assert float(data["return_mean"]) == pytest.approx(np.mean(returns))
        assert float(data["return_std"]) == pytest.approx(np.std(returns))


def _write_corrupt(path, **changes):
    demos = random_demos()
    save_demonstrations(demos, path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(path, **arrays)


@pytest.mark.parametrize("changes, message", [
    ({"acts": None}, "missing arrays"),
    ({"lengths": np.array([2, 3, 5])}, "lengths sum to"),
    ({"terminated": np.array([True])}, "one flag per trajectory"),
    ({"rewards": np.array([np.nan] * 9, dtype=np.float32)}, "NaN"),
    ({"format": np.array("someone-else/1")}, "format"),
    ({"obs": np.array([{"a": 1}], dtype=object)}, "not a readable"),
    ({"lengths": np.array(9)}, "lengths must be"),
    ({"lengths": np.array([2.0, 3.0, 4.0])}, "lengths must be"),
    ({"obs": np.full((12, 3), "x")}, "must be numbers"),
    ({"format": None}, "missing arrays"),
    ({"terminated": np.array([True, True, False])}, "both terminated and truncated"),
])
def test_corrupt_demonstration_files_name_the_problem(tmp_path, changes, message):
    _write_corrupt(tmp_path / "d.npz", **changes)
    with pytest.raises(ValueError, match=message):
        load_demonstrations(tmp_path / "d.npz")


def test_save_keeps_the_name_it_is_given(tmp_path):
    save_demonstrations(random_demos(), tmp_path / "demos.data")
    assert load_demonstrations(tmp_path / "demos.data").env_id == "Fake-v0"


def test_not_an_npz_file(tmp_path):
    (tmp_path / "d.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable"):
        load_demonstrations(tmp_path / "d.npz")


def test_trajectory_shapes_are_checked():
    with pytest.raises(ValueError, match="observations"):
        Trajectory(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros(3), False, True)
    with pytest.raises(ValueError, match="both"):
        Trajectory(np.zeros((2, 2)), np.zeros((1, 1)), np.zeros(1), True, True)


def test_transitions_mark_only_real_terminations():
    flat = random_demos().transitions()
    # Lengths 2, 3, 4: trajectory 0 and 2 terminate, 1 is truncated.
    np.testing.assert_array_equal(np.flatnonzero(flat["terminated"]), [1, 8])
    assert flat["obs"].shape == flat["next_obs"].shape == (9, 3)


def test_imitation_round_trip_keeps_termination_and_truncation():
    demos = random_demos()
    layout = to_imitation(demos)
    assert all(item["terminal"] for item in layout) and len(layout[1]["obs"]) == len(layout[1]["acts"]) + 1
    back = from_imitation(layout)
    assert [(t.terminated, t.truncated) for t in back.trajectories] == [(True, False), (False, True), (True, False)]
    np.testing.assert_array_equal(back.trajectories[2].rewards, demos.trajectories[2].rewards)
    fragment = from_imitation([{"obs": np.zeros((3, 2)), "acts": np.zeros((2, 1)), "terminal": False}])
    assert fragment.trajectories[0].truncated and fragment.return_mean == 0.0
    # Without infos the ending is unknown: truncated by default (no false absorbing state), or as told.
    episode = {"obs": np.zeros((3, 2)), "acts": np.zeros((2, 1)), "terminal": True}
    assert from_imitation([episode]).trajectories[0].truncated
    assert from_imitation([episode], unknown_ending="terminated").trajectories[0].terminated


def test_minari_round_trip_with_objects():
    from types import SimpleNamespace

    demos = random_demos()
    episodes = to_minari(demos)
    assert episodes[0]["terminations"].tolist() == [False, True]
    back = from_minari([SimpleNamespace(**e) for e in episodes], env_id="Fake-v0")
    assert [(t.terminated, t.truncated) for t in back.trajectories] == [(True, False), (False, True), (True, False)]
    np.testing.assert_array_equal(back.trajectories[1].obs, demos.trajectories[1].obs)
    with pytest.raises(ValueError, match="lacks"):
        from_minari([{"observations": np.zeros((2, 1))}])


def test_from_transition_arrays_rebuilds_contiguous_trajectories():
    demos = random_demos(n=1)
    t = demos.trajectories[0]
    back = from_transition_arrays(t.obs[None, :-1], t.acts[None], t.obs[None, 1:], t.rewards[None])
    np.testing.assert_array_equal(back.trajectories[0].obs, t.obs)
    assert back.return_mean == pytest.approx(t.episode_return)
    shuffled = t.obs[None, 1:][:, ::-1]
    with pytest.raises(ValueError, match="not contiguous"):
        from_transition_arrays(t.obs[None, :-1], t.acts[None], shuffled)


def test_collect_neural_policy_on_pendulum():
    policy, env = pendulum_policy()
    trajectories = collect(policy, env, episodes=2, seed=5)
    assert [len(t) for t in trajectories] == [200, 200] and all(t.truncated for t in trajectories)
    # Replaying the recorded actions in a fresh environment reproduces the recorded states and rewards.
    fresh = gym.make("Pendulum-v1")
    obs, _ = fresh.reset(seed=6)
    for t in range(200):
        np.testing.assert_allclose(obs, trajectories[1].obs[t], atol=1e-6)
        obs, reward, *_ = fresh.step(trajectories[1].acts[t])
        assert reward == pytest.approx(trajectories[1].rewards[t], rel=1e-5)


# ------------------------------------------------------------------ training
def tiny_expert(**changes):
    settings = dict(env_id="Pendulum-v1", steps=300, eval_every=100, eval_episodes=1, checkpoint_every=100,
                    log_every=50, learning_starts=40, hidden=(32, 32), batch_size=32)
    settings.update(changes)
    return ExpertConfig(**settings)


@pytest.mark.parametrize("algorithm", ["sb3", "soar"])
def test_train_expert_logs_checkpoints_and_resumes_exactly(tmp_path, algorithm):
    torch.set_num_threads(1)
    straight = train_expert(tiny_expert(algorithm=algorithm), tmp_path / "straight", progress=False)
    first = train_expert(tiny_expert(algorithm=algorithm, steps=200), tmp_path / "resumed", progress=False)
    assert [row["step"] for row in first.evaluations] == [100, 200]
    # A larger step budget is a resumable change: the run continues from its checkpoint at 200.
    resumed = train_expert(tiny_expert(algorithm=algorithm), tmp_path / "resumed", progress=False)
    assert [row["step"] for row in resumed.evaluations] == [100, 200, 300]
    assert resumed.evaluations == straight.evaluations
    assert set(resumed.evaluations[0]) == {"step", "return_mean", "return_std", "episodes", "return_min", "return_max"}
    for out in ("straight", "resumed"):
        logs = tmp_path / out / "logs"
        assert [row["step"] for row in read_log(logs / "train.csv")] == [50, 100, 150, 200, 250, 300]
        # This toolkit's SAC also logs the critics' disagreement (0 with one critic pair).
        expected = {"step", "critic_loss", "actor_loss", "alpha"} | ({"critic_std"} if algorithm == "soar" else set())
        assert set(read_log(logs / "train.csv")[-1]) == expected
        assert [row["step"] for row in read_log(logs / "time.csv")] == [50, 100, 150, 200, 250, 300]
        assert list((tmp_path / out / "tensorboard").glob("events.out.tfevents.*"))
        assert (tmp_path / out / "evaluations.png").stat().st_size > 0
    # Resuming continued the same weights, buffer and random streams: the same losses, to the bit.
    train_logs = [read_log(tmp_path / out / "logs" / "train.csv") for out in ("resumed", "straight")]
    assert train_logs[0] == train_logs[1]
    policy = load_policy(resumed.policy_path)
    assert policy.env_id == "Pendulum-v1"
    reference = load_policy(straight.policy_path)
    obs = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(policy.act(obs, deterministic=True), reference.act(obs, deterministic=True))
    assert resumed.best_return == max(row["return_mean"] for row in resumed.evaluations)
    # The kept policy is the best evaluated one: re-evaluating it reproduces that number.
    best = evaluate(policy, gym.make("Pendulum-v1"), episodes=1, seed=10_000)
    assert best[0] == pytest.approx(resumed.best_return, rel=1e-4)
    # Asking again for the same budget trains nothing and reports the same run.
    again = train_expert(tiny_expert(algorithm=algorithm), tmp_path / "resumed", progress=False)
    assert again.evaluations == resumed.evaluations and again.best_return == resumed.best_return


def test_sb3_checkpoint_restores_weights_buffer_counters_and_random_streams(tmp_path):
    from stable_baselines3 import SAC as SB3SAC

    from agents.checkpoints import latest_checkpoint, staged_checkpoint
    from agents.experts import _load_sb3_checkpoint, _save_sb3_checkpoint

    def model():
        return SB3SAC("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [16]}, learning_starts=20, seed=3)

    trained = model().learn(60)
    with staged_checkpoint(tmp_path / "checkpoint") as staging:
        _save_sb3_checkpoint(trained, staging)
    torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
    fresh = model()
    _load_sb3_checkpoint(fresh, latest_checkpoint(tmp_path / "checkpoint"))
    for (name, a), b in zip(trained.policy.state_dict().items(), fresh.policy.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    np.testing.assert_array_equal(fresh.replay_buffer.observations[:60], trained.replay_buffer.observations[:60])
    assert (fresh.num_timesteps, fresh.replay_buffer.pos, fresh._n_updates) == (60, 60, trained._n_updates)
    assert fresh.log_ent_coef.item() == pytest.approx(trained.log_ent_coef.item())
    assert fresh.actor.optimizer.state_dict()["state"][0]["step"] == trained.actor.optimizer.state_dict()["state"][0]["step"]
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert np.array_equal(np.random.get_state()[1], numpy_rng[1]) and np.random.get_state()[2] == numpy_rng[2]
    (tmp_path / "checkpoint" / "state.json").write_text("{}")
    with pytest.raises(ValueError, match="missing entry 'numpy_rng'"):
        _load_sb3_checkpoint(model(), tmp_path / "checkpoint")


def test_train_expert_evaluates_the_last_step_and_refuses_other_settings(tmp_path):
    result = train_expert(tiny_expert(algorithm="soar", steps=150, checkpoint_every=1000), tmp_path, progress=False)
    assert [row["step"] for row in result.evaluations] == [100, 150]
    with pytest.raises(ValueError, match="seed: 0 there, 1 now"):
        train_expert(tiny_expert(algorithm="soar", steps=200, seed=1), tmp_path, progress=False)
    with pytest.raises(ValueError, match="algorithm"):
        train_expert(tiny_expert(algorithm="sb3", steps=200), tmp_path, progress=False)


@pytest.mark.parametrize("changes, message", [
    ({"algorithm": "ppo"}, "algorithm must be one of"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"learning_starts": -1}, "learning_starts must be an integer >= 0"),
    ({"hidden": ()}, "hidden must be a non-empty"),
    ({"hidden": (32, 0)}, "hidden must be an integer >= 1"),
    ({"eval_every": 2.5}, "eval_every must be an integer"),
])
def test_expert_config_rejects_bad_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_expert(**changes)


def test_train_expert_rejects_environments_without_box_spaces(tmp_path):
    with pytest.raises(ValueError, match="Box action"):
        train_expert(tiny_expert(env_id="CartPole-v1"), tmp_path, progress=False)


# ----------------------------------------------------------------------- CLI
def test_cli_rollout_writes_demonstrations(tmp_path, capsys):
    policy, _ = pendulum_policy()
    policy.save(tmp_path / "p.pt")
    assert main(["expert", "rollout", "--policy", str(tmp_path / "p.pt"), "--episodes", "2",
                 "--out", str(tmp_path / "d.npz"), "--no-progress"]) == 0
    demos = load_demonstrations(tmp_path / "d.npz")
    assert len(demos) == 2 and demos.env_id == "Pendulum-v1"
    assert "2 trajectories of Pendulum-v1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--episodes", "0"], "must be an integer >= 1, got 0"),
    (["--env", "Hopper-v5"], "maps 3 observations"),
    (["--env", "NoSuchEnv-v0"], "NoSuchEnv"),
])
def test_cli_rollout_bad_options(tmp_path, capsys, argv, message):
    policy, _ = pendulum_policy()
    policy.save(tmp_path / "p.pt")
    with pytest.raises(SystemExit) as exit_info:
        main(["expert", "rollout", "--policy", str(tmp_path / "p.pt"), "--out", str(tmp_path / "d.npz"),
              "--no-progress", *argv])
    assert message in str(exit_info.value) + capsys.readouterr().err


# ------------------------------------------------------------------- bundled
@pytest.mark.parametrize("env_id", BUNDLED_ENVS)
def test_bundled_expert_made_its_demonstrations(env_id):
    demos = bundled_demonstrations(env_id)
    assert demos.env_id == env_id and len(demos) >= 16
    policy = bundled_policy(env_id)
    # Replaying the bundled policy from the first trajectory's reset seed reproduces its actions.
    seed = int(demos.source.split("seeds ")[1].split("..")[0])
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    first = demos.trajectories[0]
    np.testing.assert_allclose(obs, first.obs[0], atol=1e-6)
    for t in range(min(len(first), 50)):
        action = policy.act(first.obs[t], deterministic=True)
        np.testing.assert_allclose(action, first.acts[t], atol=1e-5)


def test_unknown_bundled_expert():
    with pytest.raises(ValueError, match="no bundled expert"):
        bundled_demonstrations("Walker2d-v5")
