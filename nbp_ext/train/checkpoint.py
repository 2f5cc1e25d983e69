"""Sharded, crash-safe training checkpoints on ``torch.distributed.checkpoint`` (DCP), without pickle.

A checkpoint is a folder ``run/checkpoints/step_NNNNNNNN/`` holding

- the model and optimizer tensors written by DCP's safetensors storage: every process writes its
  own shard file (sharded FSDP parameters, or its share of the replicated DDP ones), and loading
  reshards them onto any number of processes and either parallelism;
- ``train_state.json``: step, data position, schedule, optimizer hyperparameters, the run's config;
- ``rng/rank_NNNNN.json``: every process's random number generator states;
- ``complete.json``: written by the main process last, once every process has finished writing,
  with the size of every file. Only a folder with it counts: a crash during a save leaves the
  previous checkpoint as the latest, and the unfinished folder is removed on the next start.

Nothing is unpickled when loading: the tensors come from safetensors files, the rest from JSON.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader, HuggingFaceStorageWriter
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from .distributed import DistInfo, barrier

CHECKPOINTS = "checkpoints"  # run_dir/checkpoints/step_NNNNNNNN
COMPLETE = "complete.json"
TRAIN_STATE = "train_state.json"
RNG_DIR = "rng"
LEGACY_CHECKPOINT = "checkpoint.pt"  # the single-file pickle format of earlier versions


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the folder and the problem."""


@contextlib.contextmanager
def _quiet_single_process():
    """DCP warns on every single-process save and load that it assumes one process: that is meant."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is (disabled, )?unavailable or uninitialized")
        yield


# ---- random number generators ---------------------------------------------------------------
def _bytes_tensor(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _tensor_bytes(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state() -> dict:
    """This process's generator states (torch, CUDA, numpy, Python) as JSON-ready values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": _bytes_tensor(torch.get_rng_state()),
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
             "python": [version, list(internal), gauss_next]}
    if torch.cuda.is_available():
        state["cuda"] = [_bytes_tensor(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(_tensor_bytes(state["torch"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        states = [_tensor_bytes(s) for s in state["cuda"]]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


# ---- what a checkpoint holds ----------------------------------------------------------------
@dataclass
class Part:
    """A trained module and its optimizer (the generator; the tokenizer and its discriminator)."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer


def _tensor_state(parts: dict[str, Part]) -> tuple[dict, dict]:
    """DCP state (tensors only) and the optimizers' hyperparameters (JSON) of every part."""
    tensors, groups = {}, {}
    for name, part in parts.items():
        model_sd, optim_sd = get_state_dict(part.module, part.optimizer)
        tensors[name] = model_sd
        tensors[f"{name}_optimizer"] = optim_sd["state"]
        groups[name] = optim_sd["param_groups"]
    return tensors, groups


def _json_ready(value):
    if isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:08d}"


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The finished checkpoint folders of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if (p / COMPLETE).is_file())


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest finished checkpoint of ``run_dir``, or a CheckpointError that says what is there."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run folder")
    found = complete_checkpoints(run_dir)
    if found:
        return found[-1]
    if (run_dir / LEGACY_CHECKPOINT).is_file():
        raise CheckpointError(f"--resume {run_dir}: {LEGACY_CHECKPOINT} is the single-file format of earlier versions, "
                              "which is not loaded since it would unpickle it; start a new run (its weights are in "
                              "the run's model folder)")
    raise CheckpointError(f"--resume {run_dir}: no finished checkpoint in {run_dir / CHECKPOINTS}")


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent}: {what} {path.name} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a valid {what} ({e.__class__.__name__}: {str(e)[:80]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a valid {what} (a JSON object expected)")
    return data


def verify_files(folder: Path) -> dict:
    """The completion record of ``folder``, after checking that every file it lists is there, whole."""
    record = read_json(folder / COMPLETE, "completion record")
    files = record.get("files")
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{folder / COMPLETE}: lists no files")
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name} (a shard of another process?); "
                                  "resume from an earlier checkpoint by removing this folder")
        if path.stat().st_size != size:
            raise CheckpointError(f"checkpoint {folder}: {name} has {path.stat().st_size} bytes, {size} were written")
    return record


def remove_unfinished(run_dir: Path) -> list[Path]:
    """Delete checkpoint folders that a crash left without a completion record (main process only)."""
    root = Path(run_dir) / CHECKPOINTS
    removed = []
    if root.is_dir():
        for p in sorted(root.glob("step_*")):
            if p.is_dir() and not (p / COMPLETE).is_file():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


# ---- saving ---------------------------------------------------------------------------------
@dataclass
class Checkpointer:
    """Saves checkpoints of a run; ``keep`` finished ones are kept; ``async_save`` writes the tensors
    in a background thread (``dcp.async_save``) while training goes on."""

    run_dir: Path
    info: DistInfo
    keep: int = 2
    async_save: bool = False
    _pending: tuple | None = field(default=None, repr=False)
    _group: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.keep < 1:
            raise ValueError(f"--keep-checkpoints must be >= 1, got {self.keep}")
        if self.async_save and self.info.enabled:
            # the background writes get their own process group, so they never interleave with the
            # training step's collectives
            self._group = dist.new_group(backend="gloo")

    def save(self, step: int, parts: dict[str, Part], train_state: dict) -> Path:
        """Write a checkpoint of ``step`` (every process calls this)."""
        self.finish()
        folder = step_dir(self.run_dir, step)
        if self.info.is_main and folder.exists():  # an unfinished one of an earlier attempt
            shutil.rmtree(folder)
        barrier(self.info)
        (folder / RNG_DIR).mkdir(parents=True, exist_ok=True)
        tensors, groups = _tensor_state(parts)
        (folder / RNG_DIR / f"rank_{self.info.rank:05d}.json").write_text(json.dumps(rng_state()))
        if self.info.is_main:
            state = {**train_state, "step": step, "world_size": self.info.world_size,
                     "param_groups": _json_ready(groups)}
            (folder / TRAIN_STATE).write_text(json.dumps(state, indent=1) + "\n")
        writer = HuggingFaceStorageWriter(str(folder), save_distributed=self.info.enabled)
        with _quiet_single_process():
            self._write(folder, tensors, writer)
        return folder

    def _write(self, folder: Path, tensors: dict, writer) -> None:
        if self.async_save:
            future = dcp.async_save(tensors, storage_writer=writer, process_group=self._group, no_dist=not self.info.enabled)
            self._pending = (folder, future)
        else:
            dcp.save(tensors, storage_writer=writer, no_dist=not self.info.enabled)
            self._complete(folder)

    def finish(self) -> None:
        """Wait for a background save and mark it finished (every process calls this)."""
        if self._pending is not None:
            folder, future = self._pending
            self._pending = None
            future.result()
            self._complete(folder)

    def _complete(self, folder: Path) -> None:
        barrier(self.info)  # every process has written its files
        if self.info.is_main:
            files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
                     if p.is_file() and p.name != COMPLETE}
            tmp = folder / (COMPLETE + ".tmp")
            tmp.write_text(json.dumps({"step": int(folder.name.split("_")[1]), "files": files}, indent=1) + "\n")
            os.replace(tmp, folder / COMPLETE)
            for old in complete_checkpoints(self.run_dir)[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)


# ---- loading --------------------------------------------------------------------------------
def read_train_state(folder: Path) -> dict:
    """The JSON part of a finished checkpoint, after checking its files."""
    verify_files(folder)
    return read_json(folder / TRAIN_STATE, "training state")


def load_parts(folder: Path, parts: dict[str, Part], train_state: dict, info: DistInfo) -> None:
    """Load model and optimizer tensors into ``parts`` (any world size, ddp or fsdp) and this process's
    generator states (a process the checkpoint had no states for keeps its seeded ones)."""
    tensors, _ = _tensor_state(parts)
    try:
        with _quiet_single_process():
            dcp.load(tensors, storage_reader=HuggingFaceStorageReader(str(folder)), no_dist=not info.enabled)
    except Exception as e:  # DCP reports a mismatch as one of several exception types
        first = (str(e).strip().splitlines() or [""])[-1][:300]
        raise CheckpointError(f"checkpoint {folder} does not fit this model ({e.__class__.__name__}: {first})") from None
    groups = train_state.get("param_groups", {})
    for name, part in parts.items():
        saved = groups.get(name)
        if saved is None:
            raise CheckpointError(f"checkpoint {folder} has no optimizer settings for {name!r}")
        set_state_dict(part.module, part.optimizer, model_state_dict=tensors[name],
                       optim_state_dict={"state": tensors[f"{name}_optimizer"], "param_groups": saved})
    rng = folder / RNG_DIR / f"rank_{info.rank:05d}.json"
    if rng.is_file():
        set_rng_state(read_json(rng, "generator state"))

