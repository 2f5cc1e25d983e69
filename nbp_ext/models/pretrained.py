"""Save and load a model as ``config.json`` (its dataclass config) + ``model.safetensors``.

``config.json`` records the SHA-256 of the weights file, and loading checks it before reading a
tensor: a changed or corrupt file is refused with one line naming it. A folder written before the
hash was recorded loads unchecked. Every problem with a folder (missing, truncated or foreign
files, a config field of the wrong type or value, weights that do not fit the config) is a
``ValueError`` or ``FileNotFoundError`` whose message names the file and the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def config_to_dict(config: Any) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a config field's type hint (int, float, str, bool, tuples, None unions)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        inner = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if inner is not None:
            return all(_type_ok(v, inner) for v in value)
        return len(value) == len(args) and all(_type_ok(v, h) for v, h in zip(value, args))
    return True  # a type this check does not know: the config's own validation decides


def config_from_dict(config_cls: type, data: dict, source: str = CONFIG_FILE) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: the config must be a JSON object")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"{source} has keys that {config_cls.__name__} does not know: {unknown}")
    hints = typing.get_type_hints(config_cls)
    for name, value in data.items():
        if not _type_ok(value, hints.get(name)):
            raise ValueError(f"{source}: field {name!r} must be {hints.get(name)}, got {value!r}")
    try:
        return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: {e}") from None


class PretrainedMixin:
    """For an ``nn.Module`` with a ``config`` attribute and a class attribute ``config_class``."""

    config_class: type
    model_type: str

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / (WEIGHTS_FILE + ".tmp")), metadata={"model_type": self.model_type})
        meta = {"model_type": self.model_type, "config": config_to_dict(self.config),
                "weights_sha256": file_sha256(directory / (WEIGHTS_FILE + ".tmp"))}
        tmp = directory / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(directory / (WEIGHTS_FILE + ".tmp"), directory / WEIGHTS_FILE)
        os.replace(tmp, directory / CONFIG_FILE)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"directory must hold {CONFIG_FILE} and {WEIGHTS_FILE}; {directory / name} is missing")
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        try:
            meta = json.loads(config_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{config_path}: not valid JSON ({str(e)[:80]})") from None
        if not isinstance(meta, dict) or meta.get("model_type") != cls.model_type:
            found = meta.get("model_type") if isinstance(meta, dict) else None
            raise ValueError(f"{config_path} describes model_type {found!r}, expected {cls.model_type!r}")
        recorded = meta.get("weights_sha256")
        if recorded is not None and file_sha256(weights_path) != recorded:
            raise ValueError(f"{weights_path} does not match the SHA-256 recorded in {config_path}: the file was changed "
                             "or is corrupt")
        model = cls(config_from_dict(cls.config_class, meta.get("config"), str(config_path)))
        try:
            state = load_file(str(weights_path), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"{weights_path}: not a readable safetensors file ({str(e)[:120]})") from None
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            detail = " ".join(line.strip() for line in first[1:3]) or first[0]
            raise ValueError(f"{weights_path} does not fit the model in {config_path}: {detail[:300]}") from None
        return model
