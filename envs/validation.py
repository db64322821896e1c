"""Argument checks shared by every package: one way to say what is wrong with an input.

Each ``check_*`` function takes the value and the name of the argument, returns the
value as the plain Python type the code goes on with (``int``, ``float``) and raises
``ValueError`` whose message names the argument, states the requirement and shows the
value: ``"gamma must lie in [0, 1), got 1.0"``. With ``name=None`` the message starts at
the requirement, which is how :mod:`agents.config` reuses the checks as command-line
parsers (argparse prefixes the option's name itself).

The module sits in ``envs``, the lowest layer, so that the game model, the solvers, the
algorithms and the command lines all check their arguments the same way.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

#: Tolerance on the sum of every probability row.
ROW_SUM_TOLERANCE = 1e-8
#: Sampled rollouts refuse a discount closer to 1 than this: a Geometric(1 - gamma)-length
#: rollout lasts 1 / (1 - gamma) steps on average, a million at this limit.
MIN_ROLLOUT_DISCOUNT_GAP = 1e-6
#: Largest horizon (steps of one simulated episode, backups of one plan) accepted: every
#: step is stored and planned over, so beyond this a run does not finish in reasonable time.
MAX_HORIZON = 10_000_000


def _message(name: str | None, requirement: str, value: Any) -> str:
    text = f"must {requirement}, got {value!r}"
    return f"{name} {text}" if name else text


def _scalar(value: Any) -> Any:
    """A 0-d numpy array as its element; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


# ------------------------------------------------------------------- numbers
def check_int(value: Any, name: str | None, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (``5``, ``np.int64(5)`` or an integral float such as ``1e5``) in ``[minimum, maximum]``."""
    # Fast path for the common case (these checks run in inner loops too).
    if type(value) is int and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value
    value = _scalar(value)
    if minimum is not None and maximum is not None:
        requirement = f"be an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        requirement = f"be an integer >= {minimum}"
    elif maximum is not None:
        requirement = f"be an integer <= {maximum}"
    else:
        requirement = "be an integer"
    if not _is_number(value) or not math.isfinite(value) or int(value) != value:
        raise ValueError(_message(name, requirement, value))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(_message(name, requirement, value))
    return int(value)


def check_positive_int(value: Any, name: str | None) -> int:
    """An integer >= 1 (a count of things that must happen at least once)."""
    return check_int(value, name, minimum=1)


def check_non_negative_int(value: Any, name: str | None) -> int:
    """An integer >= 0."""
    return check_int(value, name, minimum=0)


def check_seed(seed: Any, name: str | None = "seed") -> int | None:
    """``None`` or an integer >= 0 (what ``numpy.random.default_rng`` takes)."""
    return None if seed is None else check_non_negative_int(seed, name)


def check_finite(value: Any, name: str | None) -> float:
    """A finite real number."""
    value = _scalar(value)
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(_message(name, "be a finite number", value))
    return float(value)


def check_positive(value: Any, name: str | None) -> float:
    """A finite number > 0 (step sizes, tolerances, learning rates)."""
    if type(value) is float and 0.0 < value < math.inf:
        return value
    value = _scalar(value)
    if not _is_number(value) or not (math.isfinite(value) and value > 0):
        raise ValueError(_message(name, "be a finite number > 0", value))
    return float(value)


def check_non_negative(value: Any, name: str | None, allow_inf: bool = False) -> float:
    """A number >= 0, finite unless ``allow_inf`` (``inf`` then means "no limit", e.g. no clip)."""
    if type(value) is float and 0.0 <= value < math.inf:
        return value
    value = _scalar(value)
    requirement = "be a number >= 0 or inf" if allow_inf else "be a finite number >= 0"
    if not _is_number(value) or not value >= 0 or (math.isinf(value) and not allow_inf):
        raise ValueError(_message(name, requirement, value))
    return float(value)


def check_interval(
    value: Any, name: str | None, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> float:
    """A number in the interval from ``low`` to ``high`` (each end closed unless ``*_open``)."""
    if type(value) is float and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high):
        return value
    value = _scalar(value)
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    inside = _is_number(value) and (value > low if low_open else value >= low) and (
        value < high if high_open else value <= high)
    if not inside:
        raise ValueError(_message(name, f"lie in {interval}", value))
    return float(value)


def check_probability(value: Any, name: str | None) -> float:
    """A number in [0, 1]."""
    return check_interval(value, name, 0.0, 1.0)


def check_discount(gamma: Any, name: str | None = "gamma") -> float:
    """A discount factor in [0, 1)."""
    return check_interval(gamma, name, 0.0, 1.0, high_open=True)


def check_rollout_discount(gamma: Any, name: str | None = "gamma") -> float:
    """A discount in [0, 1) at least :data:`MIN_ROLLOUT_DISCOUNT_GAP` away from 1.

    For anything that samples Geometric(1 - gamma)-length rollouts: closer to 1, one
    rollout alone takes millions of steps, so the work is refused with the reason
    instead of running for hours.
    """
    gamma = check_discount(gamma, name)
    if 1.0 - gamma < MIN_ROLLOUT_DISCOUNT_GAP:
        raise ValueError(
            f"{name or 'the discount'} = {gamma!r} is within {MIN_ROLLOUT_DISCOUNT_GAP:g} of 1: a sampled rollout "
            f"lasts 1 / (1 - gamma) = {1.0 / (1.0 - gamma):.3g} steps on average, which does not finish in "
            "reasonable time; use a smaller discount (the exact solvers of agents.tabular take any gamma < 1)"
        )
    return gamma


def check_horizon(value: Any, name: str | None = "horizon") -> int:
    """An episode horizon: an integer in [1, :data:`MAX_HORIZON`], refused with the reason above it."""
    value = check_positive_int(value, name)
    if value > MAX_HORIZON:
        raise ValueError(
            f"{name or 'the horizon'} = {value} exceeds {MAX_HORIZON:.0e} steps: every step of an episode is "
            "stored and planned over, so the run would not finish in reasonable time"
        )
    return value


def check_choice(value: Any, name: str | None, choices: Sequence[Any]) -> Any:
    """One of ``choices``."""
    if value not in tuple(choices):
        raise ValueError(_message(name, f"be one of {tuple(choices)}", value))
    return value


# -------------------------------------------------------------------- arrays
def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _format_index(index: tuple[int, ...], trailing_slice: bool = False) -> str:
    parts = [str(i) for i in index]
    if trailing_slice:
        parts.append(":")
    return "[" + ", ".join(parts) + "]"


def check_finite_array(array: np.ndarray, name: str) -> np.ndarray:
    """A float64 array whose entries are all finite; the message names the first bad index."""
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers") from None
    if not np.all(np.isfinite(array)):
        index = _first_index(~np.isfinite(np.atleast_1d(array)))
        raise ValueError(f"{name}{_format_index(index)} is not finite ({np.atleast_1d(array)[index]})")
    return array


def check_distribution_rows(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless every row along the last axis is a probability vector.

    Parameters
    ----------
    array:
        Array whose last axis holds probability vectors.
    name:
        Name of the field, used in the error message.
    """
    check_finite_array(array, name)
    if np.any(array < 0):
        index = _first_index(array < 0)
        raise ValueError(f"{name}{_format_index(index)} = {array[index]:.6g} is negative")
    sums = array.sum(axis=-1)
    bad = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if np.any(bad):
        index = _first_index(bad)
        raise ValueError(
            f"{name}{_format_index(index, trailing_slice=True)} sums to {sums[index]:.12g}, "
            f"expected 1 (within {ROW_SUM_TOLERANCE:g})"
        )
