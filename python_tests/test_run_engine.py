"""./run_engine (ONNX Runtime backend) on tiny Generator runs exported here: the same tokens as
nbp_ext.generate for the same seeds (class-conditional with and without guidance, unconditional,
frame prediction from a Y4M context), Y4M and PNG output, and a message plus a stated exit code for
every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from export.manifest import sha256_file
from nbp_ext.generate import SamplingConfig, generate_tokens
from run_engine_helpers import (LAUNCHER, NUM_CLASSES, ROOT, VIDEO, ensure_built, exported, ort_class_tokens, read_tokens,
                                run_engine)
import procs

# Exit codes (csrc/runtime/status.h).
USAGE, MANIFEST, ENGINE, INPUT, RUNTIME, OUTPUT = 2, 3, 4, 5, 6, 7


@pytest.fixture(scope="module")
def built():
    reason = ensure_built()
    if reason:
        pytest.fail(reason)


@pytest.fixture(scope="module")
def cls(tmp_path_factory, built):
    """A tiny class-conditional run exported with guidance, batches of two videos."""
    return exported(tmp_path_factory.getbasetemp())


def python_grids(model, cond=None, *, num_videos=None, seed=0, **sampling) -> np.ndarray:
    """nbp_ext.generate's tokens as grids (B, T', H', W') (the context first for frame prediction), with
    the exported runs' sampling (the paper's), no guidance unless given."""
    cfg = model.config
    sampling = SamplingConfig(**{**asdict(SamplingConfig.paper()), "guidance_scale": 1.0, **sampling})
    seq = generate_tokens(model, cond, num_videos=num_videos, seed=seed, sampling=sampling)
    if cfg.condition == "frames":
        seq = torch.cat([cond, seq], dim=1)
    return cfg.layout.to_grid(seq).numpy()


def equal_share(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    share = float(np.mean(got == want))
    print(f"share of tokens equal to nbp_ext.generate: {share:.2%} of {got.size}")
    return share


def test_same_tokens_as_generate_with_guidance(cls, tmp_path):
    """Three videos in batches of two (the second batch padded), guidance 2 (the manifest's default):
    every token equals nbp_ext.generate's for the same seeds."""
    out, model, _, _ = cls
    r = run_engine("--engines", out, "--class", 3, "--seed", 100, "--num-videos", 3, "--output", tmp_path / "v.y4m",
                   "--tokens-out", tmp_path / "tokens.bin")
    assert r.returncode == 0, r.stderr
    want = python_grids(model, torch.tensor([3, 3, 3]), seed=100, guidance_scale=2.0)
    assert equal_share(read_tokens(tmp_path / "tokens.bin"), want) == 1.0
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("video ")]
    assert len(lines) == 3 and all("ms/block" in ln and "frames/s" in ln for ln in lines)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (1.0, 20, 0.8), (0.0, 0, 1.0)])
def test_same_tokens_as_generate_without_guidance(cls, tmp_path, temperature, top_k, top_p):
    out, model, _, _ = cls
    r = run_engine("--engines", out, "--class", 1, "--seed", 5, "--num-videos", 2, "--temperature", temperature,
                   "--top-k", top_k, "--top-p", top_p, "--guidance-scale", 1, "--output", tmp_path / "v.y4m",
                   "--tokens-out", tmp_path / "t.bin", "--quiet")
    assert r.returncode == 0, r.stderr
    want = python_grids(model, torch.tensor([1, 1]), seed=5, temperature=temperature, top_k=top_k or 16000, top_p=top_p)
    assert equal_share(read_tokens(tmp_path / "t.bin"), want) == 1.0


def test_unconditional_model(tmp_path_factory, built, tmp_path):
    out, model, _, _ = exported(tmp_path_factory.getbasetemp(), "none", "gpt2", max_batch=1)
    r = run_engine("--engines", out, "--seed", 9, "--num-videos", 2, "--output", tmp_path / "v.y4m",
                   "--tokens-out", tmp_path / "t.bin", "--quiet")
    assert r.returncode == 0, r.stderr
    assert equal_share(read_tokens(tmp_path / "t.bin"), python_grids(model, num_videos=2, seed=9)) == 1.0
    check_fails(run_in(out, tmp_path, "--context", tmp_path / "v.y4m"), USAGE, "--context: this export is unconditional")


def test_frame_prediction_from_a_context_video(cls, tmp_path_factory, tmp_path):
    """The context frames go through encoder.onnx (the same codes as VideoTokenizer.encode); the
    generated blocks equal nbp_ext.generate's for those context codes. A Y4M context works too."""
    out, model, tokenizer, _ = exported(tmp_path_factory.getbasetemp(), "frames", "llama", max_batch=1)
    frames_n, h, w = VIDEO
    t, y, x = np.meshgrid(np.arange(frames_n), np.arange(h), np.arange(w), indexing="ij")
    rgb = np.stack([(x * 4 + t * 9) % 256, (y * 3) % 256, (x * y) % 256], axis=-1).astype(np.uint8)  # (T, H, W, 3)
    rgb.tofile(tmp_path / "context.rgb")
    r = run_engine("--engines", out, "--context", tmp_path / "context.rgb", "--seed", 4, "--num-videos", 2,
                   "--output", tmp_path / "p.y4m", "--tokens-out", tmp_path / "t.bin", "--quiet")
    assert r.returncode == 0, r.stderr
    got = read_tokens(tmp_path / "t.bin")
    video = torch.from_numpy(rgb[:1]).permute(3, 0, 1, 2).float() / 127.5 - 1  # the first frame: 1 latent frame
    codes = tokenizer.encode(torch.cat([video, video.expand(-1, frames_n - 1, -1, -1)], 1)[None])  # (1, T', H', W')
    assert equal_share(got[:, :1], codes[:, :1].numpy().repeat(2, 0)) == 1.0
    ctx, _ = model.split_codes(torch.from_numpy(got))
    assert equal_share(got, python_grids(model, ctx, seed=4)) == 1.0
    r = run_engine("--engines", out, "--context", tmp_path / "p.y4m", "--output", tmp_path / "q.y4m", "--quiet")
    assert r.returncode == 0, r.stderr


def test_y4m_decodes_with_pyav_and_matches_the_decoder(cls, tmp_path):
    out, model, tokenizer, _ = cls
    frames_n, h, w = VIDEO
    r = run_engine("--engines", out, "--class", 0, "--seed", 1, "--output", tmp_path / "clip.y4m", "--png",
                   "--tokens-out", tmp_path / "t.bin")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "clip.y4m")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == frames_n and (frames[0].height, frames[0].width) == (h, w)
    assert frames[0].to_ndarray(format="rgb24").shape == (h, w, 3)
    assert len(list(tmp_path.glob("clip_*.png"))) == frames_n
    # Luma plane = full-range BT.601 luma of the decoder's frames, up to rounding.
    y = np.stack([f.to_ndarray(format="yuv420p")[:h] for f in frames]).astype(np.float64)
    codes = torch.from_numpy(read_tokens(tmp_path / "t.bin"))
    rgb = ((tokenizer.decode(codes)[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 3, 0).double().numpy()
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    assert np.abs(y - luma).max() <= 1.0


def test_patch_tokenizer_run(tmp_path_factory, built, tmp_path):
    """A run whose tokenizer is the patch tokenizer (space /4): same tokens as nbp_ext.generate, and a
    Y4M of 9 frames of 32x32."""
    out, model, _, _ = exported(tmp_path_factory.getbasetemp(), "class", "llama", max_batch=1, tokenizer="patch")
    r = run_engine("--engines", out, "--class", 2, "--seed", 4, "--output", tmp_path / "p.y4m",
                   "--tokens-out", tmp_path / "t.bin")
    assert r.returncode == 0, r.stderr
    want = python_grids(model, torch.tensor([2]), seed=4, guidance_scale=2.0)
    assert equal_share(read_tokens(tmp_path / "t.bin"), want) == 1.0
    with av.open(str(tmp_path / "p.y4m")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 9 and (frames[0].height, frames[0].width) == (32, 32)


def test_hybrid_start(tmp_path_factory, built, tmp_path):
    """A model whose block 0 is generated token by token: three videos in batches of two with
    guidance, every token equal to nbp_ext.generate's."""
    out, model, _, _ = exported(tmp_path_factory.getbasetemp(), "class", "llama", start="hybrid")
    r = run_engine("--engines", out, "--class", 4, "--seed", 21, "--num-videos", 3, "--output", tmp_path / "h.y4m",
                   "--tokens-out", tmp_path / "t.bin")
    assert r.returncode == 0, r.stderr
    want = python_grids(model, torch.tensor([4, 4, 4]), seed=21, guidance_scale=2.0)
    assert equal_share(read_tokens(tmp_path / "t.bin"), want) == 1.0
    r = run_engine("--engines", out, "--class", 0, "--seed", 3, "--guidance-scale", 1, "--temperature", 0.7, "--top-k", 5,
                   "--output", tmp_path / "h2.y4m", "--tokens-out", tmp_path / "t2.bin", "--quiet")
    assert r.returncode == 0, r.stderr
    want = python_grids(model, torch.tensor([0]), seed=3, temperature=0.7, top_k=5)
    assert equal_share(read_tokens(tmp_path / "t2.bin"), want) == 1.0


# ---- bad input: message and exit code ---------------------------------------------------------

@pytest.fixture()
def copy(cls, tmp_path):
    """A private copy of the export folder to damage."""
    dst = tmp_path / "engines"
    shutil.copytree(cls[0], dst)
    return dst


def edit_manifest(folder: Path, fn) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    fn(m)
    (folder / "manifest.json").write_text(json.dumps(m))


def check_fails(r, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stderr.startswith("run_engine: error: "), r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def run_in(folder, tmp_path, *extra):
    return run_engine("--engines", folder, "--output", tmp_path / "v.y4m", *extra)


def test_missing_manifest(tmp_path, built):
    check_fails(run_in(tmp_path / "nowhere", tmp_path), MANIFEST, "manifest.json: cannot open")


@pytest.mark.parametrize("text, needle", [
    ("{\"format\": \"nbp-engines\",", "not valid JSON: line 1"),
    ("[1, 2]", "expected a JSON object"),
    ("", "not valid JSON"),
])
def test_malformed_manifest(copy, tmp_path, text, needle):
    (copy / "manifest.json").write_text(text)
    check_fails(run_in(copy, tmp_path), MANIFEST, "manifest.json", needle)


@pytest.mark.parametrize("edit, needle", [
    (lambda m: m["model"].pop("vocab_size"), "missing key 'model.vocab_size'"),
    (lambda m: m.__setitem__("format_version", 99), "key 'format_version'"),
    (lambda m: m["model"].__setitem__("num_blocks", 7), "key 'model.num_blocks'"),
    (lambda m: m["model"].__setitem__("block_len", 5), "key 'model.block_len'"),
    (lambda m: m["model"]["prefix"].__setitem__("kind", "text"), "key 'model.prefix.kind'"),
    (lambda m: m["model"].__setitem__("head_dim", "8"), "key 'model.head_dim': expected a number"),
    (lambda m: m["files"].pop("step.onnx"), "missing key 'files.step.onnx'"),
    (lambda m: m["model"].__setitem__("vocab_size", 1000), "graphs.prefill tensor 'logits' does not have the shape"),
    (lambda m: m["model"].__setitem__("start", "sideways"), "key 'model.start': expected \"learned\" or \"hybrid\""),
    (lambda m: m["model"].__setitem__("start", "hybrid"), "missing key 'graphs.token_step'"),
    (lambda m: (m["graphs"]["step"].__setitem__("engine", "step.engine"), m["files"].__setitem__("step.engine", "0" * 64)),
     "key 'tensorrt_version': expected the TensorRT version that built the engines"),
])
def test_inconsistent_manifest(copy, tmp_path, edit, needle):
    edit_manifest(copy, edit)
    check_fails(run_in(copy, tmp_path), MANIFEST, needle)


def test_missing_engine_file(copy, tmp_path):
    (copy / "step.onnx").unlink()
    check_fails(run_in(copy, tmp_path), ENGINE, "step.onnx: cannot open")


def test_corrupt_engine_file_fails_its_hash(copy, tmp_path):
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "decoder.onnx").write_bytes(bytes(data))
    check_fails(run_in(copy, tmp_path), ENGINE, "decoder.onnx: SHA-256", "does not match the manifest")


def test_garbage_engine_file_with_matching_hash(copy, tmp_path):
    (copy / "step.onnx").write_bytes(b"not an onnx graph" * 10)
    edit_manifest(copy, lambda m: m["files"].__setitem__("step.onnx", sha256_file(copy / "step.onnx")))
    check_fails(run_in(copy, tmp_path), ENGINE, "step.onnx: ONNX Runtime cannot load it")


def test_engine_of_another_graph(copy, tmp_path):
    shutil.copy(copy / "prefill.onnx", copy / "step.onnx")
    edit_manifest(copy, lambda m: m["files"].__setitem__("step.onnx", sha256_file(copy / "step.onnx")))
    check_fails(run_in(copy, tmp_path), ENGINE, "step.onnx: has ", "inputs but the manifest lists")


def test_engine_with_other_shapes(copy, tmp_path):
    def edit(m):
        m["graphs"]["step"]["inputs"][0]["shape"] = [2, 9]
    edit_manifest(copy, edit)
    check_fails(run_in(copy, tmp_path), ENGINE, "step.onnx: input 'tokens' has shape (4, 8), the manifest says (2, 9)")


@pytest.mark.parametrize("args, code, needle", [
    (("--class", NUM_CLASSES), USAGE, f"--class: expected a class id in [0, {NUM_CLASSES})"),
    (("--class", -1), USAGE, "--class: expected an integer >= 0"),
    (("--top-p", 0), USAGE, "--top-p: expected a number in (0, 1]"),
    (("--batch", 3), USAGE, "--batch: expected 1..2"),
    (("--seed", "x"), USAGE, "--seed: expected an integer"),
    (("--frobnicate", 1), USAGE, "--frobnicate: unknown option"),
    (("--backend", "tensorrt"), USAGE, "--backend tensorrt"),
    (("--context", "x.y4m"), USAGE, "--context: this export is class-conditional"),
])
def test_bad_options(cls, tmp_path, args, code, needle):
    check_fails(run_in(cls[0], tmp_path, *args), code, needle)


def test_onnxruntime_cuda_backend(cls, tmp_path):
    """With onnxruntime-gpu's CUDA provider and a GPU: the same tokens as the CPU backend (up to draws
    within rounding of a boundary); without them: a runtime error that says what to install."""
    out, model, _, _ = cls
    r = run_engine("--engines", out, "--class", 3, "--seed", 7, "--backend", "onnxruntime-cuda", "--output",
                   tmp_path / "v.y4m", "--tokens-out", tmp_path / "tokens.bin")
    has_provider = (ROOT / "build" / "third_party" / "onnxruntime" / "lib" / "libonnxruntime_providers_cuda.so").exists()
    if not (has_provider and torch.cuda.is_available()):
        check_fails(r, RUNTIME, "--backend onnxruntime-cuda", "CUDA execution provider", "onnxruntime-gpu")
        return
    assert r.returncode == 0, r.stderr
    assert "onnxruntime-cuda backend" in r.stdout
    want = python_grids(model, torch.tensor([3]), seed=7, guidance_scale=2.0)
    assert equal_share(read_tokens(tmp_path / "tokens.bin"), want) >= 0.99


def test_unwritable_output(cls, tmp_path):
    r = run_engine("--engines", cls[0], "--output", tmp_path / "no" / "such" / "dir" / "v.y4m", "--quiet")
    check_fails(r, OUTPUT, "v.y4m: cannot open for writing")


# ---- low-precision exports and TensorRT versions ------------------------------------------------

def test_fp16_export_same_tokens_as_its_graphs(tmp_path_factory, built, tmp_path):
    """An fp16 export (fp16 KV caches, fp32 logits): run_engine draws exactly the tokens that its
    graphs give in ONNX Runtime driven from Python with nbp_ext's sampler (the fp32 model's tokens
    differ once a draw falls within fp16 rounding of a boundary)."""
    out, _, _, manifest = exported(tmp_path_factory.getbasetemp(), precision="fp16")
    assert manifest["graphs"]["step"]["inputs"][2]["dtype"] == "float16"
    r = run_engine("--engines", out, "--class", 2, "--seed", 11, "--num-videos", 2, "--temperature", 0.9, "--top-k", 20,
                   "--top-p", 0.8, "--guidance-scale", 2, "--output", tmp_path / "v.y4m", "--tokens-out", tmp_path / "t.bin")
    assert r.returncode == 0, r.stderr
    want = ort_class_tokens(out, manifest, 2, 11, guidance_scale=2.0, temperature=0.9, top_k=20, top_p=0.8)
    assert equal_share(read_tokens(tmp_path / "t.bin"), want) == 1.0
    with av.open(str(tmp_path / "v.y4m")) as c:
        assert len(list(c.decode(video=0))) == VIDEO[0]


def test_graphs_of_two_precisions_are_refused(copy, tmp_path_factory, tmp_path):
    """An fp16 prefill beside an fp32 step: each graph matches its manifest entry, but their caches
    differ in type."""
    fp16, _, _, manifest = exported(tmp_path_factory.getbasetemp(), precision="fp16")
    shutil.copy(fp16 / "prefill.onnx", copy / "prefill.onnx")

    def edit(m):
        m["graphs"]["prefill"] = manifest["graphs"]["prefill"]
        m["files"]["prefill.onnx"] = sha256_file(copy / "prefill.onnx")
    edit_manifest(copy, edit)
    check_fails(run_in(copy, tmp_path), MANIFEST, "graphs.prefill tensor 'key_0' is float16, expected float32 "
                "(the type of the step graph's caches)")


def test_bf16_export_needs_tensorrt(tmp_path_factory, built, tmp_path):
    """ONNX Runtime's CPU provider has no bf16 kernels: a bf16 export is refused with what runs it."""
    out, _, _, _ = exported(tmp_path_factory.getbasetemp(), precision="bf16")
    check_fails(run_in(out, tmp_path, "--backend", "onnxruntime"), ENGINE, "prefill.onnx: ONNX Runtime cannot load it",
                "no bfloat16 kernels: run a bf16 export with --backend tensorrt")


@pytest.fixture(scope="module")
def version_check(tmp_path_factory):
    """tests/cpp/trt_version_check: run_engine's manifest loading and TensorRT version check, built
    without TensorRT."""
    exe = tmp_path_factory.mktemp("cpp") / "trt_version_check"
    rt = ROOT / "csrc" / "runtime"
    sources = [ROOT / "python_tests" / "cpp" / "trt_version_check.cpp"] + [rt / f for f in
                                                                           ("manifest.cpp", "json.cpp", "sha256.cpp", "trt_version.cpp")]
    r = procs.run(["g++", "-std=c++17", "-O0", "-Wall", "-Wextra", "-Werror", f"-I{rt}", *map(str, sources), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


@pytest.mark.parametrize("built_with, running, code, needle", [
    ("10.16.1.11", "11.4.0", ENGINE, "the engines were built with TensorRT 10.16.1.11, this run_engine runs TensorRT 11.4.0, "
                                     "which cannot load them; rebuild them with python export/to_trt.py --precision fp32"),
    ("11.4.0.106", "10.16.1", ENGINE, "built with TensorRT 11.4.0.106, this run_engine runs TensorRT 10.16.1"),
    ("11.4.0.106", "11.1.0", 0, ""),
    ("10.0.1.6", "10.16.1", 0, ""),
    ("garbage", "11.4.0", ENGINE, "built with TensorRT garbage"),
])
def test_engines_of_another_tensorrt_major_are_refused(copy, version_check, built_with, running, code, needle):
    def edit(m):
        m["graphs"]["step"]["engine"] = "step.engine"
        m["files"]["step.engine"] = "0" * 64
        m["tensorrt_version"] = built_with
    edit_manifest(copy, edit)
    r = procs.run([str(version_check), str(copy), running], capture_output=True, text=True)
    assert r.returncode == code, r.stderr
    assert needle in r.stderr


@pytest.mark.parametrize("stage", ["the block-step graph", "loading the engines"])
def test_a_stuck_backend_ends_within_the_step_timeout(cls, tmp_path, stage):
    """A graph run (or the engine loading) that never returns, as a hung backend's would, ends the
    program with one line and exit code 6 within --step-timeout."""
    out, *_ = cls
    env = {**os.environ, "NBP_RUN_ENGINE_STALL": stage}
    r = procs.run([str(LAUNCHER), "--engines", str(out), "--output", str(tmp_path / "v.y4m"), "--step-timeout", "2",
                   "--quiet"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 6, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (f"run_engine: error: {stage} has not finished in 2 s (--step-timeout 2): "
                                                 "the backend or device is stuck"), r.stderr
    bad = run_engine("--engines", out, "--output", tmp_path / "w.y4m", "--step-timeout", "0.5")
    assert bad.returncode == 2 and "--step-timeout: expected seconds >= 1 and <= 86400, got '0.5'" in bad.stderr
