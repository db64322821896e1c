"""Figures a reader can trust: what every plot of the toolkit shares.

* :func:`t_half_width` and :func:`clipped_band`: a band around a curve (a t-interval of the
  mean, or mean +- std), kept within the values the plotted quantity can take (a Nash gap
  is never negative, no policy's value exceeds the optimal one): a band that leaves that
  range shows the reader values no run can have.
* :func:`band_handle`: the legend entry that says what the shaded bands are.
* :func:`legend_outside`: the legend beside the axes, never over a curve.
* :func:`gap_scale`: a symlog y-axis on which gaps of 0.05 and of 12 are both visible.
* :func:`new_figure` and :func:`save_figure`: figures without pyplot's global state
  (matplotlib is imported only here and only when a figure is made; rendering is Agg).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import stats

from agents.checkpoints import atomic_output

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.patches import Patch

#: Colour of the legend entry that describes the bands (each curve's band has the curve's colour).
BAND_LEGEND_COLOR = "0.6"


# ------------------------------------------------------------------ bands
def t_half_width(samples: np.ndarray | Sequence, confidence: float = 0.95) -> np.ndarray:
    """Half-width of the two-sided ``confidence`` t-interval of the mean over axis 0.

    Parameters
    ----------
    samples:
        Shape ``(n, ...)``: ``n`` independent samples (seeds) of every point.
    confidence:
        Coverage of the interval, in (0, 1).

    Returns
    -------
    Shape ``samples.shape[1:]``; zeros when ``n < 2`` (no spread to estimate).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[0]
    if n < 2:
        return np.zeros(samples.shape[1:])
    return stats.t.ppf((1 + confidence) / 2, n - 1) * samples.std(axis=0, ddof=1) / np.sqrt(n)


def clipped_band(
    mean: np.ndarray | Sequence,
    half: np.ndarray | Sequence,
    lower: float | np.ndarray | None = None,
    upper: float | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``mean - half`` and ``mean + half``, both clipped to ``[lower, upper]``.

    Parameters
    ----------
    mean, half:
        The curve and the band's half-width (same shape).
    lower, upper:
        The range the plotted quantity can take, scalars or per point; ``None`` or NaN: unbounded.

    Returns
    -------
    low, high:
        The band's edges, ``lower <= low <= high <= upper`` wherever the bounds are given.
    """
    mean = np.asarray(mean, dtype=np.float64)
    half = np.asarray(half, dtype=np.float64)
    low, high = mean - half, mean + half
    # fmax/fmin ignore a NaN bound, so a point without a known bound keeps its band.
    if lower is not None:
        low, high = np.fmax(low, lower), np.fmax(high, lower)
    if upper is not None:
        low, high = np.fmin(low, upper), np.fmin(high, upper)
    return low, high


def count_text(counts: Sequence[int] | int, unit: str) -> str:
    """``"10 seeds"``, ``"1 seed"``, or ``"3-5 seeds"`` when points average different numbers of samples
    (``unit`` is the plural)."""
    counts = [int(c) for c in np.atleast_1d(counts)]
    low, high = min(counts), max(counts)
    amount = f"{low}" if low == high else f"{low}-{high}"
    noun = unit[:-1] if high == 1 and unit.endswith("s") else unit
    return f"{amount} {noun}"


def t_interval_text(confidence: float, counts: Sequence[int] | int, unit: str = "seeds") -> str:
    """What a :func:`t_half_width` band is, e.g. ``"95% t-interval of the mean over 10 seeds"``."""
    return f"{confidence:.0%} t-interval of the mean over {count_text(counts, unit)}"


def band_text(statistic: str, range_text: str = "") -> str:
    """The legend text of the bands: ``"shaded: <statistic>"``, and ``"clipped to <range_text>"`` if given."""
    return f"shaded: {statistic}" + (f",\nclipped to {range_text}" if range_text else "")


def band_handle(text: str) -> "Patch":
    """A legend entry (a grey patch) saying what the shaded bands of the figure are."""
    from matplotlib.patches import Patch

    return Patch(facecolor=BAND_LEGEND_COLOR, alpha=0.4, linewidth=0, label=text)


def draw_band(axis: "Axes", x: np.ndarray, low: np.ndarray, high: np.ndarray, color, alpha: float = 0.2) -> None:
    """Shade ``low..high`` over ``x`` in the colour of its curve (kept out of the legend: see :func:`band_handle`)."""
    axis.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0, label="_band")


# ------------------------------------------------------------------ figures and legends
def new_figure(
    rows: int = 1, columns: int = 1, *, width: float, height: float, **subplots
) -> tuple["Figure", np.ndarray]:
    """A figure with constrained layout (so a legend outside the axes gets its room) and its axes grid.

    It belongs to no pyplot window and needs no ``plt.close``; ``subplots`` go to
    :meth:`matplotlib.figure.Figure.subplots` (``sharey=True``, ...).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, **subplots)
    return figure, axes


def save_figure(figure: "Figure", path: str | Path, dpi: int = 110) -> None:
    """Write ``figure`` as a PNG at ``path`` (parents created); a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")


def legend_entries(axes: Sequence["Axes"]) -> tuple[list["Artist"], list[str]]:
    """The labelled artists of ``axes``, each label once (the first artist that has it)."""
    handles, labels = [], []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def legend_outside(
    owner: "Figure | Axes",
    extra: Sequence["Artist"] = (),
    fontsize: float = 8,
    ncols: int = 1,
) -> "Legend":
    """A legend right of the axes, where it cannot cover a curve.

    Parameters
    ----------
    owner:
        A figure: one legend for all its axes (labels deduplicated), in a column right of
        them. One axes: its own legend, right of it.
    extra:
        Entries added after the curves' (e.g. :func:`band_handle`).
    fontsize, ncols:
        Legend text size and columns.
    """
    from matplotlib.figure import Figure

    if isinstance(owner, Figure):
        handles, labels = legend_entries(owner.axes)
    else:
        handles, labels = legend_entries([owner])
    handles += list(extra)
    labels += [handle.get_label() for handle in extra]
    if isinstance(owner, Figure):
        return owner.legend(handles, labels, loc="outside right upper", fontsize=fontsize, ncols=ncols)
    # Anchored just right of the axes; constrained layout shrinks the axes to make room.
    return owner.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                        fontsize=fontsize, ncols=ncols)


# ------------------------------------------------------------------ gap axes
def gap_scale(axes: Sequence["Axes"], values: np.ndarray | Sequence, decades: int = 4) -> float:
    """Put every axis of ``axes`` on one symlog y-scale from 0 to above the largest of ``values``.

    Linear from 0 to a floor (so exact zeros still show), logarithmic above it: a gap of
    0.05 next to one of 12 is drawn as a visible step, not as a line on the x-axis.

    Parameters
    ----------
    axes:
        The axes that share the scale (so panels compare at a glance).
    values:
        Everything that is drawn (curves and band edges), all ``>= 0``.
    decades:
        The floor is at most this many decades below the largest value.

    Returns
    -------
    The floor (symlog's ``linthresh``): the power of ten at or below the smallest positive value.
    """
    from matplotlib import ticker

    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    top = float(positive.max()) if positive.size else 1.0
    top_decade = math.floor(math.log10(top))
    smallest = float(positive.min()) if positive.size else top
    floor = 10.0 ** max(math.floor(math.log10(smallest)), top_decade - decades)
    ticks = [0.0] + [10.0 ** k for k in range(round(math.log10(floor)), top_decade + 2)]
    for axis in axes:
        axis.set_yscale("symlog", linthresh=floor, linscale=0.5)
        axis.set_ylim(0.0, top * 1.5)
        axis.yaxis.set_major_locator(ticker.FixedLocator(ticks))
        axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_locator(
            ticker.SymmetricalLogLocator(base=10, linthresh=floor, subs=np.arange(2, 10)))
    return floor


def steps_in_thousands(axis: "Axes") -> None:
    """Label ``axis``'s x ticks as 50k, 100k, ... (six-digit step counts collide otherwise)."""
    from matplotlib import ticker

    axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value / 1000:g}k" if value else "0"))


def evaluation_grid(step_lists: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Common x-axis for runs evaluated at different steps, and where each run stands on it.

    Runs of one group evaluate at the same steps unless a soar train run's ``--cost-rollouts`` made a seed's
    step count jump past an evaluation multiple (the evaluation is then logged where the
    jump landed, a different step for each seed). The grid is every step some run
    evaluated at, from the last run's first evaluation to the first run's last one; a run's
    value at a grid step is its latest evaluation at or before it (what the agent was at
    that step). Returns the grid and, per run, the index of that evaluation in its steps.
    Runs with identical steps get exactly those steps.
    """
    step_lists = [np.asarray(steps, dtype=np.int64) for steps in step_lists]
    low = max(int(steps[0]) for steps in step_lists)
    high = min(int(steps[-1]) for steps in step_lists)
    union = np.unique(np.concatenate(step_lists))
    grid = union[(union >= low) & (union <= high)]
    return grid, [np.searchsorted(steps, grid, side="right") - 1 for steps in step_lists]
