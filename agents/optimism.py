"""SOAR's optimistic critic, explained once for the tabular and the deep algorithm.

Both keep an ensemble of ``L`` critics (``num_critics``) that learn from different
samples, and let the policy step see one optimistic value built from them::

    spread  = clip(std_l Q_l, 0, std_clip)          # population standard deviation
    reward form (deep SAC, higher is better):  Q_opt = mean_l Q_l + optimism * spread
    cost form   (tabular SOAR-IL, lower is better): Q_opt = mean_l Q_l - optimism * spread

The ensemble's disagreement is largest where little is known, so the optimistic
value makes unexplored actions look good and the policy tries them. ``optimism``
is the paper's kappa (deep) and beta (tabular); ``std_clip`` its sigma_clip, which
keeps early, wildly disagreeing critics from dominating the actor (tabular default:
no clip). ``L = 1`` has no spread: the base method, without optimism.

The same function serves numpy arrays and torch tensors (both have ``mean``,
``clip`` and ``**``), so the two algorithms cannot drift apart.
"""

from __future__ import annotations

import math
from typing import TypeVar

from envs.validation import check_non_negative, check_positive_int

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor

FORMS = ("reward", "cost")


def check_optimism(num_critics: int, optimism: float, std_clip: float) -> tuple[int, float, float]:
    """The three as ``(int, float, float)``; ``ValueError`` naming the argument that is out of range
    (``num_critics`` an integer >= 1, ``optimism`` a finite number >= 0, ``std_clip`` >= 0 or inf)."""
    return (
        check_positive_int(num_critics, "num_critics"),
        check_non_negative(optimism, "optimism"),
        check_non_negative(std_clip, "std_clip", allow_inf=True),
    )


def optimistic_value(members: Array, optimism: float, std_clip: float = math.inf, form: str = "reward") -> Array:
    """The optimistic value of an ensemble ``members`` of shape ``(L, ...)`` (see the module docstring).

    Returns ``members[0]`` unchanged when ``L = 1``.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if members.shape[0] == 1:
        return members[0]
    mean = members.mean(0)
    spread = (((members - mean) ** 2).mean(0) ** 0.5).clip(0.0, std_clip)
    return mean + optimism * spread if form == "reward" else mean - optimism * spread
