"""Shared by the export and run_engine tests: tiny runs of ``python -m nbp_ext.train`` made here (a
real Generator and VideoTokenizer saved as a training run saves them), their exports (built once
per test session), and running ./run_engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import procs

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "run_engine"

GRID, BLOCK, NUM_CLASSES = (3, 8, 8), (1, 1, 8), 5
FSQ_LEVELS = (7, 7, 2)  # 98 codes: an awkward vocabulary
VIDEO = (9, 64, 64)  # what the tokenizer decodes GRID to


def make_models(condition: str = "class", style: str = "llama", seed: int = 0, tokenizer: str = "tiny",
                start: str = "learned", gelu: str = "tanh"):
    """A generator and a tokenizer: the tiny causal CNN (GRID -> VIDEO), or (``"patch"``) a patch tokenizer
    with 4x4 patches (GRID -> 9x32x32: a spatial factor other than the CNN's 8) whose weights are all
    random, corrections included."""
    from nbp_ext.models import Generator, VideoTokenizer

    torch.manual_seed(seed)
    if tokenizer == "patch":
        tokenizer = VideoTokenizer.from_name("patch", fsq_levels=FSQ_LEVELS, patch_size=4, patch_width=16)
        for p in tokenizer.parameters():
            torch.nn.init.normal_(p, std=0.05)
        tokenizer.eval()
    else:
        tokenizer = VideoTokenizer.from_name("tiny", fsq_levels=FSQ_LEVELS).eval()
    model = Generator.from_name("tiny", vocab_size=tokenizer.codebook_size, grid=GRID, block=BLOCK,
                                     num_classes=NUM_CLASSES, context_frames=1, n_layer=2, d_model=64, n_kv_head=2,
                                     condition=condition, style=style, start=start, gelu=gelu).eval()
    return model, tokenizer


def make_run(runs: Path, condition: str = "class", style: str = "llama", seed: int = 0, stamp: str = "20260101-000000",
             tokenizer: str = "tiny", start: str = "learned", gelu: str = "tanh"):
    """runs/tokenizer-<stamp>/tokenizer and runs/generator-<stamp>/{generator/, generator.json} as training writes them."""
    from export.manifest import sha256_file
    from nbp_ext.generate import SamplingConfig

    model, tokenizer = make_models(condition, style, seed, tokenizer, start, gelu)
    tok_dir = runs / f"tokenizer-{stamp}" / "tokenizer"
    tokenizer.save_pretrained(tok_dir)
    run = runs / f"generator-{stamp}"
    model.save_pretrained(run / "generator")
    (run / "generator.json").write_text(json.dumps({
        "tokens": str(tok_dir.parent / "tokens"), "tokenizer": str(tok_dir),
        "tokenizer_sha256": sha256_file(tok_dir / "model.safetensors"),
        "sampling": asdict(SamplingConfig.paper())}))  # the paper's: top-k and top-p both cut
    return run, model, tokenizer


_EXPORTS: dict = {}


def exported(tmp_root: Path, condition: str = "class", style: str = "llama", max_batch: int = 2, tokenizer: str = "tiny",
             start: str = "learned", precision: str = "fp32", gelu: str = "tanh"):
    """(export folder, model, tokenizer, manifest) of a tiny run exported with export/to_trt.py's main
    (default run: the newest under runs/) in ``precision``; built once per test session."""
    key = ((condition, style, max_batch, tokenizer, start) + ((precision,) if precision != "fp32" else ())
           + ((gelu,) if gelu != "tanh" else ()))
    if key not in _EXPORTS:
        from export import to_trt
        from nbp_ext.models import Generator, VideoTokenizer

        base = tmp_root / "-".join(map(str, key))
        runs = base / "runs"
        old, _, _ = make_run(runs, condition, style, seed=1, stamp="20250101-000000", tokenizer=tokenizer, start=start,
                             gelu=gelu)
        run, _, _ = make_run(runs, condition, style, seed=0, tokenizer=tokenizer, start=start, gelu=gelu)
        past = time.time() - 3600
        os.utime(old, (past, past))  # the newest run is the one to export
        out = base / "engines"
        code = to_trt.main(["--runs", str(runs), "--output", str(out), "--max-batch", str(max_batch), "--no-engines",
                            "--precision", precision])
        assert code == 0, "export/to_trt.py failed"
        model = Generator.from_pretrained(run / "generator").eval()
        tokenizer = VideoTokenizer.from_pretrained(run.parent / "tokenizer-20260101-000000" / "tokenizer").eval()
        _EXPORTS[key] = (out, model, tokenizer, json.loads((out / "manifest.json").read_text()))
    return _EXPORTS[key]


def ensure_built() -> str | None:
    """None when ./run_engine runs, else the reason (its output)."""
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)}  # whose onnxruntime wheel to use
    r = procs.run([str(LAUNCHER), "--help"], capture_output=True, text=True, timeout=900, env=env)
    return None if r.returncode == 0 else f"./run_engine --help failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"


def run_engine(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    return procs.run([str(LAUNCHER), "--threads", "2", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def read_tokens(path, grid=GRID) -> np.ndarray:
    return np.fromfile(path, dtype=np.int64).reshape(-1, *grid)


def ort_class_tokens(out: Path, manifest: dict, class_id: int, seed: int, guidance_scale: float, temperature: float,
                     top_k: int, top_p: float) -> np.ndarray:
    """The token grids (max_batch, T', H', W') that run_engine draws from a class-conditional export
    with guidance, one video per seed from ``seed`` on, driven from Python: the export's own graphs
    in ONNX Runtime (its KV caches in the graphs' type) and nbp_ext's sampler, as csrc/runtime/session.cpp does."""
    from export import onnx_check
    from nbp_ext.models.layout import BlockLayout
    from nbp_ext.ops import sample_block

    m = manifest["model"]
    B, L, N, first = m["max_batch"], m["block_len"], m["max_cache_len"], m["first_block_position"]
    prefill, step = onnx_check.ort_session(out / "prefill.onnx"), onnx_check.ort_session(out / "step.onnx")
    prefix = np.array([[class_id]] * B + [[m["prefix"]["null_class"]]] * B, np.int64)
    logits, *kv = prefill.run(None, {"prefix": prefix})
    caches = [np.zeros((*t.shape[:2], N, t.shape[3]), t.dtype) for t in kv]
    for c, t in zip(caches, kv):
        c[:, :, : t.shape[2]] = t
    seeds, blocks = torch.arange(seed, seed + B), []
    for k in range(m["num_blocks"]):
        if k:
            pos = first + (k - 1) * L
            feeds = {"tokens": np.concatenate([blocks[-1].numpy()] * 2), "position": np.array([pos], np.int64)}
            feeds.update({f"past_{kind}_{i}": caches[2 * i + j] for i in range(m["num_layers"])
                          for j, kind in enumerate(("key", "value"))})
            logits, *kv = step.run(None, feeds)
            for c, t in zip(caches, kv):
                c[:, :, pos : pos + L] = t
        lg = torch.from_numpy(logits)
        blocks.append(sample_block(lg[:B], seeds, k, temperature, top_k, top_p, guidance_scale, lg[B:]))
    layout = BlockLayout(tuple(m["latent_grid"]), tuple(m["block_shape"]))
    return layout.to_grid(torch.cat(blocks, dim=1)).numpy()
