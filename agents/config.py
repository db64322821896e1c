"""Settings as frozen dataclasses: one place for every default, command-line options derived from it.

A config class declares each setting once with :func:`setting` (default, help text,
optional flag name, choices and parser). :func:`add_arguments` turns the fields into
``argparse`` options whose defaults *are* the dataclass defaults, and
:func:`from_arguments` builds the config back from the parsed namespace. A run writes
its config as ``config.json`` (:func:`write_config`); resuming checks it
(:func:`check_resumable`) and refuses, naming the setting, any change to a field that
is not marked ``resumable`` (a longer budget may change, a seed may not).

Every setting is checked the same way wherever it comes from: its parser (:data:`positive_int`,
:data:`discount`, ...) is one of the checks of :mod:`envs.validation`, which
:func:`check_settings` also applies to values from the Python API, YAML files and ``--set``.
A setting that only some runs use declares it (``applies``), and :func:`check_applicable`
refuses it where it does not apply. The command lines report bad input in one line
(:class:`ArgumentParser`, :func:`run_command`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import typing
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from agents.checkpoints import write_text_atomic
from agents.run_folder import describe_os_error
from envs import validation

Config = TypeVar("Config")


# ------------------------------------------------------------------ parsers
class Parser:
    """A command-line converter that is also the check of a setting's Python value.

    Calling it on text (as argparse does) returns the value or raises
    ``argparse.ArgumentTypeError`` with the requirement (argparse names the option);
    :meth:`check` validates a value from the Python API, a YAML file or ``--set`` with a
    ``ValueError`` naming the setting. Both go through one :mod:`envs.validation` check,
    so the command line and the API refuse the same values with the same words.
    """

    def __init__(self, name: str, check: Callable[[Any, str | None], Any], convert: Callable[[str], Any] = float):
        self.__name__ = name  # argparse's "invalid <name> value" on errors it words itself
        self._check, self._convert = check, convert

    def __call__(self, text: str) -> Any:
        try:
            value = self._convert(str(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        try:
            return self._check(value, None)
        except ValueError as error:
            # Show the text as typed ("0", not the 0.0 it was read as).
            requirement = str(error).rsplit(", got ", 1)[0]
            raise argparse.ArgumentTypeError(f"{requirement}, got {text}") from None

    def check(self, value: Any, name: str) -> Any:
        """``value`` as the setting's type; ``ValueError`` naming ``name`` if it is out of range."""
        return self._check(value, name)

    def __repr__(self) -> str:
        return self.__name__


def _count(text: str) -> float:
    """A count as typed: ``5``, ``1e5`` or ``200k``."""
    scale = 1000 if text.lower().endswith("k") else 1
    return float(text[:-1] if scale > 1 else text) * scale


def at_least(minimum: int) -> Parser:
    """An integer >= ``minimum``; may be written like ``1e5`` or ``200k``."""
    return Parser(f"integer_at_least_{minimum}", lambda value, name: validation.check_int(value, name, minimum), _count)


#: An integer >= 1; may be written like ``1e5`` or ``200k``.
positive_int = Parser("positive_int", validation.check_positive_int, _count)
#: An integer >= 0.
non_negative_int = Parser("non_negative_int", validation.check_non_negative_int, _count)
#: A finite number > 0.
positive_float = Parser("positive_float", validation.check_positive)
#: A finite number >= 0.
non_negative_float = Parser("non_negative_float", validation.check_non_negative)
#: A number >= 0 or ``inf`` (no limit, e.g. no clip).
non_negative_or_inf = Parser(
    "non_negative_or_inf", lambda value, name: validation.check_non_negative(value, name, allow_inf=True)
)
#: A discount factor in [0, 1).
discount = Parser("discount", validation.check_discount)
#: A number in (0, 1] (a Polyak coefficient, a fraction of something that must not vanish).
unit_fraction = Parser(
    "unit_fraction", lambda value, name: validation.check_interval(value, name, 0.0, 1.0, low_open=True)
)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    choices: tuple | None = None,
    parse: Parser | None = None,
    resumable: bool = False,
    cli: bool = True,
    applies: tuple[Callable[[Any], bool], str] | None = None,
    absent: Any = dataclasses.MISSING,
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
        Allowed values; a :class:`Parser` (converter from text and check of values, which
        :func:`check_settings` applies to every value however it was given).
    resumable:
        Whether a resumed run may change it (``steps``: yes, ``seed``: no).
    cli:
        Whether :func:`add_arguments` offers it.
    applies:
        ``(predicate, where)`` for a setting that only some runs use: ``predicate(config)``
        says whether it applies, ``where`` completes "it is used ..." in the error
        :func:`check_applicable` raises when it is given where it does not.
    absent:
        The value runs had before the setting existed, when that is not the default (a
        stored ``config.json`` without it is read with this value; see :func:`stored_value`).
    """
    metadata = {"help": help, "flag": flag, "choices": choices, "parse": parse, "resumable": resumable, "cli": cli,
                "applies": applies, "absent": absent}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults (configs are frozen)")
    return dataclasses.field(default=default, metadata=metadata)


class OptionError(ValueError):
    """A setting that is out of range or does not apply to the run: on the command line, a usage error.

    ``setting`` and ``reason`` are set for one that does not apply, so that the command
    line can name the option as the user typed it.
    """

    def __init__(self, message: str, setting: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.setting, self.reason = setting, reason


def _not_applicable(label: str, reason: str) -> str:
    return f"{label} does not apply to this run: it is used {reason}"


def check_settings(config: Any) -> None:
    """Check every field of a settings dataclass and store it as a plain value (call from ``__post_init__``).

    Each value goes through its field's :class:`Parser` check and choices (sequences item
    by item, and never empty), so values from the Python API, YAML files and ``--set``
    are refused with the same words as on the command line, naming the setting.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        parse, choices = field.metadata.get("parse"), field.metadata.get("choices")

        def check(item: Any, field=field, parse=parse, choices=choices) -> Any:
            if choices:
                validation.check_choice(item, field.name, choices)
            return parse.check(item, field.name) if isinstance(parse, Parser) else item

        if typing.get_origin(hints[field.name]) is tuple:
            if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or not value:
                raise ValueError(f"{field.name} must be a non-empty sequence, got {value!r}")
            checked = tuple(check(item) for item in value)
        else:
            checked = check(value)
        object.__setattr__(config, field.name, checked)


def check_applicable(config: Any, names: typing.Iterable[str], flags: bool = False) -> None:
    """Refuse, with an :class:`OptionError`, any setting in ``names`` that does not apply to ``config``.

    ``names`` are the settings the user gave (options on the command line, keyword
    arguments); a setting applies unless its field's ``applies`` predicate says otherwise.
    Errors name the option (``flags``) or the field.
    """
    names = set(names)
    for field in dataclasses.fields(config):
        rule = field.metadata.get("applies")
        if field.name in names and rule is not None and not rule[0](config):
            label = _flag(field) if flags else field.name
            raise OptionError(_not_applicable(label, rule[1]), field.name, rule[1])


def changed_settings(config: Any) -> set[str]:
    """The fields of ``config`` that differ from their defaults."""
    return {field.name for field in dataclasses.fields(config)
            if field.default is dataclasses.MISSING or getattr(config, field.name) != field.default}


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


def given_settings(config_class: type, args: argparse.Namespace) -> dict[str, Any]:
    """The settings of ``config_class`` present in the parsed options (sequences as tuples)."""
    values = {}
    for field in dataclasses.fields(config_class):
        if hasattr(args, field.name):
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return values


def from_arguments(config_class: type[Config], args: argparse.Namespace, **overrides: Any) -> Config:
    """The config of the parsed options, with ``overrides`` applied.

    With options added by ``add_arguments(..., only_given=True)``, the options the user
    gave are checked to apply to the run (:func:`check_applicable`); every problem with
    them, a value out of range included, is an :class:`OptionError`.
    """
    given = given_settings(config_class, args)
    try:
        config = config_class(**{**given, **overrides})
        check_applicable(config, given, flags=True)
    except OptionError as error:
        if error.setting in given:  # refused by the class itself: name the option, not the field
            flag = _flag(next(f for f in dataclasses.fields(config_class) if f.name == error.setting))
            raise OptionError(_not_applicable(flag, error.reason), error.setting, error.reason) from None
        raise
    except ValueError as error:
        raise OptionError(str(error)) from None
    return config


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


def stored_value(field: dataclasses.Field, stored: dict[str, Any], missing: Any = dataclasses.MISSING) -> Any:
    """``field``'s value in a stored ``config.json`` (``stored``): what it holds, else the value runs had before
    the setting existed (its ``absent`` metadata, else its default; ``missing`` for a required one)."""
    if field.name in stored:
        return stored[field.name]
    if field.metadata.get("absent", dataclasses.MISSING) is not dataclasses.MISSING:
        return field.metadata["absent"]
    return missing if field.default is dataclasses.MISSING else field.default


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
        old, new = stored.get(field.name, _jsonable(stored_value(field, {}, "<absent>"))), current[field.name]
        if old != new:
            changed.append(f"{field.name}: {old!r} there, {new!r} now")
    if stored.get("config", type(config).__name__) != type(config).__name__:
        changed.append(f"config: {stored.get('config')!r} there, {type(config).__name__!r} now")
    if changed:
        raise ValueError(
            f"{path.parent} holds a run with other settings ({'; '.join(changed)}); "
            "resume with the same settings or choose another output folder"
        )


# ---------------------------------------------------------------- command lines
class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with one-line errors: ``prog: error: message (see prog --help)``, exit status 2.

    argparse prints the whole usage block before its error, a dozen lines for a command
    with many options; the usage stays one ``--help`` away. Subcommands inherit the class.
    """

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


#: What bad input raises in library code; the command lines report these in one line.
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, FloatingPointError)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (the type's name if it has none)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


class Terminated(KeyboardInterrupt):
    """A SIGTERM turned into an interrupt by :func:`sigterm_as_interrupt` (the exit status is 143, not 130)."""


def run_command(
    parser: argparse.ArgumentParser, command: Callable[[], Any], errors: tuple[type[BaseException], ...] = ()
) -> None:
    """Run ``command`` for the (sub)command ``parser``, reporting bad input without a traceback.

    An :class:`OptionError` is a usage error (``parser.error``: ``prog: error: message``,
    exit status 2, one line with :class:`ArgumentParser`); any other error of
    :data:`INPUT_ERRORS` or ``errors`` is one line ``prog: message`` on stderr with exit
    status 1 (an ``OSError``, such as a full disk or a read-only folder, as ``prog: PATH:
    cause``); Ctrl-C ends with ``prog: interrupted`` and exit status 130, a SIGTERM turned into
    :class:`Terminated` with ``prog: terminated`` and 143 (128 + the signal, as a shell reports it).
    """
    try:
        command()
    except OptionError as error:
        parser.error(one_line(error))
    except OSError as error:
        raise SystemExit(f"{parser.prog}: {describe_os_error(error)}") from None
    except (*INPUT_ERRORS, *errors) as error:
        raise SystemExit(f"{parser.prog}: {one_line(error)}") from None
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"{parser.prog}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        raise SystemExit(128 + (signal.SIGTERM if terminated else signal.SIGINT)) from None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within it, SIGTERM (``kill``, a batch scheduler's stop) raises :class:`Terminated`, a ``KeyboardInterrupt``.

    A process that starts others needs this: killed by SIGTERM's default action it would leave
    its children running (and holding their run folders); interrupted, it runs the cleanup that
    stops them. Signal handlers belong to the main thread: elsewhere this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        # None: a handler installed outside Python, which cannot be put back; the default is the closest.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def check_new_file(path: Path, force: bool) -> Path:
    """``path``, unless a file is already there and ``force`` is off (``FileExistsError`` saying so)."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it, or choose another --out")
    return path
