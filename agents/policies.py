"""Neural policies of the :mod:`agents.interface` kind: a tanh-Gaussian actor over Gymnasium ``Box`` spaces.

Neural policies are stored as a single torch file holding only tensors, numbers and
strings, read back with ``torch.load(..., weights_only=True)``: loading a shared policy
never runs code from the file.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from agents.checkpoints import atomic_output
from agents.networks import TanhGaussianActor

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
        if not isinstance(state, dict) or state.get("format") != POLICY_FORMAT:
            raise ValueError(f"{source} is not a policy file of this toolkit (format {POLICY_FORMAT!r})")
        try:
            weights = state["weights"]
            actor = TanhGaussianActor(
                int(state["obs_dim"]), int(state["act_dim"]), tuple(int(h) for h in state["hidden"]),
                weights["offset"] - weights["scale"], weights["offset"] + weights["scale"],
            )
            actor.load_state_dict(weights)
        except (KeyError, TypeError, RuntimeError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise ValueError(f"{source}: incomplete or inconsistent policy file ({first_line})") from None
        return cls(actor.eval(), str(state.get("env_id", "")))


def load_policy(path: str | Path) -> GaussianPolicy:
    """Load a policy saved by :meth:`GaussianPolicy.save` or a stable-baselines3 SAC ``.zip``.

    Neither path unpickles: the toolkit's file is read with ``weights_only=True`` and only
    the tensor file inside an SB3 archive is read (its pickled metadata is skipped).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    # torch files are zip archives too; an SB3 archive is recognised by its policy.pth member.
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_sb3 = "policy.pth" in archive.namelist()
        if is_sb3:
            return policy_from_sb3_zip(path)
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a readable policy file ({first_line})") from None
    return GaussianPolicy.from_state(state, str(path))


def policy_from_sb3_zip(path: str | Path, env_id: str = "") -> GaussianPolicy:
    """Convert the actor of a stable-baselines3 SAC archive (``MlpPolicy``) to a :class:`GaussianPolicy`.

    SB3's actor squashes to [-1, 1] and rescales to the action box afterwards, which is
    this actor's ``tanh(u) * scale + offset``; the box itself comes from the archive's
    ``data`` JSON (its plain ``low``/``high`` fields), never from its pickles.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "policy.pth" not in names or "data" not in names:
                raise ValueError("no policy.pth/data members")
            weights = torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True, map_location="cpu")
            data = json.loads(archive.read("data"))
        # Only plain JSON fields are read; SB3's pickled (":serialized:") entries never are.
        if data.get("use_sde"):
            raise ValueError("gSDE policies (use_sde=True) are not supported")
        activation = str(data.get("policy_kwargs", {}).get("activation_fn", "ReLU"))
        if "ReLU" not in activation:
            raise ValueError(f"only ReLU networks are supported, this one uses {activation}")
        space = data.get("action_space", {})
        # SB3 writes the bounds as numpy's printed form, e.g. "[-1. -1. -1.]".
        low, high = (torch.tensor([float(x) for x in str(space[k]).strip("[]").split()]) for k in ("low", "high"))
        policy = policy_from_sb3_actor_weights(weights, low, high, env_id)
    except Exception as error:  # any corrupt or foreign archive
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a usable stable-baselines3 SAC archive ({first_line})") from None
    return policy


def policy_from_sb3_actor_weights(weights: dict, low: torch.Tensor, high: torch.Tensor, env_id: str = "") -> GaussianPolicy:
    """Build a :class:`GaussianPolicy` from an SB3 SAC policy ``state_dict`` (``actor.*`` keys)."""
    trunk = sorted(
        {int(k.split(".")[2]) for k in weights if k.startswith("actor.latent_pi.") and k.endswith(".weight")}
    )
    if not trunk or "actor.mu.weight" not in weights:
        raise ValueError("not a stable-baselines3 SAC MlpPolicy (no actor.latent_pi / actor.mu weights)")
    hidden = tuple(weights[f"actor.latent_pi.{i}.weight"].shape[0] for i in trunk)
    obs_dim = weights[f"actor.latent_pi.{trunk[0]}.weight"].shape[1]
    act_dim = weights["actor.mu.weight"].shape[0]
    low, high = low.reshape(-1), high.reshape(-1)
    if low.shape != (act_dim,) or high.shape != (act_dim,) or not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError(f"action bounds must be {act_dim} finite numbers each, got {low.tolist()} and {high.tolist()}")
    actor = TanhGaussianActor(obs_dim, act_dim, hidden, low, high)
    mapping = {}
    for ours, theirs in zip([i for i, m in enumerate(actor.trunk) if isinstance(m, torch.nn.Linear)], trunk):
        for kind in ("weight", "bias"):
            mapping[f"trunk.{ours}.{kind}"] = weights[f"actor.latent_pi.{theirs}.{kind}"]
    for kind in ("weight", "bias"):
        mapping[f"mean.{kind}"] = weights[f"actor.mu.{kind}"]
        mapping[f"log_std.{kind}"] = weights[f"actor.log_std.{kind}"]
    mapping["scale"], mapping["offset"] = actor.scale, actor.offset
    actor.load_state_dict(mapping)
    return GaussianPolicy(actor.eval(), env_id)
