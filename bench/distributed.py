"""Generator training on 1 and 2 processes: ddp and fsdp, with and without activation checkpointing.

    python bench/distributed.py [--model small] [--grid 3 8 8] [--batch 4] [--steps 8] [--device cpu] [--procs 1,2]

Each row is a separate ``torchrun`` launch (gloo on a CPU, nccl on GPUs) of this file as a worker:
the training loop's own pieces (``parallelize``, ``model.loss``, AdamW, clipping) on random tokens,
a micro-batch of ``--batch`` clips per process. Prints training tokens/s over all processes, peak
memory per process (peak resident set on a CPU, peak allocated on a GPU) and the model state a
process holds (parameters, gradients and AdamW moments: what fsdp shards), with ratios against one
process in the same run. On a 2-core CPU two processes share the cores, so tokens/s measures the
overhead of the parallelism, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table  # noqa: E402

from nbp_ext.models import Generator  # noqa: E402
from nbp_ext.models.generator_config import generator_config_from_name  # noqa: E402
from nbp_ext.train.distributed import cleanup, setup_distributed  # noqa: E402
from nbp_ext.train.schedule import GENERATOR_BETAS, build_optimizer  # noqa: E402
from nbp_ext.train.parallel import parallelize, resolve_parallel  # noqa: E402
from nbp_ext.train.precision import autocast, resolve_precision  # noqa: E402

VARIANTS = [(1, None, False), (1, None, True), (2, "ddp", False), (2, "ddp", True), (2, "fsdp", False),
            (2, "fsdp", True)]


def local_state_bytes(model: torch.nn.Module, opt: torch.optim.Optimizer) -> int:
    """Bytes of parameters, gradients and optimizer state held by this process (a shard under fsdp)."""
    def local(t):
        return t.to_local() if hasattr(t, "to_local") else t

    total = 0
    for p in model.parameters():
        total += local(p).numel() * local(p).element_size()
        if p.grad is not None:
            total += local(p.grad).numel() * local(p.grad).element_size()
    for state in opt.state.values():
        total += sum(local(v).numel() * local(v).element_size() for v in state.values() if torch.is_tensor(v))
    return total


def worker(args) -> None:
    info = setup_distributed(args.device)
    device = info.device
    grid = tuple(args.grid)
    torch.manual_seed(0)
    model = Generator(generator_config_from_name(args.model, vocab_size=args.vocab, grid=grid, block=(1, 1, grid[2]),
                                                condition="class", num_classes=12)).to(device)
    precision = resolve_precision(args.precision, device)
    mode = resolve_parallel(args.parallel, info)
    parallel = parallelize(model, mode, info, "loss", precision, args.activation_checkpointing)
    opt = build_optimizer(model, 1e-4, 0.05, GENERATOR_BETAS)
    gen = torch.Generator().manual_seed(info.rank)
    codes = torch.randint(0, args.vocab, (args.batch, *grid), generator=gen).to(device)
    labels = torch.randint(0, 12, (args.batch,), generator=gen).to(device)

    def step():
        with autocast(precision, device):
            out = parallel.call(codes, labels)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)  # keep the gradients allocated: they count in the state

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    record = {"rank": info.rank, "seconds": seconds, "peak": peak, "state": local_state_bytes(model, opt),
              "tokens": args.steps * args.batch * grid[0] * grid[1] * grid[2], "params": model.num_params(),
              "precision": precision}
    Path(args.out).with_suffix(f".{info.rank}.json").write_text(json.dumps(record))
    cleanup(info)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def driver(args) -> None:
    rows, base = [], None
    out_dir = Path(args.scratch)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {int(n) for n in args.procs.split(",")}
    for procs, parallel, ckpt in [v for v in VARIANTS if v[0] in wanted]:
        out = out_dir / f"run-{procs}-{parallel}-{int(ckpt)}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port",
               str(free_port()), __file__, "--worker", "--out", str(out), "--model", args.model, "--grid",
               *map(str, args.grid), "--vocab", str(args.vocab), "--batch", str(args.batch), "--steps", str(args.steps),
               "--device", args.device, "--precision", args.precision,
               *(["--parallel", parallel] if parallel else []), *(["--activation-checkpointing"] if ckpt else [])]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // procs))}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"error: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        records = [json.loads(out.with_suffix(f".{r}.json").read_text()) for r in range(procs)]
        tokens_per_s = sum(r["tokens"] for r in records) / max(r["seconds"] for r in records)
        peak = max(r["peak"] for r in records) / 2**20
        state = max(r["state"] for r in records) / 2**20
        base = base or (tokens_per_s, peak, state)
        name = "1 process" if procs == 1 else f"2 processes, {parallel}"
        rows.append([name + (", act. ckpt" if ckpt else ""), f"{tokens_per_s:.0f}", f"{tokens_per_s / base[0]:.2f}",
                     f"{peak:.0f}", f"{peak / base[1]:.2f}", f"{state:.1f}", f"{state / base[2]:.2f}"])
        params = records[0]["params"]
        precision = records[0]["precision"]
    print(machine())
    print_table(f"generator training, {args.model} ({params / 1e6:.1f}M parameters), grid {tuple(args.grid)}, vocabulary "
                f"{args.vocab}, {args.batch} clips per process, {precision}",
                ["variant", "tokens/s", "vs 1 process", "peak MiB/process", "vs 1", "state MiB/process", "vs 1"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="small", help="named generator size")
    ap.add_argument("--grid", type=int, nargs=3, default=[3, 8, 8], help="latent grid T' H' W' (block: one row)")
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=4, help="clips per process per step")
    ap.add_argument("--steps", type=int, default=8, help="timed steps (after 2 untimed ones)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"))
    ap.add_argument("--procs", default="1,2", help="process counts to run (1 on a machine with one GPU)")
    ap.add_argument("--scratch", default="/tmp/nbp-bench-distributed", help="where the workers write their records")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--parallel", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--activation-checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    (worker if args.worker else driver)(args)


if __name__ == "__main__":
    main()
