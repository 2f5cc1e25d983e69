"""Tokenizer training stage: ``python -m nbp_ext.train tokenizer [options]``.

Reconstruction loss (L1 or L2), optional perceptual loss (local VGG16/LPIPS weights), optional 3D
PatchGAN switched on at a set step with an adaptive weight; held-out PSNR/SSIM and side-by-side
videos in the run folder. The training loop (processes, ddp / fsdp, schedule, checkpoints, resume)
is ``loop.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import (BadFileTracker, DataConfig, VideoFileDataset, add_data_arguments, build_dataset,
                    data_config_from_args, to_uint8_frames, viewing_scale, write_video)
from ..data.bad_files import collate_clips
from ..data.builder import worker_count
from ..data.loader import make_loader
from ..data.clip_cache import CachedClipDataset
from ..data.training_order import TrainingOrder
from ..models import TOKENIZER_SIZES, VideoTokenizer
from ..runs import TOKENIZER_DIR
from .checkpoint import Part
from .distributed import DistInfo, barrier
from .loop import Stage, train
from .options import LoopOptions, add_loop_arguments, config_from_args
from .parallel import parallelize
from .patchgan import PatchGAN3D, adaptive_weight, d_hinge_loss, g_hinge_loss
from .perceptual import PerceptualLoss, video_perceptual
from ..runs import save_args
from .schedule import CONV_BETAS, build_optimizer
from .video_metrics import psnr, ssim

STAGE = "tokenizer"
PRETRAINED_DIR = TOKENIZER_DIR  # run_dir/tokenizer: config.json + model.safetensors
# The stage's clips, alone or in the pipeline: the synthetic set's easy variant at 9x32x32 (plain
# backgrounds, six fixed colours, objects 1.5x the default size), on which the patch tokenizer learns
# recognisable shapes in minutes on a 2-core CPU (why: docs/results/pipeline.md, "Why the pipeline's defaults").
DATA_DEFAULTS = dict(frames=9, size=32, train_clips=8000, val_clips=16, background="plain", palette=True,
                     object_scale=1.5)
# Options that define the model and its data: a resumed run cannot change them.
MODEL_OPTIONS = ("model", "fsq_levels", "loss")


@dataclass
class TokenizerTrainConfig(LoopOptions):
    steps: int = 3000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 20
    eval_every: int = 50
    sample_every: int = 100
    ckpt_every: int = 50
    precision: str = "fp32"  # bf16 cost the patch tokenizer 0.7 dB
    model: str = "patch"  # the PCA-started patch tokenizer; tiny .. paper: the causal CNN (needs a GPU and hours)
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # 1000 codes, what a CPU-sized generator learns in minutes
    loss: str = "l2"  # l1 left round blobs where l2 keeps edges and corners
    vgg_weights: str | None = None
    lpips_weights: str | None = None
    perceptual_weight: float = 0.1
    perceptual_frames: int = 4
    disc_start: int = -1
    disc_weight: float = 0.1
    disc_channels: int = 32
    disc_lr: float | None = None
    init_clips: int = 64
    eval_clips: int = 16
    max_bad_fraction: float = 0.1
    data: DataConfig | None = None  # the clips (the command line's data options)

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.data, dict):  # from a checkpoint's JSON
            self.data = DataConfig(**self.data)
        self.fsq_levels = tuple(int(l) for l in self.fsq_levels)
        if self.model not in TOKENIZER_SIZES:
            raise ValueError(f"--model must be one of {sorted(TOKENIZER_SIZES)}, got {self.model!r}")
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"--loss must be 'l1' or 'l2', got {self.loss!r}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise ValueError(f"--max-bad-fraction must be in [0, 1], got {self.max_bad_fraction}")
        if self.init_clips < 1:
            raise ValueError(f"--init-clips must be >= 1, got {self.init_clips}")
        if self.lpips_weights and not self.vgg_weights:
            raise ValueError("--lpips-weights needs --vgg-weights (the VGG16 features they weigh)")
        if self.disc_start >= 0 and self.parallel == "fsdp":
            raise ValueError("--disc-start needs --parallel ddp: the GAN's adaptive weight takes the gradient of the "
                             "decoder's last layer, which fsdp shards")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TokenizerTrainConfig()
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=sorted(TOKENIZER_SIZES), default=d.model, help="named tokenizer size")
    g.add_argument("--fsq-levels", type=lambda s: tuple(int(x) for x in s.split(",")), default=d.fsq_levels,
                   help="FSQ levels, comma separated (default 8,5,5,5 = 1000 codes; the paper's 64 000: 8,8,8,5,5,5)")
    g.add_argument("--loss", choices=("l1", "l2"), default=d.loss,
                   help="reconstruction loss (default l2, which keeps straight edges and corners where l1 leaves "
                        "round blobs)")
    g.add_argument("--init-clips", type=int, default=d.init_clips, help="training clips whose PCA starts the patch tokenizer")
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
    g.add_argument("--eval-clips", type=int, default=d.eval_clips, help="held-out clips per evaluation")
    g.add_argument("--max-bad-fraction", type=float, default=d.max_bad_fraction,
                   help="stop when more than this share of video files is bad")
    add_loop_arguments(p, d, STAGE, eval_what="held-out PSNR/SSIM", sample_what="a side-by-side video")
    add_data_arguments(p, **DATA_DEFAULTS)


def configs_from_args(args: argparse.Namespace) -> tuple[TokenizerTrainConfig, DataConfig]:
    cfg = config_from_args(TokenizerTrainConfig, args)
    return cfg, data_config_from_args(args)


def main(args: argparse.Namespace) -> Path:
    cfg, data_cfg = configs_from_args(args)
    return train_tokenizer(cfg, data_cfg)


# ---------------------------------------------------------------------------------------------
def _init_from_data(model: VideoTokenizer, train_set, cfg: TokenizerTrainConfig, device: torch.device, verbose: bool) -> None:
    """Start the patch tokenizer from the PCA of the first ``--init-clips`` training clips (the same on every rank)."""
    n = min(cfg.init_clips, len(train_set))

    def batches():
        for i in range(0, n, cfg.batch_size):
            items = [train_set[j] for j in range(i, min(n, i + cfg.batch_size))]
            items = [it["video"] for it in items if it.get("video") is not None]
            if items:
                yield torch.stack(items).to(device)

    explained = model.init_from_data(batches())
    if verbose:
        print(f"patch tokenizer started from the PCA of {n} clips: {model.quantizer.dim} components explain "
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


class TokenizerStage(Stage):
    name, title, method = STAGE, "tokenizer", "forward"
    cpu_bf16 = False  # the patch tokenizer lost 0.7 dB in bf16 on a CPU
    model_options = MODEL_OPTIONS
    time_guesses = {"eval": 3, "samples": 1, "ckpt": 1}  # until timed, in training steps

    def __init__(self, cfg: TokenizerTrainConfig, info: DistInfo):
        self.cfg, self.info, data = cfg, info, cfg.data
        self.model = VideoTokenizer.from_name(cfg.model, fsq_levels=cfg.fsq_levels).to(info.device)
        self.model.config.check_clip(data.frames, data.size)
        if info.is_main:  # the main process builds a clip cache (if any) before the others open it
            self.train_set, self.val_set = build_dataset(data, "train"), build_dataset(data, "val")
        barrier(info)
        if not info.is_main:
            self.train_set, self.val_set = build_dataset(data, "train"), build_dataset(data, "val")
        self.train_size = len(self.train_set)
        self.tracker = (BadFileTracker(len(self.train_set), cfg.max_bad_fraction)
                        if isinstance(self.train_set, (VideoFileDataset, CachedClipDataset)) else None)
        self.perceptual = PerceptualLoss(cfg.vgg_weights, cfg.lpips_weights).to(info.device) if cfg.vgg_weights else None
        self.disc = self.disc_call = self.d_opt = None
        self._recon = self._video = None
        if cfg.resume is None and self.model.config.arch == "patch":
            _init_from_data(self.model, self.train_set, cfg, info.device, info.is_main)

    def new_run(self, run_dir: Path, cfg: TokenizerTrainConfig) -> None:
        save_args(run_dir, {"train": asdict(cfg), "data": asdict(cfg.data)})
        n_params = sum(p.numel() for p in self.model.parameters())
        d = cfg.data
        print(f"tokenizer: {n_params / 1e6:.2f}M parameters, {self.model.codebook_size} codes, {d.frames}x{d.size}x{d.size} "
              f"clips", flush=True)

    def optimizer(self, model, cfg):
        return build_optimizer(model, cfg.lr, cfg.weight_decay, CONV_BETAS)

    def prepare(self, parallel, cfg):
        self.parallel = parallel
        if cfg.disc_start < 0:
            return {}
        torch.manual_seed(cfg.seed + 1)  # the discriminator's start, the same on every process
        self.disc = PatchGAN3D(cfg.disc_channels).to(self.info.device)
        self.disc_call = parallelize(self.disc, parallel.mode, self.info).call
        self.d_opt = build_optimizer(self.disc, cfg.disc_lr or cfg.lr, cfg.weight_decay, CONV_BETAS)
        return {"disc": Part(self.disc, self.d_opt)}

    def loader(self, order: TrainingOrder):
        options = self.cfg.loader_options()
        return make_loader(self.train_set, self.cfg.batch_size, order, options, worker_count(self.train_set, options),
                           collate_fn=collate_clips, drop_last=True, pin_memory=self.info.device.type == "cuda")

    def epoch_start(self, epoch: int) -> None:
        if hasattr(self.train_set, "set_epoch"):  # new clip positions every epoch (workers start after this)
            self.train_set.set_epoch(epoch)

    def loss(self, call, batch):
        cfg = self.cfg
        if self.tracker is not None:
            self.tracker.update(batch)
        video = batch["video"].to(self.info.device, non_blocking=True)
        if video.shape[0] == 0:  # every file of the micro-batch was bad: a zero loss keeps the processes in step
            video = torch.zeros(0, 3, cfg.data.frames, cfg.data.size, cfg.data.size, device=self.info.device)
            recon, _ = call(video)
            zero = recon.float().sum() * 0
            return zero, {"loss/rec": zero.detach()}
        recon, _ = call(video)
        recon = recon.float()
        rec = (recon - video).abs().mean() if cfg.loss == "l1" else F.mse_loss(recon, video)
        loss, scalars = rec, {"loss/rec": rec.detach()}
        if self.perceptual is not None:
            p_loss = video_perceptual(self.perceptual, recon, video, cfg.perceptual_frames)
            loss = loss + cfg.perceptual_weight * p_loss
            scalars["loss/perceptual"] = p_loss.detach()
        self._recon, self._video = None, None
        if self.disc is not None and self.step >= cfg.disc_start:
            g_loss = g_hinge_loss(self.disc_call(recon))
            weight = adaptive_weight(loss, g_loss, self.model.decoder.last_layer_weight) * cfg.disc_weight
            loss = loss + weight * g_loss
            scalars.update({"loss/gan_g": g_loss.detach(), "gan/adaptive_weight": weight.detach()})
            self._recon, self._video = recon.detach(), video
        return loss, scalars

    def after_step(self, step):
        if self._recon is None:
            return {}
        d_loss = d_hinge_loss(self.disc_call(self._video), self.disc_call(self._recon))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        self._recon = self._video = None
        return {"loss/gan_d": d_loss.detach()}

    def evaluate(self, model, step, write):
        result = evaluate(model, self.val_set, self.cfg.eval_clips, self.cfg.batch_size, self.info.device)
        result.pop("_sample", None)
        if result:
            write(f"step {step}: held-out PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}, "
                  f"code usage {result['code_usage']:.3%}")
        return result

    def samples(self, model, step, run_dir, write):
        result = evaluate(model, self.val_set, 1, 1, self.info.device)
        return _write_sample(run_dir, step, result["_sample"]) if result.get("_sample") is not None else None

    def save_model(self, state, run_dir):
        plain = VideoTokenizer(self.model.config)
        plain.load_state_dict(state)
        plain.save_pretrained(run_dir / PRETRAINED_DIR)

    def epoch_end(self, write):
        if self.tracker is not None:
            line = self.tracker.end_epoch()
            if line:
                write(line)

    def closing(self, run_dir, last_sample):
        if self.tracker is not None and self.tracker.bad:
            print(self.tracker.total())
        print(f"model: {run_dir / PRETRAINED_DIR}, samples: {run_dir / 'samples'}, TensorBoard: {run_dir / 'tb'}")


def train_tokenizer(cfg: TokenizerTrainConfig, data_cfg: DataConfig | None = None) -> Path:
    """Train (or resume) and return the run folder; the model is in ``run_dir/tokenizer``."""
    if data_cfg is not None:
        cfg = replace(cfg, data=data_cfg)
    if cfg.data is None:
        cfg = replace(cfg, data=DataConfig(**DATA_DEFAULTS))
    return train(cfg, TokenizerStage, MODEL_OPTIONS)
