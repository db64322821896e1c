"""Environments: tabular Markov games and MDPs, Gymnasium/MuJoCo helpers."""

from envs.markov_game import MarkovGame

__all__ = ["MarkovGame"]
