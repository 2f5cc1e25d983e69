"""NBP against next-token prediction (NTP) for the same model: K600-style frame prediction.

    python bench/generate.py [--model small] [--batch 1 8] [--device cpu] [--precision fp32 bf16]

Two latent frames of context (512 tokens), three latent frames generated (768 tokens, 12 video
frames): block (1, 1, 16) takes 48 steps, block (1, 1, 1) 768, both with the static KV cache and the
compiled sampler (top-k 16000, top-p 0.9). Prints steps, seconds, frames/s and the NBP/NTP speed-up,
with the tokenizer's decode time excluded and included (tiny tokenizer, 128x128).

--precision bf16 casts the generator to bfloat16 (weights, activations, KV cache; the sampler and
the tokenizer stay fp32), as ``python -m nbp_ext.sample --precision bf16`` does.

Each model generates once untimed first (its "first call": the linear layers' weights are packed for
oneDNN then, and buffers and thread pools start), then --repeat rounds time NBP and NTP one after
the other; the table gives the medians, and the speed-up of every round is printed below it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table  # noqa: E402

from nbp_ext.generate import SamplingConfig, generate  # noqa: E402
from nbp_ext.hardware import native_bf16  # noqa: E402
from nbp_ext.models import Generator, VideoTokenizer  # noqa: E402

GENERATED_FRAMES = 12  # 3 latent frames x 4
METHODS = (("NBP", (1, 1, 16)), ("NTP", (1, 1, 1)))


def timed(fn, sync) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="small", help="named generator size (small: >= 50M parameters)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tokenizer", default="tiny", help="named tokenizer size for the decode timing")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                    help="generator precisions to time (bf16 needs bf16 instructions or a GPU)")
    ap.add_argument("--repeat", type=int, default=3, help="timed generations per model after the first call")
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    tokenizer = VideoTokenizer.from_name(args.tokenizer).to(device).eval()
    rows, spread = [], []
    print(f"machine: {machine()}")
    for precision in args.precision:
        if precision == "bf16" and not native_bf16(device):
            print(f"bf16 skipped: {device} has no bf16 instructions")
            continue
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        for batch in args.batch:
            runs, first, codes = {}, {}, {}
            for name, block in METHODS:
                torch.manual_seed(0)
                model = Generator.from_name(args.model, vocab_size=64000, grid=(5, 16, 16), block=block,
                                                 condition="frames", context_frames=2).to(device, dtype).eval()
                context = torch.randint(0, 64000, (batch, model.config.prefix_len), device=device)
                sampling = SamplingConfig(top_k=16000, top_p=0.9, guidance_scale=1.0)  # one stream
                runs[name] = (model, lambda m=model, c=context, s=sampling: generate(m, c, seed=0, sampling=s))
                first[name], codes[name] = timed(runs[name][1], sync)
            # Rounds alternate the methods, so that a change in the machine's load hits both alike.
            gen = {name: [] for name, _ in METHODS}
            for _ in range(args.repeat):
                for name, _ in METHODS:
                    gen[name].append(timed(runs[name][1], sync)[0])
            ratios = [ntp / nbp for nbp, ntp in zip(gen["NBP"], gen["NTP"])]
            times = {}
            for name, block in METHODS:
                model = runs[name][0]
                with torch.no_grad():
                    tokenizer.decode(codes[name])  # warm-up
                    dec_s = statistics.median(timed(lambda: tokenizer.decode(codes[name]), sync)[0]
                                              for _ in range(args.repeat))
                gen_s = statistics.median(gen[name])
                steps = model.config.num_steps
                times[name] = (gen_s, dec_s)
                rows.append([name, f"{block}", precision, batch, f"{model.num_params() / 1e6:.0f}M", steps,
                             first[name], gen_s, gen_s / steps * 1e3, batch * GENERATED_FRAMES / gen_s, gen_s + dec_s,
                             batch * GENERATED_FRAMES / (gen_s + dec_s)])
            (g_nbp, d_nbp), (g_ntp, d_ntp) = times["NBP"], times["NTP"]
            rows.append(["NBP/NTP speed-up", "", precision, batch, "", "", "", g_ntp / g_nbp, "", "",
                         (g_ntp + d_ntp) / (g_nbp + d_nbp), ""])
            spread.append(f"{precision}, batch {batch}: " + ", ".join(f"{r:.2f}" for r in ratios))
            del runs
    print_table(
        f"K600-style generation (2 context latent frames, 768 tokens) on {device.type}",
        ["method", "block", "precision", "batch", "params", "steps", "first call s", "generate s", "ms/step", "frames/s", "with decode s",
         "frames/s with decode"],
        rows,
    )
    print("\nNBP/NTP speed-up of each round (generate s): " + "; ".join(spread))


if __name__ == "__main__":
    main()
