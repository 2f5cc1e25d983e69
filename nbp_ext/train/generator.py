"""Generator training stage: ``python -m nbp_ext.train generator [options]``.

Trains the NBP transformer on a token folder (``python -m nbp_ext.tokenize``): NBP shift, loss on
video tokens only (overall and per position in the block); AdamW without decay on norms, biases and
embeddings; held-out loss per generated latent frame and a grid of generated videos at intervals.
The training loop (processes, ddp / fsdp, precision, schedule, checkpoints, resume) is ``loop.py``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from ..data import TokenDataset
from ..data.builder import worker_count
from ..data.loader import make_loader
from ..data.training_order import TrainingOrder
from ..models import Generator
from ..models.generator_config import generator_config_from_name
from ..models.pretrained import WEIGHTS_FILE
from ..generate.videos import GRID_VIDEOS, write_sample_grid
from ..runs import GENERATOR_DIR, RUN_INFO, TOKENIZER_DIR, TOKENS_DIR, given_or_newest, load_tokenizer, save_args
from .distributed import DistInfo
from .loop import Stage, train
from .generator_options import MODEL_OPTIONS, GeneratorTrainConfig, add_arguments, parse_block  # noqa: F401  (add_arguments: stage API)
from .options import config_from_args
from .schedule import GENERATOR_BETAS, build_optimizer

STAGE = "generator"


def main(args: argparse.Namespace) -> Path:
    return train_generator(config_from_args(GeneratorTrainConfig, args))


def resolve_tokens(cfg: GeneratorTrainConfig) -> Path:
    return given_or_newest(cfg.tokens, cfg.runs_root, "tokenizer", TOKENS_DIR, "train/meta.json",
                           f"--tokens not given and no {cfg.runs_root}/tokenizer-*/tokens found; "
                           "run python -m nbp_ext.train tokenizer and python -m nbp_ext.tokenize first")


@torch.no_grad()
def evaluate(model: Generator, val: TokenDataset, device: torch.device, batch_size: int, max_clips: int = 64) -> dict:
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


class GeneratorStage(Stage):
    name, title, method = STAGE, "generator", "loss"
    model_options = MODEL_OPTIONS
    # until timed, in training steps: a held-out pass over 64 clips, a grid of 12 videos, a checkpoint
    time_guesses = {"eval": 2, "samples": 20, "ckpt": 1}

    def __init__(self, cfg: GeneratorTrainConfig, info: DistInfo):
        self.cfg, self.info = cfg, info
        self.tokens_dir = resolve_tokens(cfg)
        self.train_set = TokenDataset(self.tokens_dir / "train")
        self.val_set = TokenDataset(self.tokens_dir / "val") if (self.tokens_dir / "val" / "meta.json").is_file() else None
        self.train_size = len(self.train_set)
        grid = tuple(self.train_set.latent_shape)
        overrides = dict(vocab_size=self.train_set.vocab_size, grid=grid, block=parse_block(cfg.block, grid),
                         condition=cfg.condition, context_frames=cfg.context_frames, cond_dropout=cfg.cond_dropout,
                         start=cfg.start, num_classes=_num_classes(self.train_set))
        if cfg.style:
            overrides["style"] = cfg.style
        self.model = Generator(generator_config_from_name(cfg.model, **overrides)).to(info.device)
        self.mcfg = self.model.config
        self.tokens_per_clip = self.mcfg.video_len
        self.tokenizer_dir = Path(cfg.tokenizer) if cfg.tokenizer else self.tokens_dir.parent / TOKENIZER_DIR
        self.tokenizer = None

    def new_run(self, run_dir: Path, cfg: GeneratorTrainConfig) -> None:
        mcfg = self.mcfg
        save_args(run_dir, {"train": asdict(cfg), "model": asdict(mcfg)})
        (run_dir / RUN_INFO).write_text(json.dumps({
            "tokens": str(self.tokens_dir), "tokenizer": str(self.tokenizer_dir),
            "tokenizer_sha256": self.train_set.meta.get("info", {}).get("tokenizer_sha256"),
            "class_names": self.train_set.class_names,
            "sampling": asdict(cfg.sampling)}, indent=2) + "\n")
        print(f"generator: {self.model.num_params() / 1e6:.2f}M parameters, {mcfg.num_steps} steps of {mcfg.block_len} "
              f"tokens per clip, grid {mcfg.grid}, block {mcfg.block}, vocabulary {mcfg.vocab_size}, on {self.info.device}",
              flush=True)

    def optimizer(self, model, cfg):
        return build_optimizer(model, cfg.lr, cfg.weight_decay, GENERATOR_BETAS)

    def loader(self, order: TrainingOrder):
        # no shuffling of its own: the order is the loop's; the loader's generator keeps epochs from
        # drawing on the global RNG, which the condition dropout uses and a checkpoint restores
        options = self.cfg.loader_options()
        return make_loader(self.train_set, self.cfg.batch_size, order, options, worker_count(self.train_set, options),
                           drop_last=True, pin_memory=self.info.device.type == "cuda",
                           generator=torch.Generator().manual_seed(self.cfg.seed))

    def loss(self, call, batch):
        device = self.info.device
        codes = batch["codes"].to(device, non_blocking=True)
        labels = batch["label"].to(device) if self.mcfg.condition == "class" else None
        out = call(codes, labels)
        per_pos = out["per_position"]
        scalars = {"loss/train": out["loss"].detach(), **{f"loss_pos/{i:03d}": v for i, v in enumerate(per_pos)}}
        return out["loss"], scalars

    def evaluate(self, model, step, write):
        if self.val_set is None or not len(self.val_set):
            return {}
        result = evaluate(model, self.val_set, self.info.device, self.cfg.batch_size)
        frames = " ".join(f"{v:.3f}" for v in result["per_frame"])
        write(f"step {step}: held-out loss {result['loss']:.3f} nats/token (uniform {result['uniform']:.3f}; "
              f"per latent frame {frames})")
        return {"loss": result["loss"], **{f"loss_frame/{i:02d}": v for i, v in enumerate(result["per_frame"])},
                "per_frame": result["per_frame"], "uniform": result["uniform"]}

    def samples(self, model, step, run_dir, write):
        if self.tokenizer is None:
            self.tokenizer = (load_tokenizer(self.tokenizer_dir, self.mcfg.vocab_size, self.info.device)
                              if (self.tokenizer_dir / WEIGHTS_FILE).is_file() else False)
        if self.tokenizer is False:
            return None
        cfg = self.cfg
        path = write_sample_grid(model, self.tokenizer, run_dir / "samples" / f"step_{step:07d}.mp4", self.val_set,
                                 cfg.sampling, seed=cfg.seed)
        write(f"step {step}: samples in {path}")
        return path

    def save_model(self, state, run_dir):
        plain = Generator(self.mcfg)
        plain.load_state_dict(state)
        plain.save_pretrained(run_dir / GENERATOR_DIR)

    def closing(self, run_dir, last_sample):
        print(f"model: {run_dir / GENERATOR_DIR}, samples: {run_dir / 'samples'}, TensorBoard: {run_dir / 'tb'}")
        if last_sample:
            print(f"latest sample video: {last_sample} ({_grid_legend(self.mcfg, self.train_set.class_names)})")


def train_generator(cfg: GeneratorTrainConfig) -> Path:
    """Train (or resume) and return the run folder; the model is in ``run_dir/generator``."""
    return train(cfg, GeneratorStage, MODEL_OPTIONS)
