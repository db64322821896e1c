"""Environments: tabular Markov games and MDPs, Gymnasium/MuJoCo helpers."""

from importlib.metadata import PackageNotFoundError, version

from envs.markov_game import MarkovGame

try:
    __version__ = version("soar-mail")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["MarkovGame", "__version__"]
