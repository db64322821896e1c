"""A shared file never decides what code runs or how much memory is used (agents.untrusted and every loader).

One group per class of problem: environment ids from files, sizes declared by files,
the stable-baselines3 import, non-finite weights, and demonstration files that
``soar expert rollout`` writes.
"""

import io
import json
import struct
import sys
import tracemalloc
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import policies
from agents.config import write_config
from agents.demonstrations import Demonstrations, load_demonstrations, save_demonstrations
from agents.interface import PolicyProfile
from agents.networks import TanhGaussianActor
from agents.policies import GaussianPolicy, load_policy
from agents.rollout import collect
from agents.sac import SAC
from agents.tabular_demonstrations import TabularDemonstrations
from soar.cli import main
from soar.deep.config import TrainConfig, read_config

MODULE = "soar_security_probe"  # a module shipped next to a shared file


def pendulum_policy(env_id="Pendulum-v1", hidden=(8,)):
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 1, hidden, torch.tensor([-2.0]), torch.tensor([2.0]))
    return GaussianPolicy(actor, env_id)


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A module that, if ever imported, registers ``soar_security_probe:Probe-v0`` and leaves a marker file."""
    marker = tmp_path / "imported"
    (tmp_path / f"{MODULE}.py").write_text(
        "import pathlib, gymnasium\n"
        f"pathlib.Path({str(marker)!r}).write_text('code from a shared file ran')\n"
        "gymnasium.register('Probe-v0', entry_point='gymnasium.envs.classic_control.pendulum:PendulumEnv',\n"
        "                   max_episode_steps=5)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m soar` run from that folder would have it
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield marker
    sys.modules.pop(MODULE, None)
    gym.registry.pop("Probe-v0", None)


# ---------------------------------------------------------- 1. env ids from files
def test_rollout_refuses_a_module_env_id_stored_in_the_policy_file(tmp_path, probe):
    pendulum_policy(f"{MODULE}:Probe-v0").save(tmp_path / "p.pt")
    argv = ["expert", "rollout", "--policy", str(tmp_path / "p.pt"), "--episodes", "1", "--out",
            str(tmp_path / "d.npz"), "--no-progress"]
    with pytest.raises(SystemExit, match=f"would import the Python module '{MODULE}'"):
        main(argv)
    assert not probe.exists() and not (tmp_path / "d.npz").exists()
    # The same id given by the user on the command line is the user's choice.
    assert main([*argv, "--env", f"{MODULE}:Probe-v0"]) == 0
    assert probe.exists() and len(load_demonstrations(tmp_path / "d.npz").trajectories[0]) == 5


def run_folder(folder, env_id, demos_file):
    """A run folder as ``soar train`` leaves it, its config.json naming ``env_id``."""
    folder.mkdir()
    write_config(folder / "config.json", TrainConfig(env_id=env_id, demos=str(demos_file), steps=100))
    pendulum_policy(env_id).save(folder / "policy.pt")
    (folder / "expert.json").write_text(json.dumps({"return_mean": -1.0}))
    return folder


@pytest.mark.parametrize("command", [["evaluate"], ["train", "--resume"]])
def test_run_folder_commands_refuse_a_module_env_id_in_config_json(tmp_path, probe, command):
    env = gym.make("Pendulum-v1")
    save_demonstrations(Demonstrations(collect(pendulum_policy(), env, 1)), tmp_path / "demos.npz")
    folder = run_folder(tmp_path / "run", f"{MODULE}:Probe-v0", tmp_path / "demos.npz")
    with pytest.raises(SystemExit, match="config.json names the environment .*would import"):
        main([*command, str(folder), "--no-progress"] if command[0] == "train" else [*command, str(folder)])
    assert not probe.exists()


def test_evaluate_runs_a_module_env_id_the_user_confirms(tmp_path, probe, capsys):
    save_demonstrations(Demonstrations(collect(pendulum_policy(), gym.make("Pendulum-v1"), 1)), tmp_path / "d.npz")
    folder = run_folder(tmp_path / "run", f"{MODULE}:Probe-v0", tmp_path / "d.npz")
    with pytest.raises(SystemExit, match="the run was trained on"):
        main(["evaluate", str(folder), "--env", "Pendulum-v1"])
    with pytest.raises(SystemExit) as stopped:  # a usage error: exit status 2, one line on stderr
        main(["train", "--resume", str(folder), "--env", "Pendulum-v1", "--no-progress"])
    assert stopped.value.code == 2 and "drop ['env_id']" in capsys.readouterr().err
    assert not probe.exists()
    assert main(["evaluate", str(folder), "--episodes", "1", "--env", f"{MODULE}:Probe-v0"]) == 0
    assert probe.exists() and "over 1 deterministic episodes" in capsys.readouterr().out


def test_checked_env_id():
    from agents import untrusted

    assert untrusted.checked_env_id("Hopper-v5", "f") == "Hopper-v5"
    assert untrusted.checked_env_id("ns/Env-v1", "f") == "ns/Env-v1"  # namespaces import nothing
    assert untrusted.checked_env_id("m:E-v0", "f", given="m:E-v0") == "m:E-v0"
    for env_id, given in (("m:E-v0", None), ("m:E-v0", "other:E-v0"), ("m:E-v0", "E-v0")):
        with pytest.raises(ValueError, match="would import the Python module 'm'"):
            untrusted.checked_env_id(env_id, "f", given=given)
    with pytest.raises(ValueError, match="usable environment id"):
        untrusted.checked_env_id(3, "f")


# --------------------------------------------------------- 2. sizes declared by files
HUGE = 50_000_000  # float32 elements: 200 MB declared by a file of a few hundred bytes


def npy_header(shape, dtype="<f4") -> bytes:
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def crafted_npz(path, big_key, honest_arrays, lie):
    """An npz whose member ``big_key`` claims HUGE elements: in its .npy header, or in the zip's size fields."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in honest_arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())
        # The header declares HUGE elements; the member holds 8 bytes of data.
        archive.writestr(f"{big_key}.npy", npy_header((HUGE,)) + b"\0" * 8)
    if lie == "zip size":  # and the zip's size fields claim the member holds them all
        data = bytearray(path.read_bytes())
        honest = len(npy_header((HUGE,))) + 8
        name = f"{big_key}.npy".encode()
        for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            start = 0
            while (start := data.find(signature, start)) >= 0:
                name_offset = 30 if signature == b"PK\x03\x04" else 46
                if data[start + name_offset: start + name_offset + len(name)] == name:
                    assert struct.unpack_from("<I", data, start + size_offset)[0] == honest
                    struct.pack_into("<I", data, start + size_offset, honest + 4 * HUGE - 8)
                start += 4
        path.write_bytes(bytes(data))


LOADERS = {
    "demonstrations": (load_demonstrations, "obs", {"format": np.array("soar-mail/demonstrations/1")}),
    "tabular demonstrations": (TabularDemonstrations.load, "states",
                               {"format": np.array("soar-mail/tabular-demonstrations/1"),
                                "actions": np.zeros((1, 1), np.int64)}),
    "policy profile": (PolicyProfile.load, "player_0", {"format": np.array("soar-mail/tabular-profile/1")}),
}


@pytest.mark.parametrize("lie", ["header", "zip size"])
@pytest.mark.parametrize("loader", LOADERS)
def test_npz_loaders_refuse_declared_sizes_before_allocating(tmp_path, loader, lie):
    load, big_key, honest = LOADERS[loader]
    crafted_npz(tmp_path / "f.npz", big_key, honest, lie)
    assert (tmp_path / "f.npz").stat().st_size < 2000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="declares"):
            load(tmp_path / "f.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000  # numpy's reader would have allocated the declared 200 MB first


def test_npz_reader_reads_only_the_members_the_format_defines(tmp_path, monkeypatch):
    from agents import untrusted

    arrays = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "s": np.array("text"),
              "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "e": np.zeros((0, 4)), "b": np.array([True])}
    np.savez_compressed(tmp_path / "f.npz", **arrays)
    read = untrusted.read_npz(tmp_path / "f.npz", ["a", "s", "f", "e", "b", "missing"])
    assert set(read) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(read[key], value)
        assert read[key].dtype == value.dtype
    crafted_npz(tmp_path / "g.npz", "junk", {"a": np.ones(3)}, "header")
    np.testing.assert_array_equal(untrusted.read_npz(tmp_path / "g.npz", ["a"])["a"], np.ones(3))
    monkeypatch.setattr(untrusted, "MAX_BYTES", 100)
    with pytest.raises(ValueError, match="more than the 100 a loader reads"):
        untrusted.read_npz(tmp_path / "f.npz", ["a", "f"])


def crafted_policy(path, hidden, weight=None):
    """A policy file of 3 observations, 1 action and one 8-wide layer that declares ``hidden``."""
    state = pendulum_policy().state()
    state["hidden"] = hidden
    if weight is not None:
        state["weights"]["trunk.0.weight"] = weight
    torch.save(state, path)


class ActorSpy(TanhGaussianActor):
    built: list = []

    def __init__(self, obs_dim, act_dim, hidden, low, high):
        ActorSpy.built.append(tuple(hidden))
        super().__init__(obs_dim, act_dim, hidden, low, high)


@pytest.mark.parametrize("hidden, weight, message", [
    ([8, 100_000], None, "hidden widths"),
    ([4_000_000], None, "hidden widths"),
    ([1_000_000], torch.zeros(1).expand(1_000_000, 3), "more elements than its 4 bytes"),
])
def test_policy_files_declaring_huge_widths_are_refused_before_building(tmp_path, monkeypatch, hidden, weight,
                                                                        message):
    crafted_policy(tmp_path / "p.pt", hidden, weight)
    monkeypatch.setattr(policies, "TanhGaussianActor", ActorSpy)
    ActorSpy.built = []
    with pytest.raises(ValueError, match=message):
        load_policy(tmp_path / "p.pt")
    assert ActorSpy.built == []


def test_torch_files_beyond_the_size_limit_are_refused(tmp_path, monkeypatch):
    from agents import untrusted

    pendulum_policy().save(tmp_path / "p.pt")
    monkeypatch.setattr(untrusted, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="more than the 1000 a loader reads"):
        load_policy(tmp_path / "p.pt")


def test_sac_checkpoint_declaring_a_huge_replay_buffer_is_refused(tmp_path):
    env = gym.make("Pendulum-v1")
    SAC(env, hidden=(8,), buffer_size=100, batch_size=8).save(tmp_path / "agent.pt")
    state = torch.load(tmp_path / "agent.pt", weights_only=True)
    state["hyperparameters"]["buffer_size"] = 10**12  # 1e12 x 9 floats: 36 TB
    torch.save(state, tmp_path / "agent.pt")
    with pytest.raises(ValueError, match="buffer_size"):
        SAC.load(tmp_path / "agent.pt", env)
    state["hyperparameters"]["buffer_size"] = 100
    state["hyperparameters"]["hidden"] = [8, 4096]  # the stored weights have one 8-wide layer
    torch.save(state, tmp_path / "agent.pt")
    with pytest.raises(ValueError, match="hidden"):
        SAC.load(tmp_path / "agent.pt", env)


def test_run_settings_declaring_huge_networks_are_refused(tmp_path):
    config = TrainConfig(env_id="Pendulum-v1", hidden=(100_000, 100_000))  # 10^10 parameters per critic
    write_config(tmp_path / "config.json", config)
    with pytest.raises(ValueError, match="hidden"):
        read_config(tmp_path / "config.json")
    write_config(tmp_path / "config.json", TrainConfig(env_id="Pendulum-v1", buffer_size=10**11))
    with pytest.raises(ValueError, match="buffer_size"):
        read_config(tmp_path / "config.json")
    write_config(tmp_path / "config.json", TrainConfig(env_id="Pendulum-v1"))
    assert read_config(tmp_path / "config.json") == TrainConfig(env_id="Pendulum-v1")


# --------------------------------------------------------- 3. the stable-baselines3 import
def sb3_zip(path, **policy_kwargs):
    from stable_baselines3 import SAC as SB3SAC

    model = SB3SAC("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [16, 16], **policy_kwargs},
                   seed=0)
    model.save(path)
    return model


def edit_zip(path, member, edit):
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents[member] = edit(contents[member])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def edit_data(path, edit):
    def change(raw):
        data = json.loads(raw)
        edit(data)
        return json.dumps(data).encode()

    edit_zip(path, "data", change)


@pytest.mark.parametrize("activation", ["LeakyReLU", "ReLU6"])  # both contain "ReLU"
def test_sb3_import_refuses_activations_it_does_not_reproduce(tmp_path, activation):
    sb3_zip(tmp_path / "m.zip", activation_fn=getattr(torch.nn, activation))
    with pytest.raises(ValueError, match=f"activation_fn .*{activation}"):
        load_policy(tmp_path / "m.zip")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["policy_kwargs"].update(net_arch=[16, 8]), r"net_arch \[16, 8\]"),
    (lambda d: d["policy_kwargs"].update(net_arch={"pi": [32], "qf": [16, 16]}), r"net_arch"),
    (lambda d: d["policy_kwargs"].update(features_extractor_class="<class 'my.Extractor'>"),
     "features_extractor_class"),
    (lambda d: d["policy_kwargs"].update(squash_output=False), "squash_output"),
    (lambda d: d["policy_kwargs"].update(use_sde=True), "use_sde"),
    (lambda d: d["observation_space"].update({":type:": "<class 'gymnasium.spaces.discrete.Discrete'>"}),
     "observation_space"),
    (lambda d: d["policy_class"].update(__module__="sb3_contrib.tqc.policies"), "policy class"),
])
def test_sb3_import_refuses_settings_it_does_not_convert_by_name(tmp_path, edit, message):
    sb3_zip(tmp_path / "m.zip")
    edit_data(tmp_path / "m.zip", edit)
    with pytest.raises(ValueError, match=message):
        load_policy(tmp_path / "m.zip")


def test_sb3_import_refuses_extra_actor_layers(tmp_path):
    sb3_zip(tmp_path / "m.zip")

    def add_layer(raw):
        weights = torch.load(io.BytesIO(raw), weights_only=True)
        weights["actor.features_extractor.linear.weight"] = torch.zeros(3, 3)
        buffer = io.BytesIO()
        torch.save(weights, buffer)
        return buffer.getvalue()

    edit_zip(tmp_path / "m.zip", "policy.pth", add_layer)
    with pytest.raises(ValueError, match="actor.features_extractor.linear.weight"):
        load_policy(tmp_path / "m.zip")


def test_sb3_import_accepts_explicit_relu_and_a_dict_net_arch(tmp_path):
    model = sb3_zip(tmp_path / "m.zip", activation_fn=torch.nn.ReLU, net_arch={"pi": [16, 16], "qf": [32]})
    policy = load_policy(tmp_path / "m.zip")
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(policy.act(obs, deterministic=True), model.predict(obs, deterministic=True)[0],
                               atol=1e-5)


# --------------------------------------------------------- 4. non-finite weights
def test_policy_with_nan_weights_is_refused(tmp_path):
    policy = pendulum_policy()
    with torch.no_grad():
        policy.actor.mean.weight[0, 0] = float("nan")
    policy.save(tmp_path / "p.pt")
    with pytest.raises(ValueError, match="weights.mean.weight holds NaN"):
        load_policy(tmp_path / "p.pt")


def test_sb3_archive_with_nan_weights_is_refused(tmp_path):
    model = sb3_zip(tmp_path / "m.zip")
    with torch.no_grad():
        model.actor.mu.weight[0, 0] = float("inf")
    model.save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="actor.mu.weight holds NaN or infinite"):
        load_policy(tmp_path / "m.zip")


def test_sac_checkpoint_with_nan_weights_is_refused(tmp_path):
    env = gym.make("Pendulum-v1")
    agent = SAC(env, hidden=(8,), buffer_size=100, batch_size=8)
    with torch.no_grad():
        agent.critic.layers[0].weight[0, 0, 0] = float("nan")
    agent.save(tmp_path / "agent.pt")
    with pytest.raises(ValueError, match="critic.layers.0.weight holds NaN"):
        SAC.load(tmp_path / "agent.pt", env)
    with pytest.raises(ValueError, match="critic.layers.0.weight holds NaN"):
        SAC(env, hidden=(8,), buffer_size=100, batch_size=8).restore(tmp_path / "agent.pt")


def test_resume_refuses_a_reward_net_with_nan_weights(tmp_path):
    from soar.deep.loop import train

    env = gym.make("Pendulum-v1")
    demos = Demonstrations(collect(pendulum_policy(), env, 1), env_id="Pendulum-v1")
    settings = dict(learning_starts=10, batch_size=8, hidden=(8,), reward_hidden=(8,), buffer_size=200, cost_every=10,
                    eval_every=30, eval_episodes=1, checkpoint_every=30, log_every=30)
    train("Pendulum-v1", "ml-irl-sa", demos, out=tmp_path / "run", steps=30, **settings)
    checkpoint = tmp_path / "run" / "checkpoint"
    method = torch.load(checkpoint / "method.pt", weights_only=True)
    method["net"]["body.0.weight"][0, 0] = float("nan")
    torch.save(method, checkpoint / "method.pt")
    with pytest.raises(ValueError, match="method.pt: net.body.0.weight holds NaN"):
        train("Pendulum-v1", "ml-irl-sa", demos, out=tmp_path / "run", steps=60, **settings)


# --------------------------------------------------------- 5. rollouts write only loadable files
class Overflow(gym.Env):
    """Pendulum-shaped, but its float64 observations leave float32's range on the third step."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3), {}

    def step(self, action):
        self.t += 1
        return np.full(3, 1e39 if self.t == 3 else 0.0), 0.0, False, self.t >= 4, {}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_rollout_never_writes_a_file_its_loader_rejects(tmp_path):
    if "SoarSecurityOverflow-v0" not in gym.registry:
        gym.register("SoarSecurityOverflow-v0", entry_point=Overflow)
    pendulum_policy().save(tmp_path / "p.pt")
    with pytest.raises(SystemExit, match="obs holds NaN or infinite values"):
        main(["expert", "rollout", "--policy", str(tmp_path / "p.pt"), "--env", "SoarSecurityOverflow-v0",
              "--episodes", "1", "--out", str(tmp_path / "d.npz"), "--no-progress"])
    assert not (tmp_path / "d.npz").exists()


def test_save_demonstrations_refuses_what_load_refuses_and_keeps_the_old_file(tmp_path):
    good = Demonstrations(collect(pendulum_policy(), gym.make("Pendulum-v1"), 1), env_id="Pendulum-v1")
    save_demonstrations(good, tmp_path / "d.npz")
    bad = Demonstrations(collect(pendulum_policy(), gym.make("Pendulum-v1"), 1))
    bad.trajectories[0].rewards[3] = np.inf
    with pytest.raises(ValueError, match="rewards holds NaN or infinite"):
        save_demonstrations(bad, tmp_path / "d.npz")
    assert load_demonstrations(tmp_path / "d.npz").env_id == "Pendulum-v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]
