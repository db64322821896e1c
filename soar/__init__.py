"""SOAR: Soft Optimistic Actor cRitic imitation learning (tabular and deep).

``soar.train`` (deep imitation on Gymnasium/MuJoCo, :func:`soar.deep.loop.train`) is
imported on first use, so that the tabular side (``soar.tabular``) never loads torch.
"""

from agents import __version__

__all__ = ["__version__", "train"]


def __getattr__(name: str):
    if name == "train":
        from soar.deep.loop import train

        return train
    raise AttributeError(f"module 'soar' has no attribute {name!r}")
