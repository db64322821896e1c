"""Output folders and files: checked and created before any compute, locked while a run writes them.

A command that would fail only when it first writes (after minutes or hours of compute)
checks its outputs up front with :func:`prepare_output_dir` / :func:`prepare_output_file`.
:class:`RunLock` keeps a second process out of a run folder that one is writing
(``fcntl.flock``: the operating system drops the lock when its process dies, kill -9
included, so a crashed run never leaves a stale lock). :func:`describe_os_error` turns
an ``OSError`` (full disk, read-only folder, missing permission) into the one line a
command-line tool prints.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path

LOCK_FILE = ".lock"


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name if it has none): loaders wrap library errors,
    whose later lines (a torch state-dict mismatch lists every key) would bury the file's name."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def describe_os_error(error: OSError) -> str:
    """``"PATH: cause"`` (e.g. ``"runs/x/logs/eval.csv: No space left on device"``) for an ``OSError``."""
    cause = error.strerror or (errno.errorcode.get(error.errno, "") if error.errno else "") or str(error)
    return f"{error.filename}: {cause}" if error.filename else cause


def prepare_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Create the folder ``path`` if needed and check that files can be written in it.

    Parameters
    ----------
    path:
        The output folder.
    option:
        How the user named it (for the message), e.g. ``"--out"``.

    Raises ``ValueError`` naming ``option``, the path and the cause: it exists and is
    not a folder, it cannot be created, or nothing can be written in it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # the only reliable test: root ignores permission bits
            pass
    except OSError as error:
        raise ValueError(f"{option} {path} cannot be written: {describe_os_error(error)}") from None
    return path


def prepare_output_file(path: str | Path, option: str = "--out", overwrite: bool = True) -> Path:
    """Check that the file ``path`` can be written (creating its folder); ``ValueError`` naming the cause.

    With ``overwrite=False`` an existing file is refused too.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder, not a file")
    if not overwrite and path.exists():
        raise ValueError(f"{option} {path} exists; choose another name or remove it first")
    prepare_output_dir(path.parent if str(path.parent) else Path("."), option=f"the folder of {option} {path}")
    return path


class RunLock:
    """An exclusive lock on a run folder for as long as one process writes it.

    Parameters
    ----------
    folder:
        The run folder (must exist).

    ``acquire`` raises ``ValueError`` naming the folder and the process that holds it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._handle = None

    def acquire(self) -> "RunLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ValueError(f"{self.path.parent} is in use by another process (pid {holder}); wait for it to "
                             "finish or choose another folder") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        except BaseException:
            handle.close()  # closing unlocks
            raise
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            # Unlocked by closing; the file stays (removing it could race with a process waiting on it).
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


class StopOnInterrupt:
    """Ctrl-C inside the ``with`` block ends the block instead of the program; :attr:`happened` tells.

    A sweep appends each finished run to a list as it goes; wrapping the sweep in this
    lets the command write those runs before it stops::

        with StopOnInterrupt() as interrupt:
            run_sweep(config, rows=rows)
        write(rows)
        if interrupt.happened:
            raise SystemExit(...)
    """

    def __init__(self) -> None:
        self.happened = False

    def __enter__(self) -> "StopOnInterrupt":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.happened = kind is not None and issubclass(kind, KeyboardInterrupt)
        return self.happened
