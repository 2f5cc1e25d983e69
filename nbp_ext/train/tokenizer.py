"""Tokenizer training stage: ``python -m nbp_ext.train tokenizer [options]``.

Reconstruction loss (L1 or L2), optional perceptual loss (local VGG16/LPIPS weights), optional 3D
PatchGAN switched on at a set step with an adaptive weight; AdamW with warmup and cosine decay,
gradient clipping; progress bar, TensorBoard scalars, side-by-side videos and held-out PSNR/SSIM in
the run folder; resumable checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..data import (BadFileTracker, DataConfig, VideoFileDataset, add_data_arguments, build_dataset, build_loader,
                    data_config_from_args, to_uint8_frames, viewing_scale, write_video)
from ..models import TOKENIZER_SIZES, VideoTokenizer
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import all_reduce_mean, barrier, cleanup, setup_distributed, shared_run_dir
from .patchgan import PatchGAN3D, adaptive_weight, d_hinge_loss, g_hinge_loss
from .perceptual import PerceptualLoss, video_perceptual
from .precision import PRECISIONS, autocast, resolve_precision
from .progress import StepProgress
from .run_dir import save_args
from .schedule import build_optimizer, warmup_cosine
from .tensorboard import ScalarWriter
from .time_budget import TimeBudget, follow_plan
from .video_metrics import psnr, ssim

STAGE = "tokenizer"
PRETRAINED_DIR = "tokenizer"  # run_dir/tokenizer: config.json + model.safetensors
# The defaults train the tiny size on 17x64x64 synthetic clips in a few minutes on a 2-core CPU.
DATA_DEFAULTS = dict(size=64, train_clips=1000, val_clips=16)


@dataclass
class TokenizerTrainConfig:
    model: str = "tiny"
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    steps: int = 200
    batch_size: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 20
    grad_clip: float = 1.0
    loss: str = "l1"
    vgg_weights: str | None = None
    lpips_weights: str | None = None
    perceptual_weight: float = 0.1
    perceptual_frames: int = 4
    disc_start: int = -1
    disc_weight: float = 0.1
    disc_channels: int = 32
    disc_lr: float | None = None
    init_clips: int = 64
    eval_every: int = 50
    eval_clips: int = 16
    sample_every: int = 100
    ckpt_every: int = 50
    log_every: int = 10
    stop_at: int | None = None
    time_limit: float | None = None  # minutes: fewer than --steps where the machine needs it (time_budget.py)
    runs_root: str = "runs"
    run_dir: str | None = None
    resume: str | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on a GPU with bf16, else fp32
    num_workers: int = 0
    max_bad_fraction: float = 0.1
    progress: bool = True

    def __post_init__(self):
        self.fsq_levels = tuple(int(l) for l in self.fsq_levels)
        if self.model not in TOKENIZER_SIZES:
            raise ValueError(f"--model must be one of {sorted(TOKENIZER_SIZES)}, got {self.model!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"--loss must be 'l1' or 'l2', got {self.loss!r}")
        if self.init_clips < 1:
            raise ValueError(f"--init-clips must be >= 1, got {self.init_clips}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"--steps and --batch-size must be >= 1, got {self.steps}, {self.batch_size}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"--time-limit must be > 0 minutes, got {self.time_limit}")
        if self.lpips_weights and not self.vgg_weights:
            raise ValueError("--lpips-weights needs --vgg-weights (the VGG16 features they weigh)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TokenizerTrainConfig()
    g = p.add_argument_group("model and optimization")
    g.add_argument("--model", choices=sorted(TOKENIZER_SIZES), default=d.model, help="named tokenizer size")
    g.add_argument("--fsq-levels", type=lambda s: tuple(int(x) for x in s.split(",")), default=d.fsq_levels,
                   help="FSQ levels, comma separated (default 8,8,8,5,5,5 = 64000 codes)")
    g.add_argument("--steps", type=int, default=d.steps, help="optimizer steps in the whole run")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per step (per process)")
    g.add_argument("--lr", type=float, default=d.lr, help="peak AdamW learning rate")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--warmup", type=int, default=d.warmup, help="linear warmup steps, then cosine decay")
    g.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    g.add_argument("--loss", choices=("l1", "l2"), default=d.loss,
                   help="reconstruction loss (the no-argument pipeline trains the patch codec with l2, which keeps "
                        "straight edges and corners where l1 leaves round blobs)")
    g.add_argument("--init-clips", type=int, default=d.init_clips, help="training clips whose PCA starts the patch codec")
    g = p.add_argument_group("perceptual loss (off unless --vgg-weights is given; nothing is downloaded)")
    g.add_argument("--vgg-weights", default=None, help="local VGG16 state dict (.pth/.safetensors, torchvision keys); turns the perceptual loss on")
    g.add_argument("--lpips-weights", default=None, help="local LPIPS linear-layer weights (lin0..lin4); default: equal weights")
    g.add_argument("--perceptual-weight", type=float, default=d.perceptual_weight)
    g.add_argument("--perceptual-frames", type=int, default=d.perceptual_frames, help="random frames per clip for the perceptual loss")
    g = p.add_argument_group("GAN (off unless --disc-start >= 0)")
    g.add_argument("--disc-start", type=int, default=d.disc_start, help="step at which the 3D PatchGAN turns on (-1: never)")
    g.add_argument("--disc-weight", type=float, default=d.disc_weight, help="factor on the adaptive GAN weight")
    g.add_argument("--disc-channels", type=int, default=d.disc_channels)
    g.add_argument("--disc-lr", type=float, default=None, help="discriminator learning rate (default: --lr)")
    g = p.add_argument_group("run folder, logging, checkpoints")
    g.add_argument("--eval-every", type=int, default=d.eval_every, help="held-out PSNR/SSIM every N steps")
    g.add_argument("--eval-clips", type=int, default=d.eval_clips, help="held-out clips per evaluation")
    g.add_argument("--sample-every", type=int, default=d.sample_every, help="side-by-side video every N steps")
    g.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="checkpoint every N steps")
    g.add_argument("--log-every", type=int, default=d.log_every, help="TensorBoard scalars every N steps")
    g.add_argument("--stop-at", type=int, default=None, help="stop (with a checkpoint) at this step; --resume goes on")
    g.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="end training, with its closing evaluation and checkpoint, within MIN minutes: the stage "
                        "times its steps and lowers --steps (the cosine schedule follows) where they would not fit; "
                        "never raises it")
    g.add_argument("--runs-root", default=d.runs_root, help="where new run folders are made")
    g.add_argument("--run-dir", default=None, help="use this run folder instead of a new runs/tokenizer-<time>")
    g.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N")
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="bf16: autocast in bfloat16 with fp32 weights; auto (default): bf16 on a GPU with bf16, "
                        "else fp32 (on a CPU bf16 costs the patch codec about 0.7 dB)")
    g.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader worker processes")
    g.add_argument("--max-bad-fraction", type=float, default=d.max_bad_fraction, help="stop when more than this share of video files is bad")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_data_arguments(p, **DATA_DEFAULTS)


def configs_from_args(args: argparse.Namespace) -> tuple[TokenizerTrainConfig, DataConfig]:
    cfg = TokenizerTrainConfig(**{f.name: getattr(args, f.name) for f in fields(TokenizerTrainConfig)})
    return cfg, data_config_from_args(args)


def main(args: argparse.Namespace) -> Path:
    cfg, data_cfg = configs_from_args(args)
    return train_tokenizer(cfg, data_cfg)


# ---------------------------------------------------------------------------------------------
def _init_from_data(model: VideoTokenizer, train_set, cfg: TokenizerTrainConfig, device: torch.device, verbose: bool) -> None:
    """Start the patch codec from the PCA of the first ``--init-clips`` training clips (the same on every rank)."""
    n = min(cfg.init_clips, len(train_set))

    def batches():
        for i in range(0, n, cfg.batch_size):
            items = [train_set[j] for j in range(i, min(n, i + cfg.batch_size))]
            items = [it["video"] for it in items if it.get("video") is not None]
            if items:
                yield torch.stack(items).to(device)

    explained = model.init_from_data(batches())
    if verbose:
        print(f"patch codec started from the PCA of {n} clips: {model.quantizer.dim} components explain "
              f"{explained:.1%} of the patch variance", flush=True)


@torch.no_grad()
def evaluate(model: VideoTokenizer, val_set, clips: int, batch_size: int, device: torch.device) -> dict:
    """Held-out PSNR / SSIM / code usage on the first ``clips`` clips, and one sample pair."""
    model.eval()
    scores_p, scores_s, used, sample = [], [], set(), None
    n = min(clips, len(val_set))
    for i in range(0, n, batch_size):
        items = [val_set[j] for j in range(i, min(n, i + batch_size))]
        items = [it for it in items if it.get("video") is not None]
        if not items:
            continue
        video = torch.stack([it["video"] for it in items]).to(device)
        recon, codes = model(video)
        scores_p.append(psnr(recon, video).cpu())
        scores_s.append(ssim(recon, video).cpu())
        used.update(codes.unique().tolist())
        if sample is None:
            sample = (video[0].cpu(), recon[0].clamp(-1, 1).cpu())
    model.train()
    if not scores_p:
        return {}
    return {"psnr": float(torch.cat(scores_p).mean()), "ssim": float(torch.cat(scores_s).mean()),
            "code_usage": len(used) / model.codebook_size, "_sample": sample}


def _write_sample(run_dir: Path, step: int, sample: tuple[torch.Tensor, torch.Tensor]) -> Path:
    side = torch.cat(sample, dim=-1)  # (3, T, H, 2W): original | reconstruction
    return write_video(run_dir / "samples" / f"step_{step:07d}.mp4", to_uint8_frames(side), fps=8,
                       scale=viewing_scale(side.shape[2]))


def train_tokenizer(cfg: TokenizerTrainConfig, data_cfg: DataConfig) -> Path:
    """Train (or resume) and return the run folder; the model is in ``run_dir/tokenizer``."""
    info = setup_distributed(cfg.device)
    device = info.device
    ckpt = None
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume)
        saved_cfg, saved_data = ckpt["train_config"], ckpt["data_config"]
        # Keep the saved model and data; let the user change how long and how often.
        keep = {"model", "fsq_levels", "batch_size", "lr", "weight_decay", "warmup", "loss", "disc_channels", "seed"}
        cfg = TokenizerTrainConfig(**{**asdict(cfg), **{k: saved_cfg[k] for k in keep}, "resume": cfg.resume})
        data_cfg = DataConfig(**saved_data)

    # A time limit plans the step count from the measured speed (at most --steps), counted from here;
    # an evaluation (with its sample video) and a checkpoint count as 3 and 1 steps until timed.
    budget = TimeBudget(cfg.time_limit * 60 if cfg.time_limit else None, cfg.steps, guesses={"eval": 3, "ckpt": 1})
    max_steps = cfg.steps
    precision = resolve_precision(cfg.precision, device, cpu_bf16=False)
    torch.manual_seed(cfg.seed * 1000 + info.rank)
    model = VideoTokenizer.from_name(cfg.model, fsq_levels=cfg.fsq_levels).to(device)
    model.config.check_clip(data_cfg.frames, data_cfg.size)
    train_set = build_dataset(data_cfg, "train")
    val_set = build_dataset(data_cfg, "val")
    # made only once the inputs are known to be good, so that a bad option leaves no empty run folder
    run_dir = shared_run_dir(info, cfg.resume or cfg.run_dir, cfg.runs_root, STAGE)
    if info.is_main and ckpt is None:
        save_args(run_dir, {"train": asdict(cfg), "data": asdict(data_cfg)})
    if info.is_main:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"tokenizer: {n_params / 1e6:.2f}M parameters, {model.codebook_size} codes, {data_cfg.frames}x"
              f"{data_cfg.size}x{data_cfg.size} clips, {precision} on {device}", flush=True)
    loader = build_loader(train_set, cfg.batch_size, shuffle=True, num_workers=cfg.num_workers, drop_last=True,
                          seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    batches_per_epoch = len(loader)
    if batches_per_epoch == 0:
        raise ValueError(f"the training set has {len(train_set)} clips, fewer than --batch-size {cfg.batch_size}")
    tracker = BadFileTracker(len(train_set), cfg.max_bad_fraction) if isinstance(train_set, VideoFileDataset) else None

    opt = build_optimizer(model.parameters(), cfg.lr, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.warmup, cfg.steps))
    disc = d_opt = None
    if cfg.disc_start >= 0:
        disc = PatchGAN3D(cfg.disc_channels).to(device)
        d_opt = build_optimizer(disc.parameters(), cfg.disc_lr or cfg.lr, cfg.weight_decay)
    perceptual = PerceptualLoss(cfg.vgg_weights, cfg.lpips_weights).to(device) if cfg.vgg_weights else None

    step, epoch, epoch_batches, best = 0, 0, 0, {}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if disc is not None and ckpt.get("disc") is not None:
            disc.load_state_dict(ckpt["disc"])
            d_opt.load_state_dict(ckpt["disc_optimizer"])
        step, epoch, epoch_batches = ckpt["step"], ckpt["epoch"], ckpt["epoch_batches"]
        set_rng_state(ckpt["rng"])
    elif model.config.arch == "patch":
        _init_from_data(model, train_set, cfg, device, info.is_main)
    train_model = DistributedDataParallel(model) if info.enabled else model
    train_disc = DistributedDataParallel(disc) if (info.enabled and disc is not None) else disc
    writer = ScalarWriter(run_dir / "tb") if info.is_main else None
    stop_at = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
    bar = StepProgress(cfg.steps, step, desc=STAGE, enabled=cfg.progress and info.is_main)
    last_layer = model.decoder.last_layer_weight
    amp = autocast(precision, device)

    def checkpoint() -> None:
        if not info.is_main:
            return
        save_checkpoint(run_dir, {
            "step": step, "epoch": epoch, "epoch_batches": epoch_batches, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "disc": disc.state_dict() if disc is not None else None,
            "disc_optimizer": d_opt.state_dict() if d_opt is not None else None, "rng": rng_state(),
            "train_config": asdict(cfg), "data_config": asdict(data_cfg)})
        model.save_pretrained(run_dir / PRETRAINED_DIR)

    def log(scalars: dict) -> None:
        if writer is not None:
            writer.add_scalars(step, scalars)
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **scalars}) + "\n")

    def run_eval(write_sample: bool) -> dict:
        nonlocal best
        if not info.is_main:
            return {}
        result = evaluate(model, val_set, cfg.eval_clips, cfg.batch_size, device)
        sample = result.pop("_sample", None)
        if result:
            log({f"val/{k}": v for k, v in result.items()})
            bar.write(f"step {step}: held-out PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}, "
                      f"code usage {result['code_usage']:.3%}")
            best = result
        if write_sample and sample is not None:
            _write_sample(run_dir, step, sample)
        return result

    try:
        while step < stop_at:
            loader.sampler.set_epoch(epoch, skip=epoch_batches * cfg.batch_size)  # skip clips this epoch already used
            for batch in loader:
                epoch_batches += 1
                if tracker is not None:
                    tracker.update(batch)
                video = batch["video"].to(device, non_blocking=True)
                if video.shape[0] == 0:  # every file in the batch was bad
                    continue
                gan_on = disc is not None and step >= cfg.disc_start
                with amp:
                    recon, _ = train_model(video)
                    recon = recon.float()
                    rec = (recon - video).abs().mean() if cfg.loss == "l1" else F.mse_loss(recon, video)
                    loss, scalars = rec, {"loss/rec": rec.item()}
                    if perceptual is not None:
                        p_loss = video_perceptual(perceptual, recon, video, cfg.perceptual_frames)
                        loss = loss + cfg.perceptual_weight * p_loss
                        scalars["loss/perceptual"] = p_loss.item()
                    if gan_on:
                        g_loss = g_hinge_loss(train_disc(recon))
                        weight = adaptive_weight(loss, g_loss, last_layer) * cfg.disc_weight
                        loss = loss + weight * g_loss
                        scalars.update({"loss/gan_g": g_loss.item(), "gan/adaptive_weight": weight.item()})
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
                opt.step()
                sched.step()
                if gan_on:
                    with amp:
                        d_loss = d_hinge_loss(train_disc(video), train_disc(recon.detach()))
                    d_opt.zero_grad(set_to_none=True)
                    d_loss.backward()
                    d_opt.step()
                    scalars["loss/gan_d"] = d_loss.item()
                step += 1
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower --lr or check the data")
                rate = bar.step(video.shape[0] * info.world_size, loss=scalars["loss/rec"])
                if step % cfg.log_every == 0:
                    scalars = all_reduce_mean(scalars, info)
                    log({**scalars, "lr": sched.get_last_lr()[0], "grad_norm": float(grad_norm), "clips_per_s": rate})
                    bar.reset_rate()
                budget.step_done()
                if budget.enabled and step % cfg.log_every == 0:
                    cfg = follow_plan(budget, step, {"eval": cfg.eval_every, "ckpt": cfg.ckpt_every}, cfg, sched, bar, info)
                    stop_at = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
                if step % cfg.eval_every == 0 or step % cfg.sample_every == 0:
                    with budget.extra("eval"):
                        if step % cfg.eval_every == 0:
                            run_eval(write_sample=step % cfg.sample_every == 0)
                        else:
                            run_eval(write_sample=True)
                        barrier(info)
                if step % cfg.ckpt_every == 0:
                    with budget.extra("ckpt"):
                        checkpoint()
                if step >= stop_at:
                    break
            else:
                epoch, epoch_batches = epoch + 1, 0
                if tracker is not None:
                    bar.write(tracker.end_epoch())
    except KeyboardInterrupt:
        checkpoint()
        bar.close()
        print(f"\ninterrupted at step {step}; checkpoint saved, continue with --resume {run_dir}")
        cleanup(info, wait=False)
        raise
    if step % cfg.eval_every != 0:
        run_eval(write_sample=True)
    checkpoint()
    bar.close()
    if tracker is not None and tracker.bad:
        print(tracker.end_epoch())
    if info.is_main:
        (run_dir / "eval.json").write_text(json.dumps({"step": step, **best}, indent=2) + "\n")
        if writer is not None:
            writer.close()
        done = "finished" if step >= cfg.steps else f"stopped at step {step} of {cfg.steps} (continue with --resume {run_dir})"
        if budget.enabled:
            done += (f" in {budget.elapsed() / 60:.1f} min of the {cfg.time_limit:g}-minute limit: {cfg.steps} steps of "
                     f"{budget.step_seconds():.3f} s (--steps {max_steps})")
        print(f"tokenizer training {done}; results in {run_dir} (model: {run_dir / PRETRAINED_DIR}, "
              f"samples: {run_dir / 'samples'}, TensorBoard: {run_dir / 'tb'})")
    cleanup(info)
    return run_dir
