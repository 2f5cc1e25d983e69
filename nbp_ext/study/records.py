"""The settings a study's output folder was made with: a study continues only with the same ones."""

from __future__ import annotations

from pathlib import Path

from ..records import read_record, write_record

SETTINGS = "study.json"  # <out>/study.json: the settings the folder's runs were made with


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
