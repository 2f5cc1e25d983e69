"""JSON records written whole or not at all: a record goes to a temporary file that is then renamed
into place, so a process killed while writing leaves the old record or the new one, never half of
one. Done markers (a step whose record exists is done), results, metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_record(path: Path, record: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(scratch, path)
    return path


def read_record(path: Path) -> dict | None:
    """The record at ``path``, or None where there is none (or only a damaged one: the step runs again)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None
