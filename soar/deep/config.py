"""Settings of a deep imitation run: one dataclass, per-environment YAML defaults, ``--set`` overrides.

Precedence, lowest first: the :class:`TrainConfig` defaults (the SOAR paper's reference
settings), the method's own defaults (:data:`METHOD_DEFAULTS`), the environment's YAML file in ``soar/deep/configs/`` (its top level, then
its ``methods: {name: {...}}`` entry for the chosen method), the command line's options,
and ``--set key=value``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.config import (
    Parser, check_settings, discount, non_negative_float, non_negative_int, non_negative_or_inf,
    positive_float, positive_int, setting, stored_value, unit_fraction,
)
from agents.untrusted import (
    MAX_BATCH_SIZE, MAX_BUFFER_SIZE, MAX_CRITICS, check_stored_count, check_stored_floats, check_stored_widths,
)
from envs.validation import check_interval

#: Methods on SAC (``--critics 4`` makes each of them "X + SOAR"), then those without critics.
SAC_METHODS = ("ml-irl", "ml-irl-sa", "f-irl", "csil", "gail", "airl", "sqil", "opt-ail")
METHODS = (*SAC_METHODS, "bc", "dagger")
#: Methods whose terminated episodes may continue in an absorbing state (soar.deep.reward_net).
ABSORBING_METHODS = ("ml-irl", "ml-irl-sa", "f-irl", "csil", "opt-ail")
#: Defaults of one method, between the dataclass's and the environment's YAML file.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "opt-ail": {"critic_optimism": 1e-3},  # the spec's lambda; 0 (off) for every other method
    "gail": {"discriminator_steps": 100},
    "airl": {"discriminator_steps": 100},
}
CONFIG_DIR = Path(__file__).parent / "configs"


#: A number strictly between 0 and 1.
open_fraction = Parser("open_fraction", lambda value, name: check_interval(value, name, 0.0, 1.0, low_open=True,
                                                                           high_open=True))


def _only(methods: tuple[str, ...], why: str = "") -> tuple:
    """An ``applies`` rule: the setting is used by ``methods`` only."""
    return (lambda c: c.method in methods, why or f"by {', '.join(methods)} only")


# Settings that only some runs use (agents.config.check_applicable refuses them elsewhere).
_SEVERAL_CRITICS = (lambda c: c.critics > 1, "only with more than one critic pair (critics 2 or more)")
_SAC = _only(SAC_METHODS, "by the methods on SAC (bc and dagger train no critic)")
_REWARD_NETWORK = _only(("ml-irl", "ml-irl-sa", "f-irl", "opt-ail", "gail", "airl"),
                        "by the learned reward or discriminator of ml-irl, ml-irl-sa, f-irl, opt-ail, gail and airl")
_REWARD_STEPS = _only(("ml-irl", "ml-irl-sa", "f-irl", "opt-ail"))
_BC = _only(("csil", "bc", "dagger"), "by the behavioural cloning of csil, bc and dagger")
_COST = _only(tuple(m for m in SAC_METHODS if m != "sqil"), "by the methods with a cost update (sqil's rewards are fixed)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a deep imitation run (``soar train`` derives its options from it)."""

    env_id: str = setting(flag="--env", help="Gymnasium id with Box observations and actions, e.g. Hopper-v5")
    method: str = setting("ml-irl-sa", choices=METHODS, help="imitation method (cost update)")
    critics: int = setting(1, parse=positive_int, help="L critic pairs: 1 is the base method, 4 is SOAR", applies=_SAC)
    optimism: float = setting(1.0, parse=non_negative_float, help="L > 1: weight kappa of the critics' std in the actor",
                              applies=_SEVERAL_CRITICS)
    std_clip: float = setting(10.0, parse=non_negative_or_inf, help="L > 1: upper clip sigma_clip of the critics' std",
                              applies=_SEVERAL_CRITICS)
    demos: str = setting("bundled", help="expert demonstrations: 'bundled', an .npz file, or minari:DATASET_ID")
    trajectories: int = setting(1, parse=positive_int, help="expert trajectories to imitate (the first N)")
    steps: int = setting(200_000, parse=positive_int, resumable=True,
                         help="environment steps used for learning (cost rollouts included)",
                         applies=(lambda c: c.method != "bc", "by every method but bc (it uses no environment step)"))
    seed: int = setting(0, parse=non_negative_int, help="random seed")
    device: str = setting("auto", choices=("auto", "cpu", "cuda"),
                          help="where networks and minibatches live: auto picks the GPU when there is one")
    batch_size: int = setting(100, parse=positive_int, help="SAC minibatch per critic pair", applies=_SAC)
    learning_rate: float = setting(1e-3, parse=positive_float, help="Adam step of actor and critics", applies=_SAC)
    alpha: float = setting(0.2, parse=non_negative_float, help="fixed entropy coefficient", applies=_SAC)
    gamma: float = setting(0.99, parse=discount, help="discount", applies=_SAC)
    tau: float = setting(0.005, parse=unit_fraction, help="Polyak coefficient of the target critics", applies=_SAC)
    hidden: tuple[int, ...] = setting((256, 256), parse=positive_int, help="hidden widths of actor and critics")
    buffer_size: int = setting(1_000_000, parse=positive_int, help="replay capacity", applies=_SAC)
    learning_starts: int = setting(1000, parse=non_negative_int, help="uniformly random steps before learning", applies=_SAC)
    cost_every: int = setting(5000, parse=positive_int, applies=_COST,
                              help="SAC interaction steps between cost updates (--cost-rollouts steps, though "
                              "counted, do not advance it)")
    cost_episodes: int = setting(10, parse=positive_int,
                                 help="learner episodes a cost update learns from (its most recent ones)",
                                 applies=(lambda c: c.cost_rollouts == 0 and _COST[0](c),
                                          "only when a cost update reads the replay buffer (cost_rollouts 0; not by "
                                          "sqil, bc or dagger)"))
    cost_rollouts: int = setting(0, parse=non_negative_int, applies=_COST,
                                 help="fresh learner rollouts per cost update instead (their steps are counted)")
    reward_hidden: tuple[int, ...] = setting((64, 64), parse=positive_int, applies=_REWARD_NETWORK,
                                             help="hidden widths of the reward network (ml-irl, ml-irl-sa, f-irl, "
                                             "opt-ail) or of the discriminator (gail, airl)")
    # The research code's cost update (lr 1e-4, one step, no absorbing state) leaves the reward almost flat
    # once its critics no longer see the environment's reward; these defaults were chosen on a separate
    # selection seed (README: "Choosing the cost update").
    reward_lr: float = setting(1e-3, parse=positive_float, applies=_REWARD_NETWORK,
                               help="Adam step of the reward or discriminator (the reference: 1e-4)")
    reward_weight_decay: float = setting(1e-3, parse=non_negative_float, applies=_REWARD_NETWORK,
                                         help="weight decay of the reward or discriminator")
    reward_steps: int = setting(10, parse=positive_int, applies=_REWARD_STEPS, absent=1,
                                help="ml-irl, ml-irl-sa, f-irl, opt-ail: Adam steps of the reward per cost update "
                                "(the reference: 1)")
    absorbing: str = setting("auto", choices=("auto", "on", "off"), absent="off", applies=_only(ABSORBING_METHODS),
                             help="give terminated episodes an absorbing state up to the time limit (auto = on): "
                             "ml-irl, ml-irl-sa, opt-ail and f-irl learn its reward, csil fixes it at the reward's "
                             "floor")
    discriminator_steps: int = setting(300, parse=positive_int, applies=_only(("f-irl", "gail", "airl")),
                                       help="f-irl, gail, airl: discriminator steps per cost update "
                                       "(default 300 for f-irl, 100 for gail and airl)")
    critic_optimism: float = setting(0.0, parse=non_negative_float, applies=_only(("opt-ail",)),
                                     help="opt-ail: lambda of the critic loss's optimism term -lambda mean Q "
                                     "(default 1e-3 for opt-ail)")
    expert_share: float = setting(0.5, parse=open_fraction, applies=_only(("sqil",)),
                                  help="sqil: share of every critic minibatch drawn from the expert's transitions")
    bc_steps: int = setting(10_000, parse=positive_int, applies=_BC,
                            help="csil, bc, dagger: maximum-likelihood steps of the first BC fit")
    bc_batch: int = setting(256, parse=positive_int, applies=_BC, help="csil, bc, dagger: BC minibatch size")
    bc_lr: float = setting(1e-3, parse=positive_float, applies=_BC, help="csil, bc, dagger: Adam step of BC")
    expert_policy: str = setting("bundled", applies=_only(("dagger",)),
                                 help="dagger: the labelling expert, 'bundled' or a policy file")
    dagger_every: int = setting(5000, parse=positive_int, applies=_only(("dagger",)),
                                help="dagger: environment steps (expert queries) between aggregations")
    dagger_bc_steps: int = setting(2000, parse=positive_int, applies=_only(("dagger",)),
                                   help="dagger: BC steps on the aggregated data after each aggregation")
    eval_every: int = setting(5000, parse=positive_int, help="environment steps between evaluations",
                              applies=(lambda c: c.method != "bc", "by every method but bc (evaluated once)"))
    eval_episodes: int = setting(10, parse=positive_int, help="deterministic evaluation episodes")
    checkpoint_every: int = setting(25_000, parse=positive_int, resumable=True, help="steps between checkpoints",
                                    applies=(lambda c: c.method != "bc", "by every method but bc"))
    log_every: int = setting(1000, parse=positive_int, resumable=True, help="steps between training-loss logs",
                             applies=_SAC)

    def __post_init__(self) -> None:
        # The command line's checks for values from the API, YAML files and --set too. Whether a setting
        # applies is checked by soar train for the options given, not here: YAML files and the Python API
        # take one profile of settings for every method.
        check_settings(self)

    @property
    def uses_absorbing(self) -> bool:
        """Whether terminated episodes have an absorbing state (``absorbing``: ``auto`` is on)."""
        return self.absorbing != "off" and self.method in ABSORBING_METHODS


def _convert(name: str, value: Any) -> Any:
    """A YAML, JSON or ``--set`` value as the field's type, with an error naming the setting."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if name not in fields:
        raise ValueError(f"unknown setting {name!r}; settings: {', '.join(sorted(fields))}")
    kind = typing.get_type_hints(TrainConfig)[name]
    try:
        if typing.get_origin(kind) is tuple:
            items = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
            return tuple(int(v) for v in items)
        if kind is int and isinstance(value, str) and str(value).lower().endswith("k"):
            return positive_int(value)  # 200k, as on the command line
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError("not an integer")
            return int(number)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        raise ValueError(f"setting {name}: cannot read {value!r} as {getattr(kind, '__name__', kind)} ({error})") from None


def environment_defaults(env_id: str, method: str) -> dict[str, Any]:
    """The settings the environment's YAML file sets for ``method`` (empty if there is no file)."""
    path = CONFIG_DIR / f"{env_id}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    per_method = data.pop("methods", {}) or {}
    values = {**data, **(per_method.get(method) or {})}
    return {name: _convert(name, value) for name, value in values.items()}


def parse_overrides(assignments: list[str]) -> dict[str, Any]:
    """``["batch_size=256", "hidden=64,64"]`` -> typed values; ``ValueError`` naming a bad one."""
    values = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name:
            raise ValueError(f"--set takes key=value, got {assignment!r}")
        values[name.strip().replace("-", "_")] = _convert(name.strip().replace("-", "_"), text.strip())
    return values


def build_config(env_id: str, method: str = "ml-irl-sa", **settings: Any) -> TrainConfig:
    """Dataclass defaults <- :data:`METHOD_DEFAULTS` <- the environment's YAML <- ``settings``, every value checked.

    Like a YAML file, ``settings`` may hold settings of every method (one profile for all of
    them); ``soar train`` refuses an option that its run does not use
    (:func:`agents.config.check_applicable`).
    """
    values = {name: _convert(name, value) for name, value in METHOD_DEFAULTS.get(method, {}).items()}
    values.update(environment_defaults(env_id, method))
    values.update({name: _convert(name, value) for name, value in settings.items()})
    return TrainConfig(env_id=env_id, method=method, **values)


def read_config(path: Path) -> TrainConfig:
    """The :class:`TrainConfig` a run stored in ``config.json`` (for ``soar train --resume`` and ``soar evaluate``).

    Sizes are checked by :func:`check_stored_sizes`; the environment id is returned as stored
    (callers pass it through :func:`agents.untrusted.checked_env_id` before making it).
    """
    try:
        stored = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the run's settings {path}: {error}") from None
    if not isinstance(stored, dict) or stored.get("config") != TrainConfig.__name__:
        raise ValueError(f"{path} does not hold the settings of a soar train run")
    stored.pop("config")
    unknown = sorted(set(stored) - {field.name for field in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"{path} holds settings this version does not know: {unknown}")
    # A setting added after the run was written takes the value runs had before it existed.
    values = {field.name: stored_value(field, stored) for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{name: _convert(name, value) for name, value in values.items()
                            if value is not dataclasses.MISSING})
    check_stored_sizes(config, str(path))
    return config


def check_stored_sizes(config: TrainConfig, source: str) -> None:
    """Refuse settings read from ``source`` that would allocate beyond :mod:`agents.untrusted`'s limits.

    A run folder may come from someone else: its widths, critics, buffer and batch sizes
    are checked one by one and together (the networks' hidden-to-hidden weights and one
    minibatch's activations) before any network or buffer is built from them.
    """
    hidden = check_stored_widths(list(config.hidden), "hidden", source)
    reward_hidden = check_stored_widths(list(config.reward_hidden), "reward_hidden", source)
    critics = check_stored_count(config.critics, "critics", source, MAX_CRITICS)
    check_stored_count(config.buffer_size, "buffer_size", source, MAX_BUFFER_SIZE)
    batch_size = check_stored_count(config.batch_size, "batch_size", source, MAX_BATCH_SIZE)

    def between(widths: tuple[int, ...]) -> int:
        return sum(a * b for a, b in zip(widths, widths[1:]))

    # 2L critic members, the actor, and the reward (CSIL's BC policy is one more actor).
    check_stored_floats((2 * critics + 2) * between(hidden) + between(reward_hidden),
                        "the hidden-to-hidden weights of the networks these settings declare", source)
    check_stored_floats(batch_size * 2 * critics * max(hidden, default=1), "the critics' minibatch activations", source)
