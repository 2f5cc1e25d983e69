"""Writes the graphs of an export folder with the dynamo exporter and checks each one.

``export_all`` exports prefill, step and the tokenizer decoder (and encoder for a frames prefix),
runs ``onnx.checker`` and an ONNX Runtime vs PyTorch comparison on each, and returns the manifest's
``graphs`` section plus the largest differences. The custom attention op goes through
``export.onnx_attention`` (a custom translation table); step attention is written in standard ops
by the model (``nbp_ext.models.kv_cache.cached_block_attention``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from export import onnx_attention, onnx_check
from export.generator_graphs import GeneratorSpec, PrefillGraph, StepGraph, prefill_io, step_io
from export.manifest import tensor_entry
from export.onnx_check import to_numpy
from export.precision import MANIFEST_DTYPES, TOLERANCES
from export.tokenizer_graphs import DecoderGraph, EncoderGraph

OPSET = 18


def _onnx_export(module, args, path: Path, input_names, output_names, dynamic_shapes=None, verbose=False) -> None:
    """torch.onnx.export(dynamo=True) into one self-contained .onnx file; the exporter's progress
    lines are shown only when ``verbose``."""
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    # the exporter logs one warning per torchvision op it cannot register; the graphs use none
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, args, input_names=input_names, output_names=output_names, dynamo=True, opset_version=OPSET,
            dynamic_shapes=dynamic_shapes, custom_translation_table=onnx_attention.translation_table(),
            optimize=True, verbose=False,
        )
    program.save(str(path), external_data=False)


def _export_and_check(graph, args: tuple, path: Path, ins, outs, precision: str, verbose: bool) -> float:
    """Export ``graph`` on ``args``, run onnx.checker, and compare ONNX Runtime with PyTorch; returns the
    largest difference (an error past the precision's tolerance)."""
    _onnx_export(graph, args, path, ins, outs, verbose=verbose)
    onnx_check.check_model(path)
    with torch.no_grad():
        want = {n: to_numpy(t) for n, t in zip(outs, graph(*args))}
    return onnx_check.run_and_compare(path, {n: to_numpy(t) for n, t in zip(ins, args)}, want, tol=TOLERANCES[precision])


def export_prefill(adapter, spec: GeneratorSpec, rows: int, out: Path, prefix: torch.Tensor, verbose=False,
                   precision: str = "fp32"):
    """prefill.onnx, static shapes (the prefix length is part of the model: P = 0 gives a graph without
    inputs), in the adapter's precision. Returns (manifest entry, max diff)."""
    graph = PrefillGraph(adapter, rows).eval()
    ins, outs, e_in, e_out = prefill_io(spec, rows, MANIFEST_DTYPES[precision])
    path = out / "prefill.onnx"
    diff = _export_and_check(graph, (prefix,) if ins else (), path, ins, outs, precision, verbose)
    return {"onnx": path.name, "engine": None, "inputs": e_in, "outputs": e_out}, diff


def export_step(adapter, spec: GeneratorSpec, rows: int, out: Path, example: tuple, verbose=False, name: str = "step",
                precision: str = "fp32"):
    """<name>.onnx, static shapes. ``example`` = (tokens, position, caches...); its tokens' length sets
    the graph's (a block, or one token for the hybrid start's token step). Returns (entry, max diff)."""
    graph = StepGraph(adapter).eval()
    ins, outs, e_in, e_out = step_io(spec, rows, example[0].shape[1], MANIFEST_DTYPES[precision])
    path = out / f"{name}.onnx"
    diff = _export_and_check(graph, example, path, ins, outs, precision, verbose)
    return {"onnx": path.name, "engine": None, "inputs": e_in, "outputs": e_out}, diff


def export_decoder(tokenizer, grid, out: Path, verbose=False, precision: str = "fp32"):
    """decoder.onnx, dynamic batch, in the tokenizer's precision (codes in, fp32 frames out)."""
    graph = DecoderGraph(tokenizer).eval()
    codes = torch.randint(0, tokenizer.codebook_size, (1, *grid), generator=torch.Generator().manual_seed(0))
    path = out / "decoder.onnx"
    _onnx_export(graph, (codes,), path, ["codes"], ["video"],
                 dynamic_shapes={"codes": {0: torch.export.Dim("batch", min=1, max=64)}}, verbose=verbose)
    onnx_check.check_model(path)
    with torch.no_grad():
        video = graph(codes)
    diff = onnx_check.run_and_compare(path, {"codes": codes.numpy()}, {"video": video.numpy()}, tol=TOLERANCES[precision])
    t, h, w = video.shape[2:]
    entry = {"onnx": path.name, "engine": None,
             "inputs": [tensor_entry("codes", "int64", ["batch", *grid])],
             "outputs": [tensor_entry("video", "float32", ["batch", 3, t, h, w])]}
    return entry, diff, (t, h, w)


def export_encoder(tokenizer, frames: int, height: int, width: int, out: Path, verbose=False):
    graph = EncoderGraph(tokenizer).eval()
    video = torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
    path = out / "encoder.onnx"
    _onnx_export(graph, (video,), path, ["video"], ["codes"], verbose=verbose)
    onnx_check.check_model(path)
    with torch.no_grad():
        codes = graph(video)
    # Codes are rounded latents: a latent within rounding error of a level boundary may flip.
    got = onnx_check.ort_session(path).run(["codes"], {"video": video.numpy()})[0]
    mismatch = float(np.mean(got != codes.numpy()))
    if mismatch > 1e-3:
        raise onnx_check.ParityError(f"encoder.onnx: {mismatch:.2%} of codes differ from PyTorch (allowed 0.1%)")
    entry = {"onnx": path.name, "engine": None,
             "inputs": [tensor_entry("video", "float32", [1, 3, frames, height, width])],
             "outputs": [tensor_entry("codes", "int64", [1, *codes.shape[1:]])]}
    return entry, mismatch
