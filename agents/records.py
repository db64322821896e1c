"""Tidy CSV records: one row per logged point, typed columns, clear errors on bad files."""

from __future__ import annotations

import csv
from pathlib import Path

from agents.checkpoints import atomic_output


def write_rows(rows: list[dict], path: Path, fields: dict[str, type]) -> None:
    """Write ``rows`` with the columns of ``fields`` (in order), creating parent folders; replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path, fields: dict[str, type], kind: str) -> list[dict]:
    """Read a CSV written by :func:`write_rows`, converting every column with its type.

    Raises ``ValueError`` naming the file (``kind`` says what it should have been) and
    the missing columns, or the line whose value does not parse.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(fields) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} is not a {kind} CSV: missing columns {sorted(missing)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append({name: convert(row[name]) for name, convert in fields.items()})
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path}, line {line}: {error}") from None
    return rows
