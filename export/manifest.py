"""manifest.json of an export folder: what run_engine needs to drive the graphs.

Format version 1 (csrc/runtime/manifest.cpp reads it): ``format``, ``format_version``, ``precision``
(the graphs' type), ``onnx_dtype``, ``tensorrt_version`` (the TensorRT that built the engines, null
without engines; run_engine refuses engines of another major version),
``checkpoint`` (paths and SHA-256), ``model`` (sizes, block layout, prefix, cache length, batch and
streams), ``video``, ``sampling`` defaults, ``graphs`` (per graph: ONNX file, TensorRT engine or null,
inputs and outputs with dtype and shape, dynamic dimensions named by strings), and ``files``
(SHA-256 of every file the folder holds, manifest excepted).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FORMAT = "nbp-engines"
FORMAT_VERSION = 1


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_dir(path: str | Path) -> str:
    """One digest for a model folder: the SHA-256 of its files' names and digests, sorted."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def tensor_entry(name: str, dtype: str, shape) -> dict:
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def write_manifest(out_dir: Path, manifest: dict) -> dict:
    """Fills ``files`` with the SHA-256 of every graph and engine named in ``graphs``, writes
    ``out_dir/manifest.json`` and returns the complete manifest."""
    files = {}
    for graph in manifest["graphs"].values():
        for key in ("onnx", "engine"):
            name = graph.get(key)
            if name:
                files[name] = sha256_file(out_dir / name)
                for extra in sorted(out_dir.glob(name + ".data")):  # external weights of a large graph
                    files[extra.name] = sha256_file(extra)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files}
    path = out_dir / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    try:  # strict JSON: run_engine's parser (like JSON itself) has no NaN or Infinity
        text = json.dumps(manifest, indent=2, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"{path}: a value of the manifest is not a finite number ({e}); nothing written") from None
    tmp.write_text(text + "\n")
    tmp.replace(path)
    return manifest
