"""Generator training stage: ``python -m nbp_ext.train nbp [options]``.

Trains the NBP transformer on a token folder (``python -m nbp_ext.tokenize``): NBP shift, loss on
video tokens only (overall and per position in the block); AdamW without decay on norms, biases and
embeddings, warmup + cosine, gradient clipping and accumulation, bf16 autocast where the GPU or CPU
has bf16 (--precision); progress bar with loss, tokens/s and ETA; TensorBoard scalars; a grid of
generated videos at intervals; checkpoints written atomically and resumable with --resume; one
process or torchrun (DDP).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..data import ResumableSampler, TokenDataset
from ..models import NBPTransformer
from ..models.generator_config import nbp_config_from_name
from ..models.pretrained import WEIGHTS_FILE
from ..sample import GENERATOR_DIR, GRID_VIDEOS, RUN_INFO, load_tokenizer, write_sample_grid
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .compiled import compiled_or_eager
from .distributed import all_reduce_mean, barrier, cleanup, setup_distributed, shared_run_dir
from .nbp_config import NBPTrainConfig, add_arguments, parse_block  # noqa: F401  (add_arguments: stage API)
from .precision import autocast, resolve_precision
from .progress import StepProgress
from .run_dir import latest_run_dir, save_args
from .schedule import warmup_cosine
from .tensorboard import ScalarWriter
from .time_budget import TimeBudget, follow_plan

STAGE = "nbp"


def main(args: argparse.Namespace) -> Path:
    cfg = NBPTrainConfig(**{f.name: getattr(args, f.name) for f in fields(NBPTrainConfig)})
    return train_nbp(cfg)


def resolve_tokens(cfg: NBPTrainConfig) -> Path:
    if cfg.tokens:
        return Path(cfg.tokens)
    run = latest_run_dir(cfg.runs_root, "tokenizer", must_contain="tokens/train/meta.json")
    if run is None:
        raise FileNotFoundError(f"--tokens not given and no {cfg.runs_root}/tokenizer-*/tokens found; "
                                "run python -m nbp_ext.train tokenizer and python -m nbp_ext.tokenize first")
    return run / "tokens"


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: no decay on norms, biases, embeddings, the start block."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_embedding = name.endswith("_emb.weight") or name == "start"
        (decay if p.dim() >= 2 and not is_embedding else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=False)


@torch.no_grad()
def evaluate(model: NBPTransformer, val: TokenDataset, device: torch.device, batch_size: int, max_clips: int = 64) -> dict:
    """Held-out token loss (nats) with the true condition, overall and per generated latent frame,
    against log(V) of a uniform predictor."""
    model.eval()
    n = min(len(val), max_clips)
    total, count = 0.0, 0
    per_frame = torch.zeros(model.num_video_frames)
    for i in range(0, n, batch_size):
        items = [val[j] for j in range(i, min(n, i + batch_size))]
        codes = torch.stack([it["codes"] for it in items]).to(device)
        labels = torch.tensor([it["label"] for it in items], device=device)
        out = model.loss(codes, labels if model.config.condition == "class" else None)
        total += float(out["loss"]) * len(items)
        per_frame += out["per_frame"].cpu() * len(items)
        count += len(items)
    model.train()
    count = max(count, 1)
    return {"loss": total / count, "per_frame": [round(float(v), 4) for v in per_frame / count],
            "uniform": math.log(model.config.vocab_size)}


def _num_classes(train: TokenDataset) -> int:
    names = train.class_names
    if names:
        return len(names)
    labels = [int(train.index[i][2]) for i in range(len(train))]
    return max(labels) + 1


def _grid_legend(mcfg, class_names) -> str:
    """What the videos of a sample grid are, left to right (see ``write_sample_grid``)."""
    if mcfg.condition == "class":
        n = min(mcfg.num_classes, GRID_VIDEOS)
        names = list(class_names or [])[:n]
        return "left to right, classes " + ", ".join(f"{i} {names[i]}" if i < len(names) else str(i) for i in range(n))
    if mcfg.condition == "frames":
        return "left to right, continuations of the first held-out clips"
    return "unconditional videos"


def train_nbp(cfg: NBPTrainConfig) -> Path:
    """Train (or resume) and return the run folder; the model is in ``run_dir/generator``."""
    info = setup_distributed(cfg.device)
    device = info.device
    ckpt = load_checkpoint(Path(cfg.resume)) if cfg.resume else None
    if ckpt is not None:  # the saved run's settings; only where to stop and how to run may change
        saved = ckpt["train_config"]
        own = {"resume": cfg.resume, "stop_at": cfg.stop_at, "progress": cfg.progress, "device": cfg.device,
               "num_workers": cfg.num_workers, "time_limit": cfg.time_limit, "compile": cfg.compile}
        cfg = NBPTrainConfig(**{**saved, **own})

    # A time limit plans the step count from the measured speed (at most --steps), counted from here.
    # The guesses, in training steps, stand for an extra until it has been timed: a held-out pass
    # over 64 clips, a grid of 12 generated videos, a checkpoint.
    budget = TimeBudget(cfg.time_limit * 60 if cfg.time_limit else None, cfg.steps,
                        guesses={"eval": 2, "samples": 20, "ckpt": 1})
    precision = resolve_precision(cfg.precision, device)
    tokens_dir = resolve_tokens(cfg)
    train_set = TokenDataset(tokens_dir / "train")
    val_set = TokenDataset(tokens_dir / "val") if (tokens_dir / "val" / "meta.json").is_file() else None
    grid = tuple(train_set.latent_shape)
    overrides = dict(vocab_size=train_set.vocab_size, grid=grid, block=parse_block(cfg.block, grid),
                     condition=cfg.condition, context_frames=cfg.context_frames, cond_dropout=cfg.cond_dropout,
                     start=cfg.start,
                     num_classes=_num_classes(train_set))
    if cfg.style:
        overrides["style"] = cfg.style
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = NBPTransformer(nbp_config_from_name(cfg.model, **overrides)).to(device)
    mcfg = model.config
    tokenizer_dir = Path(cfg.tokenizer) if cfg.tokenizer else tokens_dir.parent / "tokenizer"
    # made only once the inputs are known to be good, so that a bad option leaves no empty run folder
    run_dir = shared_run_dir(info, cfg.resume or cfg.run_dir, cfg.runs_root, STAGE)
    if info.is_main and ckpt is None:
        save_args(run_dir, {"train": asdict(cfg), "model": asdict(mcfg)})
        (run_dir / RUN_INFO).write_text(json.dumps({
            "tokens": str(tokens_dir), "tokenizer": str(tokenizer_dir),
            "tokenizer_sha256": train_set.meta.get("info", {}).get("tokenizer_sha256"),
            "class_names": train_set.class_names,
            "sampling": {"temperature": 1.0, "top_k": cfg.sample_top_k, "top_p": cfg.sample_top_p,
                         "cfg_scale": cfg.sample_cfg}}, indent=2) + "\n")
        print(f"generator: {model.num_params() / 1e6:.2f}M parameters, {mcfg.num_steps} steps of {mcfg.block_len} "
              f"tokens per clip, grid {mcfg.grid}, block {mcfg.block}, vocabulary {mcfg.vocab_size}, {precision} on {device}")

    sampler = ResumableSampler(len(train_set), shuffle=True, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    # The loader's own generator: starting an epoch must not draw from the global RNG, which the
    # condition dropout uses and a checkpoint restores.
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True, persistent_workers=cfg.num_workers > 0,
                        generator=torch.Generator().manual_seed(cfg.seed))
    if len(loader) == 0:
        raise ValueError(f"the token set has {len(train_set)} clips, fewer than --batch-size {cfg.batch_size} per process")
    opt = build_optimizer(model, cfg.lr, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.warmup, cfg.steps))
    step, epoch, epoch_batches = 0, 0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        step, epoch, epoch_batches = ckpt["step"], ckpt["epoch"], ckpt["epoch_batches"]
        set_rng_state(ckpt["rng"])
    writer = ScalarWriter(run_dir / "tb") if info.is_main else None
    stop_at = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
    bar = StepProgress(cfg.steps, step, desc=STAGE, enabled=cfg.progress and info.is_main, tokens_per_clip=mcfg.video_len)
    amp = autocast(precision, device)
    extras = {"eval": cfg.eval_every, "samples": cfg.sample_every, "ckpt": cfg.ckpt_every}
    max_steps = cfg.steps
    tokenizer = None
    best: dict = {}

    def checkpoint() -> None:
        if info.is_main:
            save_checkpoint(run_dir, {
                "step": step, "epoch": epoch, "epoch_batches": epoch_batches, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng_state(),
                "train_config": asdict(cfg)})
            model.save_pretrained(run_dir / GENERATOR_DIR)

    def log(scalars: dict) -> None:
        if writer is not None:
            writer.add_scalars(step, scalars)
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **scalars}) + "\n")

    def run_eval() -> None:
        nonlocal best
        if info.is_main and val_set is not None and len(val_set):
            best = evaluate(model, val_set, device, cfg.batch_size)
            log({"val/loss": best["loss"], **{f"val/loss_frame/{i:02d}": v for i, v in enumerate(best["per_frame"])}})
            frames = " ".join(f"{v:.3f}" for v in best["per_frame"])
            bar.write(f"step {step}: held-out loss {best['loss']:.3f} nats/token (uniform {best['uniform']:.3f}; "
                      f"per latent frame {frames})")

    last_sample: Path | None = None

    def run_samples() -> None:
        nonlocal tokenizer, last_sample
        if not info.is_main:
            return
        if tokenizer is None:
            tokenizer = load_tokenizer(tokenizer_dir, mcfg.vocab_size, device) if (tokenizer_dir / WEIGHTS_FILE).is_file() else False
        if tokenizer is False:
            return
        path = write_sample_grid(model, tokenizer, run_dir / "samples" / f"step_{step:07d}.mp4", val_set,
                                 cfg.sample_cfg, cfg.sample_top_k, cfg.sample_top_p, seed=cfg.seed)
        last_sample = path
        bar.write(f"step {step}: samples in {path}")

    # evaluation keeps the eager model.loss: a no-grad graph would be a second compilation
    train_loss = compiled_or_eager(model.loss, cfg.compile, bar.write)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * info.world_size * mcfg.video_len
    try:
        while step < stop_at:
            sampler.set_epoch(epoch, skip=epoch_batches * cfg.batch_size)
            micro = 0
            for batch in loader:
                epoch_batches += 1
                codes = batch["codes"].to(device, non_blocking=True)
                labels = batch["label"].to(device) if mcfg.condition == "class" else None
                with amp:
                    out = train_loss(codes, labels)
                (out["loss"] / cfg.grad_accum).backward()
                micro += 1
                if micro < cfg.grad_accum:
                    continue
                micro = 0
                if info.enabled:  # data parallel: average the gradients of every process (gloo or nccl)
                    for p in model.parameters():
                        if p.grad is not None:
                            dist.all_reduce(p.grad)
                            p.grad.div_(info.world_size)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                loss = float(out["loss"].detach())
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at step {step}; lower --lr")
                rate = bar.step(cfg.batch_size * cfg.grad_accum * info.world_size, loss=loss)
                if step % cfg.log_every == 0:
                    per_pos = out["per_position"].tolist()
                    scalars = {"loss/train": loss, **{f"loss_pos/{i:03d}": v for i, v in enumerate(per_pos)}}
                    scalars = all_reduce_mean(scalars, info)
                    log({**scalars, "lr": sched.get_last_lr()[0], "grad_norm": float(grad_norm),
                         "tokens_per_s": rate * mcfg.video_len})
                    bar.reset_rate()
                budget.step_done()
                if budget.enabled and step % cfg.log_every == 0:
                    cfg = follow_plan(budget, step, extras, cfg, sched, bar, info)
                    stop_at = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
                if step % cfg.eval_every == 0:
                    with budget.extra("eval"):
                        run_eval()
                if step % cfg.sample_every == 0:
                    with budget.extra("samples"):
                        run_samples()
                if step % cfg.ckpt_every == 0:
                    with budget.extra("ckpt"):
                        checkpoint()
                if step % cfg.eval_every == 0 or step % cfg.sample_every == 0:
                    barrier(info)  # the other processes wait while the main one evaluates and samples
                if step >= stop_at:
                    break
            else:
                epoch, epoch_batches = epoch + 1, 0
    except KeyboardInterrupt:
        checkpoint()
        bar.close()
        print(f"\ninterrupted at step {step}; checkpoint saved, continue with --resume {run_dir}")
        cleanup(info, wait=False)
        raise
    if step % cfg.eval_every != 0:
        run_eval()
    checkpoint()
    if step % cfg.sample_every != 0:
        run_samples()
    bar.close()
    if info.is_main:
        (run_dir / "eval.json").write_text(json.dumps({"step": step, **best}, indent=2) + "\n")
        if writer is not None:
            writer.close()
        done = "finished" if step >= cfg.steps else f"stopped at step {step} of {cfg.steps} (continue with --resume {run_dir})"
        if budget.enabled:
            done += (f" in {budget.elapsed() / 60:.1f} min of the {cfg.time_limit:g}-minute limit: {cfg.steps} steps of "
                     f"{budget.step_seconds():.2f} s (--steps {max_steps})")
        print(f"generator training {done} ({tokens_per_step} tokens per step); results in {run_dir} "
              f"(model: {run_dir / GENERATOR_DIR}, samples: {run_dir / 'samples'}, TensorBoard: {run_dir / 'tb'})")
        if last_sample:
            print(f"latest sample video: {last_sample} ({_grid_legend(mcfg, train_set.class_names)})")
    cleanup(info)
    return run_dir
