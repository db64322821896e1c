"""Scalar logs of a training run: CSV files per namespace and TensorBoard event files, resumable after a crash.

Metrics have namespaced keys such as ``train/critic_loss``, ``eval/return_mean`` or
``time/steps_per_second``. :class:`RunLogger` writes them twice::

    OUT/logs/<namespace>.csv   columns: step, then the keys without their namespace
    OUT/tensorboard/           event files, tags = the full keys

Rows are appended and flushed to the OS as they come, so a killed process loses none
that were logged; :meth:`RunLogger.flush` also fsyncs them (a training run does so
before each checkpoint). A run resumed from the checkpoint at step ``S`` calls
:meth:`RunLogger.rewind` with ``S``: rows after ``S`` (they will be logged again) and
a last line torn by the kill leave the CSV files, and TensorBoard is told to forget
events after ``S`` by a ``SessionLog.START`` event at step ``S + 1`` (what torch's
``SummaryWriter(purge_step=S + 1)`` writes; TensorBoard then discards older events
from step ``S + 1`` on). A run with no checkpoint to resume from rewinds with ``None``
and forgets every row, those of step 0 included.

No torch here: TensorBoard files are written with the tensorboard package's own writer.
"""

from __future__ import annotations

import csv
import math
import io
import numbers
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

from agents.checkpoints import fsync_path, replace_file

ELAPSED_KEY = "time/elapsed_seconds"
STEPS_PER_SECOND_KEY = "time/steps_per_second"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
_EVENT_FILE = re.compile(r"events\.out\.tfevents\.(\d+)\.")


def split_key(key: str) -> tuple[str, str]:
    """``"train/critic_loss"`` -> ``("train", "critic_loss")``; ``ValueError`` for a key without namespace."""
    if not isinstance(key, str) or not _NAME.fullmatch(key) or "/" not in key:
        raise ValueError(
            f"metric keys are 'namespace/name' (letters, digits, '_', '.', '-'), e.g. 'train/critic_loss'; got {key!r}"
        )
    namespace, name = key.split("/", 1)
    return namespace, name


def _number(key: str, value: Any) -> int | float:
    if isinstance(value, (str, bytes)):
        raise ValueError(f"metric {key!r} must be a number, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {key!r} must be a number, got {value!r}") from None


def _parse_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _read_table(path: Path) -> tuple[list[str], list[list[str]], bool]:
    """Columns, rows (as text) and whether a torn last line was dropped.

    A kill can cut the last line short; every complete line ends with a newline, so a
    last line without one is dropped. A malformed complete line is an error.
    """
    data = path.read_bytes().decode("utf-8", errors="replace")
    torn = bool(data) and not data.endswith("\n")
    if torn:
        data = data[: data.rfind("\n") + 1]
    lines = list(csv.reader(io.StringIO(data, newline="")))
    if not lines:
        return [], [], torn
    header = lines[0]
    if not header or header[0] != "step":
        raise ValueError(f"{path} is not a log of this toolkit: its first column is not 'step'")
    rows = []
    for number, row in enumerate(lines[1:], start=2):
        if len(row) > len(header) or not row:
            raise ValueError(f"{path}, line {number}: {len(row)} fields for {len(header)} columns")
        try:
            int(row[0])
        except ValueError:
            raise ValueError(f"{path}, line {number}: step {row[0]!r} is not an integer") from None
        rows.append(row + [""] * (len(header) - len(row)))
    return header[1:], rows, torn


def _write_table(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    """Write the whole file next to ``path`` and move it over ``path``: never half a file."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["step", *columns])
        writer.writerows(rows)
    replace_file(temporary, path)


def read_log(path: str | Path) -> list[dict[str, int | float]]:
    """The rows of a CSV log written by :class:`RunLogger` (``step`` an int; empty cells left out).

    A torn last line is skipped; anything else malformed raises ``ValueError`` naming the file.
    """
    columns, rows, _ = _read_table(Path(path))
    return [
        {"step": int(row[0]), **{c: _parse_number(v) for c, v in zip(columns, row[1:]) if v != ""}}
        for row in rows
    ]


class _Table:
    """One namespace's CSV file, opened for appending."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        self.last_step: int | None = None
        self.handle: io.TextIOWrapper | None = None
        if path.exists():
            columns, rows, torn = _read_table(path)
            if torn:
                _write_table(path, columns, rows)
            self.columns = columns
            self.last_step = int(rows[-1][0]) if rows else None
            self.handle = open(path, "a", newline="")

    def append(self, step: int, values: dict[str, int | float]) -> None:
        new = [name for name in values if name not in self.columns]
        if new or self.handle is None:
            rows = _read_table(self.path)[1] if self.path.exists() else []
            self.close()
            self.columns += new
            _write_table(self.path, self.columns, [row + [""] * len(new) for row in rows])
            self.handle = open(self.path, "a", newline="")
        # str of a float is its shortest exact form: the CSV reads back bit for bit.
        cells = [str(step)] + [str(values[c]) if c in values else "" for c in self.columns]
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(cells)
        # One write of the whole line, flushed: a kill loses no logged row and tears at most this one.
        self.handle.write(line.getvalue())
        self.handle.flush()
        self.last_step = step

    def rewind(self, step: int | None) -> None:
        self.close()
        if self.path.exists():
            columns, rows, torn = _read_table(self.path)
            kept = [] if step is None else [row for row in rows if int(row[0]) <= step]
            if torn or len(kept) != len(rows):
                _write_table(self.path, columns, kept)
            self.columns = columns
            self.last_step = int(kept[-1][0]) if kept else None
            self.handle = open(self.path, "a", newline="")

    def sync(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class RunLogger:
    """Namespaced scalar metrics to ``OUT/logs/<namespace>.csv`` and ``OUT/tensorboard/``.

    Parameters
    ----------
    out:
        The run's folder.
    tensorboard:
        Also write TensorBoard event files.

    Every call of :meth:`log` appends one row per namespace it touches, so log all
    keys of a namespace for a step in one call; steps must increase within a
    namespace. A new key widens its namespace's CSV (the file is rewritten with the
    new header, older rows leaving the new column empty).
    """

    def __init__(self, out: str | Path, tensorboard: bool = True) -> None:
        self.out = Path(out)
        self.log_dir = self.out / "logs"
        self.tensorboard_dir = self.out / "tensorboard"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._tables: dict[str, _Table] = {}
        self._clock_offset = 0.0
        self._clock_start = time.perf_counter()
        self._writer = self._open_tensorboard() if tensorboard else None

    # ------------------------------------------------------------ clock
    def elapsed_seconds(self) -> float:
        """Seconds of training so far, counting those before the step a resumed run restarted from."""
        return self._clock_offset + time.perf_counter() - self._clock_start

    # ------------------------------------------------------------ writing
    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Log ``metrics`` (``{"namespace/name": number}``) at ``step``; flushed to the OS before returning."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        step = int(step)
        grouped: dict[str, dict[str, int | float]] = {}
        for key, value in metrics.items():
            namespace, name = split_key(key)
            grouped.setdefault(namespace, {})[name] = _number(key, value)
        for namespace in grouped:
            last = self._table(namespace).last_step
            if last is not None and step <= last:
                raise ValueError(
                    f"step {step} of {namespace}/ logged after step {last}: steps must increase within a "
                    "namespace (log all its keys for a step in one call; rewind a resumed run first)"
                )
        for namespace, values in grouped.items():
            self._table(namespace).append(step, values)
        if self._writer is not None and grouped:
            from tensorboard.compat.proto import event_pb2, summary_pb2

            summary = summary_pb2.Summary(value=[
                summary_pb2.Summary.Value(tag=f"{namespace}/{name}", simple_value=float(value))
                for namespace, values in grouped.items() for name, value in values.items()
            ])
            self._writer.add_event(event_pb2.Event(step=step, wall_time=time.time(), summary=summary))
            self._writer.flush()

    def flush(self) -> None:
        """Put every logged row and event on disk (flush and fsync)."""
        for table in self._tables.values():
            table.sync()
        if self._writer is not None:
            self._writer.flush()
            for path in self.tensorboard_dir.glob("events.out.tfevents.*"):
                fsync_path(path)
            fsync_path(self.tensorboard_dir)
        fsync_path(self.log_dir)

    def rewind(self, step: int | None, elapsed_seconds: float | None = None) -> None:
        """Forget what was logged after ``step``, where a resumed run restarts.

        Parameters
        ----------
        step:
            The step of the checkpoint the run resumes from; rows with a larger step
            and a torn last line leave every CSV (each rewritten atomically), and
            TensorBoard gets a purge event at ``step + 1``. ``None`` (no checkpoint: the
            run starts over) forgets every row, those logged at step 0 included.
        elapsed_seconds:
            Where the clock of :meth:`elapsed_seconds` continues from; by default the
            last ``time/elapsed_seconds`` logged at or before ``step`` (0 if none).
        """
        if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0):
            raise ValueError(f"step must be None or an integer >= 0, got {step!r}")
        for path in sorted(self.log_dir.glob("*.csv")):
            self._table(path.stem).rewind(None if step is None else int(step))
        if self._writer is not None:
            from tensorboard.compat.proto import event_pb2

            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            purge_from = 0 if step is None else int(step) + 1
            self._writer.add_event(event_pb2.Event(step=purge_from, wall_time=time.time(), session_log=start))
            self._writer.flush()
        if elapsed_seconds is None:
            namespace, name = split_key(ELAPSED_KEY)
            logged = [row[name] for row in self.read(namespace) if name in row]
            elapsed_seconds = float(logged[-1]) if logged else 0.0
        self._clock_offset = float(elapsed_seconds)
        self._clock_start = time.perf_counter()

    def read(self, namespace: str) -> list[dict[str, int | float]]:
        """The rows logged so far under ``namespace`` (see :func:`read_log`)."""
        self._table(namespace).sync()
        path = self.log_dir / f"{namespace}.csv"
        return read_log(path) if path.exists() else []

    def close(self) -> None:
        """Flush and close every file (the logger cannot be used afterwards)."""
        self.flush()
        for table in self._tables.values():
            table.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------ internals
    def _table(self, namespace: str) -> _Table:
        if namespace not in self._tables:
            split_key(namespace + "/x")  # the namespace becomes a file name: same rules as keys
            self._tables[namespace] = _Table(self.log_dir / f"{namespace}.csv")
        return self._tables[namespace]

    def _open_tensorboard(self):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        # TensorBoard reads a folder's event files in name order, and a name starts with
        # the creation second: a resumed run's file (carrying the purge event) must not
        # share its second with an earlier file, or it could be read first.
        self.tensorboard_dir.mkdir(parents=True, exist_ok=True)
        seconds = [int(m.group(1)) for p in self.tensorboard_dir.iterdir() if (m := _EVENT_FILE.match(p.name))]
        deadline = time.time() + 1.5
        while seconds and int(time.time()) <= max(seconds) and time.time() < deadline:
            time.sleep(0.05)
        return EventFileWriter(str(self.tensorboard_dir))


def check_finite(metrics: Mapping[str, float], where: str, step: int, cause: str = "") -> None:
    """``FloatingPointError`` naming every non-finite metric (and the likely ``cause``): a run stops at
    the first bad value, before any later checkpoint is written, instead of training on NaN for hours."""
    bad = {name: value for name, value in metrics.items() if not math.isfinite(value)}
    if bad:
        raise FloatingPointError(
            f"{where}: non-finite {', '.join(f'{k} = {v}' for k, v in bad.items())} at step {step}"
            f"{f' ({cause})' if cause else ''}; {stopping_note(step)}"
        )


def stopping_note(step: int) -> str:
    """How a run stopped by a non-finite value at environment ``step`` can go on, true whether or not
    it has written a checkpoint yet."""
    if step == 0:
        return "stopping before anything was saved"
    return ("stopping before this step reaches a checkpoint (a resume starts from the last checkpoint "
            "written, or afresh if there is none yet)")


class MetricWindow:
    """Averages of training metrics and the step rate since the last log, for periodic ``train/`` rows.

    Parameters
    ----------
    namespace:
        Namespace of the averaged metrics.
    """

    def __init__(self, namespace: str = "train") -> None:
        split_key(namespace + "/x")
        self.namespace = namespace
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0
        self.start = time.perf_counter()

    def add(self, metrics: Mapping[str, float]) -> None:
        """Add one value per metric (e.g. the losses of one gradient step)."""
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
            self.counts[name] = self.counts.get(name, 0) + 1

    def step(self) -> None:
        """Count one environment step."""
        self.steps += 1

    def log(self, logger: RunLogger, step: int) -> None:
        """Log the averages (if any), ``time/steps_per_second`` and ``time/elapsed_seconds`` at ``step``; start anew."""
        now = time.perf_counter()
        metrics: dict[str, float] = {f"{self.namespace}/{k}": total / self.counts[k] for k, total in self.sums.items()}
        metrics[STEPS_PER_SECOND_KEY] = self.steps / max(now - self.start, 1e-9)
        metrics[ELAPSED_KEY] = logger.elapsed_seconds()
        logger.log(step, metrics)
        self._reset()
