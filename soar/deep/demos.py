"""Where a run's expert demonstrations come from: the bundled experts, an ``.npz`` file, or Minari."""

from __future__ import annotations

from pathlib import Path

from agents.demonstrations import Demonstrations, from_minari, load_demonstrations

MINARI_PREFIX = "minari:"


def load_expert(source: str, env_id: str, trajectories: int) -> Demonstrations:
    """The first ``trajectories`` expert trajectories from ``source``.

    Parameters
    ----------
    source:
        ``"bundled"`` (the package's expert for ``env_id``), the path of a demonstration
        file of this toolkit, or ``"minari:DATASET_ID"`` (a Minari dataset already on this
        machine; needs the optional ``minari`` package).
    env_id:
        The environment being imitated (picks the bundled expert, and is checked against
        the file's, when it records one).
    trajectories:
        How many to use; more than the source holds is an error.
    """
    if source == "bundled":
        from agents.experts import bundled_demonstrations

        demos = bundled_demonstrations(env_id)
    elif source.startswith(MINARI_PREFIX):
        demos = _from_minari(source[len(MINARI_PREFIX):], env_id)
    else:
        demos = load_demonstrations(Path(source))
    if demos.env_id and demos.env_id != env_id:
        raise ValueError(f"{source} holds demonstrations of {demos.env_id}, not of {env_id}")
    if int(trajectories) != trajectories or not 1 <= trajectories <= len(demos):
        raise ValueError(f"trajectories must be an integer in [1, {len(demos)}] for {source}, got {trajectories!r}")
    return Demonstrations(demos.trajectories[: int(trajectories)], env_id=demos.env_id or env_id,
                          source=f"{demos.source or source}, first {int(trajectories)}")


def _from_minari(dataset_id: str, env_id: str) -> Demonstrations:
    try:
        import minari
    except ImportError:
        raise ValueError("minari datasets need the optional 'minari' package: pip install 'soar-mail[minari]'") from None
    try:
        dataset = minari.load_dataset(dataset_id)
    except Exception as error:  # minari raises several kinds for a missing or broken dataset
        raise ValueError(f"cannot load the Minari dataset {dataset_id!r}: {error}") from None
    return from_minari(dataset.iterate_episodes(), env_id=env_id, source=f"minari:{dataset_id}")
