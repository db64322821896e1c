"""SOAR: Soft Optimistic Actor cRitic imitation learning (tabular and deep)."""

from agents import __version__

__all__ = ["__version__"]
