"""Named model sizes: ``config_from_name(sizes, Config, "tiny", channels=8)``."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

C = TypeVar("C")


def config_from_name(sizes: Mapping[str, Mapping[str, Any]], config_cls: type[C], name: str, **overrides) -> C:
    """Build ``config_cls`` from the named entry of ``sizes`` with ``overrides`` applied on top."""
    if name not in sizes:
        raise ValueError(f"size must be one of {sorted(sizes)}, got {name!r}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"overrides must be fields of {config_cls.__name__} ({sorted(fields)}), got unknown {unknown}")
    return config_cls(**{**sizes[name], **overrides})
