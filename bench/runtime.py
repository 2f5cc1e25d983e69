"""run_engine (ONNX Runtime, CPU) against Python ``nbp_ext.generate.generate()`` for the same
Generator, videos and seeds: ms per block and frames per second (block loop + tokenizer decoder).

    python bench/runtime.py [--size tiny] [--videos 2] [--threads 2] [--guidance-scale 2.0]

The generator is a randomly initialised ``Generator.from_name(--size)`` (class-conditional,
64000-code vocabulary, 5x16x16 latent grid of 17x128x128 clips, blocks of one latent row: 80 steps),
saved as a run of ``python -m nbp_ext.train`` and exported with export/to_trt.py; the tokenizer is
the tiny one. Sampling: the paper's defaults (top-k 16000, top-p 0.9) with guidance (2 streams).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from common import machine, print_table  # noqa: E402

from export import to_trt  # noqa: E402
from export.manifest import sha256_file  # noqa: E402
from nbp_ext.generate import SamplingConfig, generate  # noqa: E402
from nbp_ext.models import Generator, VideoTokenizer  # noqa: E402


def make_run(runs: Path, size: str, grid, block) -> tuple[Generator, VideoTokenizer]:
    torch.manual_seed(0)
    tokenizer = VideoTokenizer.from_name("tiny").eval()
    model = Generator.from_name(size, vocab_size=tokenizer.codebook_size, grid=grid, block=block,
                                     num_classes=101).eval()
    tok_dir = runs / "tokenizer-bench" / "tokenizer"
    tokenizer.save_pretrained(tok_dir)
    model.save_pretrained(runs / "generator-bench" / "generator")
    (runs / "generator-bench" / "generator.json").write_text(
        json.dumps({"tokenizer": str(tok_dir), "tokenizer_sha256": sha256_file(tok_dir / "model.safetensors"),
                    "sampling": asdict(SamplingConfig.paper())}))
    return model, tokenizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="tiny", choices=list(Generator.sizes), help="generator size (default: tiny)")
    p.add_argument("--videos", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--guidance-scale", type=float, default=2.0, help="guidance scale; 1: off (one stream)")
    p.add_argument("--grid", type=int, nargs=3, default=(5, 16, 16))
    p.add_argument("--block", type=int, nargs=3, default=(1, 1, 16))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    guided = args.guidance_scale != 1.0
    with tempfile.TemporaryDirectory() as tmp:
        runs, out = Path(tmp) / "runs", Path(tmp) / "engines"
        model, tokenizer = make_run(runs, args.size, tuple(args.grid), tuple(args.block))
        cfg = model.config
        frames = 1 + 4 * (cfg.grid[0] - 1)
        export_args = ["--runs", str(runs), "--output", str(out), "--no-engines"] + ([] if guided else ["--no-unconditional-stream"])
        if to_trt.main(export_args) != 0:
            sys.exit("bench/runtime.py: export failed")
        subprocess.run([str(ROOT / "run_engine"), "--help"], check=True, capture_output=True)  # build outside the timing
        t0 = time.perf_counter()
        r = subprocess.run([str(ROOT / "run_engine"), "--engines", str(out), "--num-videos", str(args.videos),
                            "--threads", str(args.threads), "--guidance-scale", str(args.guidance_scale),
                            "--output", str(Path(tmp) / "v.y4m")], check=True, capture_output=True, text=True)
        engine_total = time.perf_counter() - t0
    per_block = [float(x) for x in re.findall(r"([\d.]+) ms/block", r.stdout)]
    fps = [float(x) for x in re.findall(r"([\d.]+) frames/s", r.stdout)]
    engine_ms, engine_fps = sum(per_block) / len(per_block), sum(fps) / len(fps)

    sampling = SamplingConfig(top_k=16000, top_p=0.9, guidance_scale=args.guidance_scale)
    py_block, py_fps = [], []
    with torch.no_grad():
        generate(model, torch.tensor([0]), seed=0, sampling=sampling)  # warm-up
        for i in range(args.videos):  # one video per run, as run_engine with its export's batch of 1
            t0 = time.perf_counter()
            codes = generate(model, torch.tensor([0]), seed=i, sampling=sampling)
            gen = time.perf_counter() - t0
            tokenizer.decode(codes)
            total = time.perf_counter() - t0
            py_block.append(gen * 1000 / cfg.num_steps)
            py_fps.append(frames / total)
    py_ms, py_f = sum(py_block) / len(py_block), sum(py_fps) / len(py_fps)
    print(machine())
    print(f"Generator {args.size}: {cfg.n_layer} layers, width {cfg.d_model}, {model.num_params() / 1e6:.1f}M "
          f"parameters, vocab {cfg.vocab_size}, grid {cfg.grid}, {cfg.num_steps} blocks of {cfg.block_len}, guidance "
          f"{args.guidance_scale} ({2 if guided else 1} streams), {args.threads} threads; run_engine process wall "
          f"{engine_total:.2f} s for {args.videos} videos (includes loading)")
    print_table("block loop + decoder, per video (mean)", ["", "ms/block", "frames/s", "speed-up"], [
        ["PyTorch eager (nbp_ext.generate.generate)", f"{py_ms:.2f}", f"{py_f:.2f}", "1.00x"],
        ["run_engine (ONNX Runtime CPU)", f"{engine_ms:.2f}", f"{engine_fps:.2f}", f"{py_ms / engine_ms:.2f}x"],
    ])


if __name__ == "__main__":
    main()
