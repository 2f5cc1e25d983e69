"""Tokenizer numbers on this machine: encode/decode throughput and a trained run's held-out quality.

    python bench/tokenizer.py [--run runs/tokenizer-...] [--sizes tiny,patch,paper] [--batch 4] [--device cpu]

Throughput is clips/s at 17x128x128 (the paper's clip) for each named size; the paper size runs
one clip. Quality is the run's tokenizer on its own held-out clips, against two named baselines
computed on the same clips: ``clip-mean`` (every pixel = the clip's mean colour) and
``block-mean`` (the mean of each 4xfxf block, f the tokenizer's spatial factor: its latent grid kept
in full precision, one colour per code).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nbp_ext.data import DataConfig, build_dataset
from nbp_ext.models import VideoTokenizer
from nbp_ext.runs import latest_run_dir
from nbp_ext.train.video_metrics import psnr, ssim


def throughput(size: str, batch: int, device: torch.device, repeats: int) -> dict:
    torch.manual_seed(0)
    model = VideoTokenizer.from_name(size).to(device).eval()
    video = torch.rand(batch, 3, 17, 128, 128, device=device) * 2 - 1

    def timed(fn):
        fn()  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(repeats):
            out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out, (time.perf_counter() - t) / repeats

    codes, t_enc = timed(lambda: model.encode(video))
    _, t_dec = timed(lambda: model.decode(codes))
    params = sum(p.numel() for p in model.parameters())
    return {"size": size, "params_M": params / 1e6, "batch": batch, "encode_clips_s": batch / t_enc,
            "decode_clips_s": batch / t_dec}


def block_mean(video: torch.Tensor, f: int) -> torch.Tensor:
    """Mean of every 4xfxf block (first frame alone), broadcast back: (B, 3, T, H, W)."""
    first = F.avg_pool3d(video[:, :, :1], (1, f, f))
    rest = F.avg_pool3d(video[:, :, 1:], (4, f, f))
    grid = torch.cat([first, rest.repeat_interleave(4, dim=2)], dim=2)
    return F.interpolate(grid, scale_factor=(1, f, f), mode="nearest")


@torch.no_grad()
def quality(run: Path, clips: int, device: torch.device) -> dict:
    model = VideoTokenizer.from_pretrained(run / "tokenizer").to(device).eval()
    data = DataConfig(**json.loads((run / "args.json").read_text())["data"])
    val = build_dataset(data, "val")
    video = torch.stack([val[i]["video"] for i in range(min(clips, len(val)))]).to(device)
    recon = torch.cat([model.decode(model.encode(v[None])) for v in video])
    baselines = {"clip-mean": video.mean(dim=(2, 3, 4), keepdim=True).expand_as(video), "block-mean": block_mean(video, model.config.spatial_factor)}
    out = {"run": str(run), "clips": video.shape[0], "frames": data.frames, "size": data.size,
           "psnr": float(psnr(recon, video).mean()), "ssim": float(ssim(recon, video).mean())}
    for name, b in baselines.items():
        out[f"{name}_psnr"] = float(psnr(b, video).mean())
        out[f"{name}_ssim"] = float(ssim(b, video).mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="tokenizer run folder (default: the newest runs/tokenizer-*)")
    p.add_argument("--sizes", default="tiny,patch,paper", help="named sizes to time")
    p.add_argument("--batch", type=int, default=4, help="clips per call for every size but paper (1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--clips", type=int, default=16, help="held-out clips for PSNR/SSIM")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    for size in [s for s in args.sizes.split(",") if s]:
        paper = size == "paper"
        r = throughput(size, 1 if paper else args.batch, device, 1 if paper else args.repeats)
        print(f"{size:>6} ({r['params_M']:.1f}M params, batch {r['batch']}): encode {r['encode_clips_s']:.3f} clips/s, "
              f"decode {r['decode_clips_s']:.3f} clips/s, decode/encode {r['decode_clips_s'] / r['encode_clips_s']:.2f}x")
    run = Path(args.run) if args.run else latest_run_dir("runs", "tokenizer", must_contain="tokenizer/model.safetensors")
    if run is None:
        print("no tokenizer run found; train one with python -m nbp_ext.train tokenizer")
        return
    q = quality(run, args.clips, device)
    print(f"held-out quality of {q['run']} ({q['clips']} clips of {q['frames']}x{q['size']}x{q['size']}): "
          f"PSNR {q['psnr']:.2f} dB, SSIM {q['ssim']:.4f}")
    for name in ("clip-mean", "block-mean"):
        print(f"  vs {name}: PSNR {q[name + '_psnr']:.2f} dB (ratio {q['psnr'] / q[name + '_psnr']:.2f}), "
              f"SSIM {q[name + '_ssim']:.4f} (ratio {q['ssim'] / max(q[name + '_ssim'], 1e-8):.2f})")


if __name__ == "__main__":
    main()
