"""The study's JSON records: done markers, results, the settings an output folder was made with.

A record is written to a temporary file and renamed into place, so a study killed while writing
leaves either the old record or the new one, never half of one; a step whose record exists is done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SETTINGS = "study.json"  # <out>/study.json: the settings the folder's runs were made with


def write_record(path: Path, record: dict) -> Path:
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


def check_settings(out: Path, settings: dict) -> None:
    """Record the settings in a new output folder; in one made before, stop where they differ."""
    path = out / SETTINGS
    saved = read_record(path)
    if saved is None:
        write_record(path, settings)
        return
    differ = [k for k in sorted(set(saved) | set(settings)) if saved.get(k) != settings.get(k)]
    if differ:
        said = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)} (now {settings.get(k)})" for k in differ)
        raise ValueError(f"--out {out} holds a study made with {said}; give the same options to continue it, or "
                         "another --out for a new study")
