"""Save and load a model as ``config.json`` (its dataclass config) + ``model.safetensors``."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def config_to_dict(config: Any) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(config_cls: type, data: dict) -> Any:
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"{CONFIG_FILE} has keys that {config_cls.__name__} does not know: {unknown}")
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class PretrainedMixin:
    """For an ``nn.Module`` with a ``config`` attribute and a class attribute ``config_class``."""

    config_class: type
    model_type: str

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model_type": self.model_type, "config": config_to_dict(self.config)}
        tmp = directory / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / (WEIGHTS_FILE + ".tmp")), metadata={"model_type": self.model_type})
        os.replace(directory / (WEIGHTS_FILE + ".tmp"), directory / WEIGHTS_FILE)
        os.replace(tmp, directory / CONFIG_FILE)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"directory must hold {CONFIG_FILE} and {WEIGHTS_FILE}; {directory / name} is missing")
        meta = json.loads((directory / CONFIG_FILE).read_text())
        if meta.get("model_type") != cls.model_type:
            raise ValueError(f"{directory / CONFIG_FILE} describes model_type {meta.get('model_type')!r}, expected {cls.model_type!r}")
        model = cls(config_from_dict(cls.config_class, meta["config"]))
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE), device=str(map_location)))
        return model
