"""Staged, atomic checkpoint folders: a crash at any moment leaves a complete checkpoint to resume from.

A checkpoint is written into ``NAME.tmp``, marked complete with a ``done`` file and
only then swapped in for ``NAME``; the previous one waits as ``NAME.old`` until the
new one is in place. :func:`latest_checkpoint` takes ``NAME`` when it is complete and
``NAME.old`` otherwise, so a kill during the swap resumes from the previous
checkpoint instead of half a new one. Files are fsynced before the swap, so the same
holds after a power loss.

No torch here: the tabular side of the toolkit uses these helpers too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

DONE = "done"


def fsync_path(path: str | Path) -> None:
    """Ask the OS to put ``path`` (a file or a folder's entries) on disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_file(source: str | Path, target: str | Path) -> None:
    """Move ``source`` over ``target`` in one step (``os.replace``), durably."""
    fsync_path(source)
    os.replace(source, target)
    fsync_path(Path(target).parent)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, it replaces ``path`` durably.

    Whatever the block writes to the temporary path (``torch.save``, ``np.savez``,
    ``savefig``, ...) becomes ``path`` in one step, so a crash, a full disk or an error
    in the block leaves the previous ``path`` (or none) and never half a file. The
    temporary file is removed if the block raises.
    """
    path = Path(path)
    # Same folder (so the replace is one rename) and same suffix (np.savez and savefig go by it).
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield temporary
        replace_file(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``Path(path).write_text(text)``, replaced whole (:func:`atomic_output`)."""
    with atomic_output(path) as temporary:
        temporary.write_text(text)


def copy_file_atomic(source: str | Path, target: str | Path) -> None:
    """``shutil.copyfile(source, target)``, with ``target`` replaced whole (:func:`atomic_output`)."""
    with atomic_output(target) as temporary:
        shutil.copyfile(source, temporary)


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a checkpoint whose writing finished."""
    return (folder / DONE).is_file()


def _remove(folder: Path) -> None:
    # The marker goes first: a folder whose removal is cut short is never taken for complete.
    (folder / DONE).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def _siblings(checkpoint: Path) -> tuple[Path, Path]:
    return checkpoint.with_name(checkpoint.name + ".tmp"), checkpoint.with_name(checkpoint.name + ".old")


@contextlib.contextmanager
def staged_checkpoint(checkpoint: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends normally, swap it in as ``checkpoint``.

    Parameters
    ----------
    checkpoint:
        The checkpoint folder (e.g. ``OUT/checkpoint``); its parent must exist.

    Whatever the block writes into the staging folder is fsynced and becomes the new
    checkpoint as a whole. If the block raises, the staging folder is removed and the
    previous checkpoint stays.
    """
    checkpoint = Path(checkpoint)
    staging, old = _siblings(checkpoint)
    _remove(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    for path in staging.rglob("*"):
        if path.is_file():
            fsync_path(path)
    (staging / DONE).touch()
    fsync_path(staging / DONE)
    fsync_path(staging)
    if is_complete(checkpoint):
        _remove(old)
        checkpoint.rename(old)
    else:
        # No complete current checkpoint: after a crash between the two renames the only
        # complete one is NAME.old, which must survive until the new one is in place.
        _remove(checkpoint)
    staging.rename(checkpoint)
    fsync_path(checkpoint.parent)
    _remove(old)


def latest_checkpoint(checkpoint: str | Path) -> Path | None:
    """The complete checkpoint folder to resume from: ``checkpoint``, else ``checkpoint.old``, else ``None``."""
    checkpoint = Path(checkpoint)
    for folder in (checkpoint, _siblings(checkpoint)[1]):
        if is_complete(folder):
            return folder
    return None
