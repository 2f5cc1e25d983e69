"""One export folder from a generator adapter and a tokenizer: graphs, checks, engines, manifest."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from export import graph_export, tensorrt_build
from export.generator_graphs import GeneratorSpec
from export.manifest import sha256_dir, write_manifest
from export.precision import DECODER_PRECISION, MANIFEST_DTYPES, TORCH_DTYPES, check as check_precision


def _example_prefix(spec: GeneratorSpec, max_batch: int, unconditional_stream: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if spec.prefix_kind == "class":
        cond = torch.randint(0, spec.num_classes, (max_batch, 1), generator=g).expand(max_batch, spec.prefix_len)
        rows = [cond, torch.full_like(cond, spec.null_class)] if unconditional_stream else [cond]
    elif spec.prefix_kind == "frames":
        ctx = torch.randint(0, spec.vocab_size, (max_batch, spec.prefix_len), generator=g)
        rows = [ctx, ctx] if unconditional_stream else [ctx]
    else:  # unconditional: no prefix
        rows = [torch.zeros(max_batch, 0, dtype=torch.int64)]
    return torch.cat(rows).contiguous()


@torch.no_grad()
def _example_step(adapter, spec: GeneratorSpec, prefix: torch.Tensor, tokens: int, position: int) -> tuple:
    """Step inputs as in a real loop: caches (in the keys' type) filled by the prefill, ``tokens`` new
    tokens at ``position``."""
    _, keys, values = adapter.prefill(prefix)
    rows, N = prefix.shape[0], spec.max_cache_len
    caches = []
    for k, v in zip(keys, values):
        for t in (k, v):
            c = torch.zeros(rows, spec.kv_heads, N, spec.head_dim, dtype=t.dtype)
            c[:, :, : t.shape[2]] = t
            caches.append(c)
    new = torch.randint(0, spec.vocab_size, (rows, tokens), generator=torch.Generator().manual_seed(1))
    return (new, torch.tensor([position], dtype=torch.int64), *caches)


def export_folder(adapter, spec: GeneratorSpec, tokenizer, out_dir: str | Path, *, video: tuple[int, int, int],
                  max_batch: int = 1, unconditional_stream: bool = True, precision: str = "fp32", fps: int = 8,
                  sampling: dict, checkpoint: dict | None = None, build_engines: bool = True,
                  verbose: bool = False, log=print) -> dict:
    """Writes prefill.onnx, step.onnx, decoder.onnx (encoder.onnx for a frames prefix, token_step.onnx
    for a hybrid start), engines where
    TensorRT can build them, and manifest.json into ``out_dir``; returns the manifest.

    ``video`` is (frames, height, width) of a clip; ``checkpoint`` maps names to model folders whose
    SHA-256 goes into the manifest. ``precision`` is the graphs' (and so the engines') type: the
    generator and the decoder are exported from copies in that type (export/precision.py says what
    stays fp32), each checked against PyTorch in the same type.
    """
    check_precision(precision)
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if unconditional_stream and spec.prefix_kind == "class" and spec.null_class < 0:
        raise ValueError("the unconditional stream for guidance needs a null class (the model has none): export with --no-unconditional-stream")
    if unconditional_stream and spec.prefix_kind != "class":
        raise ValueError(f"the unconditional stream for guidance needs a null class, which a {spec.prefix_kind!r} prefix does not have: "
                         "export with --no-unconditional-stream")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = max_batch * (2 if unconditional_stream else 1)
    frames, height, width = video

    encoder_tokenizer = tokenizer  # fp32 always: its output is rounded to codes
    if precision != "fp32":
        adapter = copy.deepcopy(adapter).to(TORCH_DTYPES[precision])
    decoder_precision = DECODER_PRECISION[precision]
    if decoder_precision != "fp32":
        tokenizer = copy.deepcopy(tokenizer).to(TORCH_DTYPES[decoder_precision])
    prefix = _example_prefix(spec, max_batch, unconditional_stream)
    graphs, diffs = {}, {}
    graphs["prefill"], diffs["prefill"] = graph_export.export_prefill(adapter, spec, rows, out, prefix, verbose, precision)
    log(f"prefill.onnx: ONNX Runtime vs PyTorch max |diff| {diffs['prefill']:.2e}")
    example = _example_step(adapter, spec, prefix, spec.block_len, spec.first_block_position)
    graphs["step"], diffs["step"] = graph_export.export_step(adapter, spec, rows, out, example, verbose,
                                                             precision=precision)
    log(f"step.onnx: ONNX Runtime vs PyTorch max |diff| {diffs['step']:.2e}")
    if spec.start == "hybrid":  # block 0 token by token: one-token steps at P + 1 .. P + L - 1
        example = _example_step(adapter, spec, prefix, 1, spec.prefill_len)
        graphs["token_step"], diffs["token_step"] = graph_export.export_step(adapter, spec, rows, out, example, verbose,
                                                                             name="token_step", precision=precision)
        log(f"token_step.onnx: ONNX Runtime vs PyTorch max |diff| {diffs['token_step']:.2e}")
    graphs["decoder"], diffs["decoder"], decoded = graph_export.export_decoder(tokenizer, spec.latent_grid, out, verbose,
                                                                               decoder_precision)
    log(f"decoder.onnx: ONNX Runtime vs PyTorch max |diff| {diffs['decoder']:.2e}")
    if decoded != (frames, height, width):
        raise ValueError(f"the tokenizer decodes {spec.latent_grid} to {decoded} frames x height x width, expected {video}")
    if spec.prefix_kind == "frames":
        ctx_frames = 1 + 4 * (spec.context_frames - 1)
        graphs["encoder"], diffs["encoder"] = graph_export.export_encoder(encoder_tokenizer, ctx_frames, height, width, out,
                                                                          verbose)
        log(f"encoder.onnx: share of codes differing from PyTorch {diffs['encoder']:.2e}")

    timings, trt_version = {}, None
    reason = tensorrt_build.why_unavailable() if build_engines else "TensorRT engines not built: disabled by --no-engines"
    if reason:
        log(reason)
    else:
        trt_version = tensorrt_build.version()
        for name, entry in graphs.items():
            engine = f"{name}.engine"
            # A dynamic size (the decoder's batch) gets a profile from 1 to the export's max batch.
            profiles = {t["name"]: ([1 if isinstance(d, str) else d for d in t["shape"]],) * 2
                        + ([max_batch if isinstance(d, str) else d for d in t["shape"]],)
                        for t in entry["inputs"] if any(isinstance(d, str) for d in t["shape"])}
            seconds = tensorrt_build.build_engine(out / entry["onnx"], out / engine, profiles or None)
            shapes = {t["name"]: [d if isinstance(d, int) else 1 for d in t["shape"]] for t in entry["inputs"]}
            timings[name] = tensorrt_build.time_engine(out / engine, shapes)
            entry["engine"] = engine
            log(f"{engine}: built in {seconds:.1f} s, {timings[name]:.3f} ms per run ({precision}, TensorRT {trt_version})")

    model = {
        "vocab_size": spec.vocab_size, "num_layers": spec.num_layers, "kv_heads": spec.kv_heads,
        "head_dim": spec.head_dim, "latent_grid": list(spec.latent_grid), "block_shape": list(spec.block_shape),
        "block_len": spec.block_len, "num_blocks": spec.num_blocks, "max_cache_len": spec.max_cache_len,
        "first_block_position": spec.first_block_position, "start": spec.start,
        "prefix": ({"kind": "class", "length": spec.prefix_len, "num_classes": spec.num_classes, "null_class": spec.null_class}
                   if spec.prefix_kind == "class" else
                   {"kind": "frames", "length": spec.prefix_len, "context_frames": spec.context_frames}
                   if spec.prefix_kind == "frames" else {"kind": "none", "length": 0}),
        "graph_batch": rows, "max_batch": max_batch, "unconditional_stream": unconditional_stream,
        "steps": spec.num_steps,
    }
    manifest = {
        "precision": precision,
        "onnx_dtype": MANIFEST_DTYPES[precision],
        "tensorrt_version": trt_version,
        "checkpoint": {name: {"path": str(p), "sha256": sha256_dir(p)} for name, p in (checkpoint or {}).items()},
        "model": model,
        "video": {"frames": frames, "height": height, "width": width, "fps": fps},
        "sampling": sampling,
        "graphs": graphs,
        "parity": {"max_abs_diff": diffs, "tensorrt_ms": timings},
    }
    manifest = write_manifest(out, manifest)
    log(f"wrote {out / 'manifest.json'}")
    return manifest
