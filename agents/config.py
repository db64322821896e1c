"""Settings as frozen dataclasses: one place for every default, command-line options derived from it.

A config class declares each setting once with :func:`setting` (default, help text,
optional flag name, choices and parser). :func:`add_arguments` turns the fields into
``argparse`` options whose defaults *are* the dataclass defaults, and
:func:`from_arguments` builds the config back from the parsed namespace. A run writes
its config as ``config.json`` (:func:`write_config`); resuming checks it
(:func:`check_resumable`) and refuses, naming the setting, any change to a field that
is not marked ``resumable`` (a longer budget may change, a seed may not).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

from agents.checkpoints import write_text_atomic

Config = TypeVar("Config")


# ------------------------------------------------------------------ parsers
def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1; may be written like ``1e5`` or ``200k``."""
    scale = 1000 if str(text).lower().endswith("k") else 1
    value = _number(str(text)[:-1] if scale > 1 else text) * scale
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(value)


def non_negative_int(text: str) -> int:
    value = _number(text)
    if not value.is_integer() or value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return int(value)


def positive_float(text: str) -> float:
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0; ``inf`` allowed (e.g. no clip)."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    choices: tuple | None = None,
    parse: Callable[[str], Any] | None = None,
    resumable: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field with what the command line needs to know about it.

    Parameters
    ----------
    default:
        The one default of the setting (omit for a required one).
    help:
        Help text (``argparse`` adds the default).
    flag:
        Option name (default: ``--field-name``).
    choices, parse:
        Allowed values; a converter from text that raises ``argparse.ArgumentTypeError``.
    resumable:
        Whether a resumed run may change it (``steps``: yes, ``seed``: no).
    cli:
        Whether :func:`add_arguments` offers it.
    """
    metadata = {"help": help, "flag": flag, "choices": choices, "parse": parse, "resumable": resumable, "cli": cli}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults (configs are frozen)")
    return dataclasses.field(default=default, metadata=metadata)


def _flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = (), only_given: bool = False
) -> None:
    """Add one option per field of ``config_class`` (except ``skip``), defaults from the dataclass.

    With ``only_given``, options the user does not pass stay out of the parsed namespace
    (and none is required), so that a caller can layer them over other defaults; the help
    still shows the dataclass default.
    """
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if field.name in skip or not field.metadata.get("cli", True):
            continue
        kind = hints[field.name]
        options: dict[str, Any] = {"dest": field.name, "help": field.metadata.get("help", "")}
        origin = typing.get_origin(kind)
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            element = typing.get_args(kind)[0] if origin is tuple else kind
            options["type"] = field.metadata.get("parse") or element
            if origin is tuple:
                options["nargs"] = "+"
            if field.metadata.get("choices"):
                options["choices"] = field.metadata["choices"]
        if field.default is dataclasses.MISSING:
            options["required"] = not only_given
            if only_given:
                options["default"] = argparse.SUPPRESS
        elif only_given:
            options["default"] = argparse.SUPPRESS
            options["help"] += f" (default: {field.default})"
        else:
            options["default"] = field.default
            options["help"] += " (default: %(default)s)"
        parser.add_argument(_flag(field), **options)


def from_arguments(config_class: type[Config], args: argparse.Namespace, **overrides: Any) -> Config:
    """The config of the parsed options (sequences become tuples), with ``overrides`` applied."""
    values = {}
    for field in dataclasses.fields(config_class):
        if hasattr(args, field.name):
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    return config_class(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan; "inf" reads back through float()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def config_dict(config: Any) -> dict[str, Any]:
    """The config as JSON-ready plain values."""
    return {field.name: _jsonable(getattr(config, field.name)) for field in dataclasses.fields(config)}


def write_config(path: Path, config: Any) -> None:
    """Write ``config.json`` (replaced whole, never half-written)."""
    write_text_atomic(path, json.dumps({"config": type(config).__name__, **config_dict(config)}, indent=1) + "\n")


def check_resumable(path: Path, config: Any) -> None:
    """Refuse to resume the run whose ``config.json`` is ``path`` with a changed setting.

    Raises ``ValueError`` naming every changed setting with its old and new value.
    Settings marked ``resumable`` may change; a setting the stored file lacks (added to
    the class later) counts as its default.
    """
    path = Path(path)
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the run's settings {path}: {error}") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{path} is not a settings file of this toolkit")
    current = config_dict(config)
    changed = []
    for field in dataclasses.fields(config):
        if field.metadata.get("resumable"):
            continue
        # A setting added to the class after the run started counts as its default there.
        absent = "<absent>" if field.default is dataclasses.MISSING else _jsonable(field.default)
        old, new = stored.get(field.name, absent), current[field.name]
        if old != new:
            changed.append(f"{field.name}: {old!r} there, {new!r} now")
    if stored.get("config", type(config).__name__) != type(config).__name__:
        changed.append(f"config: {stored.get('config')!r} there, {type(config).__name__!r} now")
    if changed:
        raise ValueError(
            f"{path.parent} holds a run with other settings ({'; '.join(changed)}); "
            "resume with the same settings or choose another output folder"
        )
