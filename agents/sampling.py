"""Jitted sampling primitives shared by the tabular algorithms."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def categorical(probabilities: np.ndarray, u: float) -> int:
    """Inverse-CDF draw from ``probabilities`` with a uniform ``u`` in [0, 1)."""
    total = 0.0
    for i in range(probabilities.shape[0]):
        total += probabilities[i]
        if u < total:
            return i
    # Rounding can leave the total a hair below 1: return the last positive entry.
    for i in range(probabilities.shape[0] - 1, -1, -1):
        if probabilities[i] > 0.0:
            return i
    return 0
