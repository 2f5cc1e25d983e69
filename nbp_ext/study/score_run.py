"""Scoring one trained generator run on the held-out clips.

- held-out token loss (nats/token, overall and per generated latent frame): the generator stage's
  own evaluation, on every held-out clip;
- generated videos, with the run's recorded sampling and seeds 0 .. N-1 for every run (the same
  random numbers for every shape): frame task, one continuation per held-out clip from its context
  latent frames, scored frame by frame (PSNR, SSIM) against the true continuation; class task,
  the classes in turn, N videos in all;
- the judge's accuracy (and shape / motion accuracy) against the asked or true classes, and the
  Fréchet distance of its features to the true clips' (``nbp_ext.evaluate``);
- generation steps per video, and seconds per video generated one at a time (the median of a few,
  after one untimed video) and in batches of the scoring run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..data import TokenDataset
from ..evaluate.scoring import generated_videos, score
from ..generate import generate
from ..generate.sampling_config import recorded_sampling
from ..runs import load_run
from ..train.generator import evaluate as held_out_loss
from .config import StudyConfig
from .frame_metrics import per_frame_scores
from .held_out import HeldOut
from .plan import RunSpec

BATCH = 48  # videos generated at once (the scoring command's default)
GENERATION_SEED = 0


def _conditions(model, spec: RunSpec, held: HeldOut, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(what the model is conditioned on (count, ...), the classes the videos should show (count,))."""
    if spec.task == "frames":
        context, _ = model.split_codes(held.codes[:count])
        return context, held.labels[:count]
    classes = model.config.num_classes
    per_class = -(-count // classes)
    labels = torch.arange(classes).repeat_interleave(per_class)[:count]
    return labels, labels


@torch.no_grad()
def time_one_video(model, cond: torch.Tensor, sampling, videos: int) -> float:
    """Median seconds to generate one video alone (the latency the block size is meant to cut)."""
    device = next(model.parameters()).device
    generate(model, cond[:1].to(device), seed=GENERATION_SEED, sampling=sampling)  # untimed: packs the weights
    times = []
    for i in range(videos):
        start = time.perf_counter()
        generate(model, cond[i % cond.shape[0] : i % cond.shape[0] + 1].to(device), seed=GENERATION_SEED + i,
                 sampling=sampling)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def score_run(cfg: StudyConfig, spec: RunSpec, run_dir: Path, tokens: Path, held: HeldOut, judge,
              reference_features: torch.Tensor, device: torch.device) -> dict:
    model, tokenizer, info = load_run(run_dir, device)
    mcfg = model.config
    count = held.codes.shape[0]
    loss = held_out_loss(model, TokenDataset(tokens / "val"), device, cfg.batch_size, max_clips=count)
    model.eval()
    sampling = recorded_sampling(info).for_condition(mcfg.condition)
    cond, labels = _conditions(model, spec, held, count)
    start = time.perf_counter()
    videos = generated_videos(model, tokenizer, cond, count, sampling, GENERATION_SEED, BATCH, cfg.progress)
    batch_seconds = (time.perf_counter() - start) / count
    record = {"task": spec.task, "shape": spec.shape, "seed": spec.seed, "block": list(mcfg.block),
              "block_len": mcfg.block_len, "steps_per_video": mcfg.num_steps, "params": model.num_params(),
              "tokens_seen": cfg.steps * cfg.batch_size * mcfg.layout.seq_len,  # the clips' codes, context included
              "held_out_loss": loss["loss"], "loss_per_latent_frame": loss["per_frame"], "uniform_loss": loss["uniform"],
              "sampling": asdict(sampling), "videos": count}
    row, _ = score(judge, videos, labels, reference_features, held.class_names or None)
    row.pop("per_class", None)
    record["judge"] = row
    if spec.task == "frames":
        record.update(per_frame_scores(videos, held.videos[:count], cfg.context_pixel_frames))
    record["seconds_per_video"] = time_one_video(model, cond, sampling, cfg.timing_videos)
    record["seconds_per_video_batched"] = batch_seconds
    return record
