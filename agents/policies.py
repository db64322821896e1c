"""Neural policies of the :mod:`agents.interface` kind: a tanh-Gaussian actor over Gymnasium ``Box`` spaces.

Neural policies are stored as a single torch file holding only tensors, numbers and
strings, read back with ``torch.load(..., weights_only=True)``: loading a shared policy
never runs code from the file, and the sizes it declares are checked against its
tensors before a network is built (:mod:`agents.untrusted`).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from agents.checkpoints import atomic_output
from agents.networks import TanhGaussianActor
from agents.run_folder import first_line
from agents.untrusted import RefusedFile, check_zip_members, load_torch

POLICY_FORMAT = "soar-mail/tanh-gaussian-policy/1"


# ------------------------------------------------------------------- neural
class GaussianPolicy:
    """A tanh-Gaussian policy over a ``Box`` action space (the actor of :class:`agents.sac.SAC`).

    Parameters
    ----------
    actor:
        The network.
    env_id:
        Gymnasium id of the environment it was trained on (``""`` if unknown); kept in the file.
    """

    def __init__(self, actor: TanhGaussianActor, env_id: str = "") -> None:
        self.actor = actor
        self.env_id = env_id
        self.obs_dim = actor.trunk[0].in_features if len(actor.trunk) else actor.mean.in_features
        self.act_dim = actor.mean.out_features
        self.generator = torch.Generator().manual_seed(0)

    def seed(self, seed: int) -> None:
        """Seed the action noise."""
        self.generator.manual_seed(int(seed))

    def _obs(self, obs) -> torch.Tensor:
        array = np.asarray(obs, dtype=np.float32)
        if array.ndim not in (1, 2) or array.shape[-1] != self.obs_dim:
            raise ValueError(f"observation must have shape ({self.obs_dim},) or (N, {self.obs_dim}), got {array.shape}")
        return torch.from_numpy(array)

    def act(self, obs, deterministic: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """Tanh of the mean when deterministic, else a sample (noise from ``rng`` if given)."""
        tensor = self._obs(obs)
        with torch.no_grad():
            if deterministic:
                return self.actor.deterministic(tensor).numpy()
            generator = self.generator
            if rng is not None:
                generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            return self.actor.sample(tensor, generator)[0].numpy()

    def predict(self, obs, deterministic: bool = False) -> tuple[np.ndarray, None]:
        """``(action, None)``, as stable-baselines3's ``predict``."""
        return self.act(obs, deterministic=deterministic), None

    def log_prob(self, obs, actions) -> np.ndarray:
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape[-1] != self.act_dim:
            raise ValueError(f"actions must have last dimension {self.act_dim}, got shape {actions.shape}")
        with torch.no_grad():
            return self.actor.log_prob(self._obs(obs), torch.from_numpy(actions)).numpy()

    def entropy(self, obs, samples: int = 16, rng: np.random.Generator | None = None) -> np.ndarray:
        """Monte Carlo entropy of the action distribution at each observation (``samples`` draws each).

        Uses the log-density of each draw's own pre-tanh noise, exact where ``log_prob`` of a
        nearly saturated action would not be (float32 rounds ``tanh(u)`` to 1 for large ``u``).
        In the environment's action units; subtract :attr:`log_half_widths` for those of the
        ``[-1, 1]`` box before rescaling, where SAC measures the entropy its bonus pays for.
        """
        tensor = self._obs(obs).reshape(-1, self.obs_dim)
        generator = torch.Generator().manual_seed(int((rng or np.random.default_rng(0)).integers(2**62)))
        with torch.no_grad():
            _, log_prob = self.actor.sample(tensor.repeat_interleave(int(samples), dim=0), generator)
        return -log_prob.reshape(len(tensor), int(samples)).mean(dim=1).numpy()

    @property
    def log_half_widths(self) -> float:
        """Sum of the logs of the action box's half-widths (0 for ``[-1, 1]``)."""
        return float(torch.log(self.actor.scale).sum())

    # ------------------------------------------------------------ storage
    def state(self) -> dict:
        """Everything needed to rebuild the policy: tensors, numbers and strings only."""
        hidden = [layer.out_features for layer in self.actor.trunk if isinstance(layer, torch.nn.Linear)]
        return {
            "format": POLICY_FORMAT,
            "env_id": self.env_id,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden": hidden,
            "weights": {k: v.detach().clone() for k, v in self.actor.state_dict().items()},
        }

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as temporary:
            torch.save(self.state(), temporary)

    @classmethod
    def from_state(cls, state: dict, source: str = "policy") -> "GaussianPolicy":
        """Rebuild a policy from :meth:`state`; the network's sizes come from the tensors, checked against the
        sizes the state declares, so a file cannot make this build a network larger than its own weights."""
        if not isinstance(state, dict) or state.get("format") != POLICY_FORMAT:
            raise ValueError(f"{source} is not a policy file of this toolkit (format {POLICY_FORMAT!r})")
        try:
            weights = state["weights"]
            if not isinstance(weights, dict):
                raise TypeError("weights must be a dictionary of tensors")
            obs_dim, act_dim, hidden = mlp_actor_layout(weights, "trunk.", ("mean", "log_std"), {"scale", "offset"})
            declared = (state["obs_dim"], state["act_dim"], state["hidden"])
            if [declared[0], declared[1], list(declared[2])] != [obs_dim, act_dim, list(hidden)]:
                raise ValueError(f"it declares {declared[0]} observations, {declared[1]} actions and hidden widths "
                                 f"{list(declared[2])}, its weights have {obs_dim}, {act_dim} and {list(hidden)}")
            for name in ("scale", "offset"):
                if tuple(weights[name].shape) != (act_dim,):
                    raise ValueError(f"{name} has shape {tuple(weights[name].shape)}, expected ({act_dim},)")
            actor = TanhGaussianActor(obs_dim, act_dim, hidden, weights["offset"] - weights["scale"],
                                      weights["offset"] + weights["scale"])
            actor.load_state_dict(weights)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise ValueError(f"{source}: incomplete or inconsistent policy file ({first_line(error)})") from None
        return cls(actor.eval(), str(state.get("env_id", "")))


def mlp_actor_layout(
    weights: dict, trunk: str, heads: tuple[str, ...], extra: set[str] = frozenset(), prefix: str = "",
) -> tuple[int, int, tuple[int, ...]]:
    """``(obs_dim, act_dim, hidden)`` of a tanh-Gaussian MLP actor, read from its tensors' shapes.

    The actor is exactly: Linear layers ``{prefix}{trunk}{0, 2, 4, ...}`` (an activation between
    them, so only even indices hold weights), then the heads ``{prefix}{head}`` (Linear, one
    row per action each), plus the keys ``extra``. Any other key among those starting with
    ``prefix``, a missing key or a shape that does not chain raises ``ValueError`` naming it.
    """
    keys = {k for k in weights if k.startswith(prefix)}
    start = prefix + trunk
    layer_numbers = (k[len(start):].split(".")[0] for k in keys if k.startswith(start) and k.endswith(".weight"))
    indices = sorted(int(number) for number in layer_numbers if number.isdigit())
    expected = {f"{prefix}{trunk}{i}.{kind}" for i in indices for kind in ("weight", "bias")}
    expected |= {f"{prefix}{head}.{kind}" for head in heads for kind in ("weight", "bias")}
    expected |= {prefix + k for k in extra}
    if keys - expected:
        raise ValueError(f"unexpected tensor {sorted(keys - expected)[0]} (not part of the actor this toolkit builds)")
    if expected - keys:
        raise ValueError(f"missing tensor {sorted(expected - keys)[0]}")
    if indices != list(range(0, 2 * len(indices), 2)):
        raise ValueError(f"the hidden layers {start}{indices} are not Linear layers with one activation between")
    shape = {k: tuple(weights[k].shape) for k in expected}
    layers = [f"{prefix}{trunk}{i}" for i in indices]
    first = f"{(layers or [prefix + heads[0]])[0]}.weight"
    if len(shape[first]) != 2:
        raise ValueError(f"{first} has shape {shape[first]}, expected a matrix")
    obs_dim = features = shape[first][1]
    hidden: list[int] = []
    for name in layers + [prefix + head for head in heads]:
        weight, bias = shape[f"{name}.weight"], shape[f"{name}.bias"]
        if len(weight) != 2 or weight[1] != features or bias != weight[:1]:
            raise ValueError(f"{name} has weight shape {weight} and bias shape {bias}, which do not follow the "
                             f"{features} features before it")
        if name in layers:
            features = weight[0]
            hidden.append(features)
    act_dims = {shape[f"{prefix}{head}.weight"][0] for head in heads}
    if len(act_dims) != 1:
        raise ValueError(f"the heads {[prefix + h for h in heads]} disagree on the number of actions")
    return int(obs_dim), int(act_dims.pop()), tuple(int(h) for h in hidden)


def load_policy(path: str | Path) -> GaussianPolicy:
    """Load a policy saved by :meth:`GaussianPolicy.save` or a stable-baselines3 SAC ``.zip``.

    Neither path unpickles: the toolkit's file is read with ``weights_only=True`` and only
    the tensor file inside an SB3 archive is read (its pickled metadata is skipped). Sizes are
    checked before anything is allocated and NaN or infinite weights are refused
    (:func:`agents.untrusted.load_torch`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    # torch files are zip archives too; an SB3 archive is recognised by its policy.pth member.
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                is_sb3 = "policy.pth" in archive.namelist()
        except (OSError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not a readable policy file ({error})") from None
        if is_sb3:
            return policy_from_sb3_zip(path)
    try:
        state = load_torch(path)
    except RefusedFile as error:
        raise ValueError(f"{path} is not a readable policy file ({error.problem})") from None
    return GaussianPolicy.from_state(state, str(path))


# The stable-baselines3 SAC actor this module reproduces exactly: SACPolicy (``"MlpPolicy"``) on 1-D Box
# observations and actions, Flatten features, Linear layers with ReLU between them, mean and log-std heads,
# no gSDE. Anything else in an archive is refused by name rather than converted approximately.
_SB3_POLICY_MODULE = "stable_baselines3.sac.policies"
_SB3_BOX = "<class 'gymnasium.spaces.box.Box'>"
_SB3_DEFAULTS = {
    "activation_fn": "<class 'torch.nn.modules.activation.ReLU'>",
    "features_extractor_class": "<class 'stable_baselines3.common.torch_layers.FlattenExtractor'>",
    "use_sde": False,
}
# SACPolicy arguments that leave the actor's output unchanged: the critics' and optimisers' settings, image
# normalisation (1-D observations are never images), and settings that only gSDE reads.
_SB3_ACTOR_NEUTRAL = {"n_critics", "share_features_extractor", "optimizer_class", "optimizer_kwargs",
                      "normalize_images", "log_std_init", "use_expln", "clip_mean"}
_SB3_DEFAULT_NET_ARCH = [256, 256]


def _sb3_box(data: dict, name: str) -> tuple[list[int], dict]:
    space = data.get(name)
    if not isinstance(space, dict) or space.get(":type:") != _SB3_BOX:
        kind = space.get(":type:") if isinstance(space, dict) else space
        raise ValueError(f"{name} is {kind}, only gymnasium Box spaces are converted")
    shape = space.get("_shape", space.get("shape"))
    if not isinstance(shape, list) or len(shape) != 1:
        raise ValueError(f"{name} has shape {shape}, only 1-D Box spaces are converted")
    return shape, space


def check_sb3_settings(data: dict, hidden: tuple[int, ...]) -> None:
    """Refuse, naming the setting, any setting of an SB3 SAC archive's ``data`` JSON this module does not reproduce.

    ``hidden`` are the actor's widths read from its weights (``net_arch`` must declare the same).
    """
    policy_class = data.get("policy_class")
    module = policy_class.get("__module__") if isinstance(policy_class, dict) else None
    named = re.match(r"<function (\w+)\.__init__", str(policy_class.get("__init__", ""))) if module else None
    if module != _SB3_POLICY_MODULE or (named and named.group(1) != "SACPolicy"):
        raise ValueError(f"policy class {named.group(1) if named else '?'} from {module!r}: only stable-baselines3 "
                         "SAC's MlpPolicy (SACPolicy) is converted")
    if data.get("use_sde", False) is not False:
        raise ValueError("use_sde=True (gSDE) is not converted")
    kwargs = data.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"policy_kwargs {kwargs!r} is not a dictionary")
    for key, value in kwargs.items():
        if key in (":type:", ":serialized:") or key in _SB3_ACTOR_NEUTRAL:
            continue  # the pickled copy is never read; the plain fields below say the same
        if key in _SB3_DEFAULTS:
            if value != _SB3_DEFAULTS[key]:
                raise ValueError(f"policy_kwargs {key} {value}: only {_SB3_DEFAULTS[key]} is converted")
        elif key == "features_extractor_kwargs":
            if value not in (None, {}):
                raise ValueError(f"policy_kwargs features_extractor_kwargs {value!r}: only the default is converted")
        elif key != "net_arch":
            raise ValueError(f"policy_kwargs {key}={value!r} is not converted")
    net_arch = kwargs.get("net_arch")
    actor_arch = net_arch.get("pi") if isinstance(net_arch, dict) else net_arch
    actor_arch = _SB3_DEFAULT_NET_ARCH if net_arch is None else actor_arch
    if not isinstance(actor_arch, list) or actor_arch != list(hidden):
        raise ValueError(f"policy_kwargs net_arch {net_arch} does not match the actor's weights (hidden widths "
                         f"{list(hidden)})")


def policy_from_sb3_zip(path: str | Path, env_id: str = "") -> GaussianPolicy:
    """Convert the actor of a stable-baselines3 SAC archive (``MlpPolicy``) to a :class:`GaussianPolicy`.

    SB3's actor squashes to [-1, 1] and rescales to the action box afterwards, which is
    this actor's ``tanh(u) * scale + offset``; the box itself comes from the archive's
    ``data`` JSON (its plain ``low``/``high`` fields), never from its pickles. Only the
    ``policy.pth`` and ``data`` members are read, after checking their declared sizes.
    Exactly the actor SB3's SAC ``MlpPolicy`` builds is accepted (:func:`check_sb3_settings`,
    :func:`mlp_actor_layout`); any other setting or layer is refused by name.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "policy.pth" not in names or "data" not in names:
                raise ValueError("no policy.pth/data members")
            check_zip_members(archive, ["policy.pth", "data"], str(path))
            weights = load_torch(archive.read("policy.pth"), f"{path}:policy.pth")
            data = json.loads(archive.read("data"))
        if not isinstance(weights, dict) or not isinstance(data, dict):
            raise ValueError("policy.pth and data must hold dictionaries")
        # Only plain JSON fields are read; SB3's pickled (":serialized:") entries never are.
        obs_dim, act_dim, hidden = mlp_actor_layout(weights, "latent_pi.", ("mu", "log_std"), prefix="actor.")
        check_sb3_settings(data, hidden)
        (obs_shape, _), (act_shape, space) = _sb3_box(data, "observation_space"), _sb3_box(data, "action_space")
        if obs_shape != [obs_dim] or act_shape != [act_dim]:
            raise ValueError(f"the spaces have shapes {obs_shape} and {act_shape}, the actor's weights map "
                             f"{obs_dim} observations to {act_dim} actions")
        # SB3 writes the bounds as numpy's printed form, e.g. "[-1. -1. -1.]".
        low, high = (torch.tensor([float(x) for x in str(space[k]).strip("[]").split()]) for k in ("low", "high"))
        policy = policy_from_sb3_actor_weights(weights, low, high, env_id)
    except RefusedFile as error:
        raise ValueError(f"{path} is not a usable stable-baselines3 SAC archive ({error.problem})") from None
    except Exception as error:  # any corrupt or foreign archive
        raise ValueError(f"{path} is not a usable stable-baselines3 SAC archive ({first_line(error)})") from None
    return policy


def policy_from_sb3_actor_weights(weights: dict, low: torch.Tensor, high: torch.Tensor, env_id: str = "") -> GaussianPolicy:
    """Build a :class:`GaussianPolicy` from an SB3 SAC policy ``state_dict`` (``actor.*`` keys; others are ignored)."""
    if "actor.mu.weight" not in weights:
        raise ValueError("not a stable-baselines3 SAC MlpPolicy (no actor.latent_pi / actor.mu weights)")
    obs_dim, act_dim, hidden = mlp_actor_layout(weights, "latent_pi.", ("mu", "log_std"), prefix="actor.")
    low, high = low.reshape(-1), high.reshape(-1)
    if low.shape != (act_dim,) or high.shape != (act_dim,) or not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError(f"action bounds must be {act_dim} finite numbers each, got {low.tolist()} and {high.tolist()}")
    actor = TanhGaussianActor(obs_dim, act_dim, hidden, low, high)
    mapping = {}
    for ours, theirs in zip([i for i, m in enumerate(actor.trunk) if isinstance(m, torch.nn.Linear)],
                            range(0, 2 * len(hidden), 2)):
        for kind in ("weight", "bias"):
            mapping[f"trunk.{ours}.{kind}"] = weights[f"actor.latent_pi.{theirs}.{kind}"]
    for kind in ("weight", "bias"):
        mapping[f"mean.{kind}"] = weights[f"actor.mu.{kind}"]
        mapping[f"log_std.{kind}"] = weights[f"actor.log_std.{kind}"]
    mapping["scale"], mapping["offset"] = actor.scale, actor.offset
    actor.load_state_dict(mapping)
    return GaussianPolicy(actor.eval(), env_id)
