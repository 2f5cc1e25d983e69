"""Training one generator run of the study with the generator stage (``python -m nbp_ext.train generator``).

Every run gets the same model size, steps, batch and learning rate schedule; only the block, the
task and the seed differ. The held-out loss is evaluated and one grid of sample
videos written at the last step only, and a checkpoint every quarter of the run lets an interrupted
run continue (``stage_run.py``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

from .config import StudyConfig
from .plan import RunSpec
from ..records import read_record, write_record
from .shapes import block_arg, block_shape
from .stage_run import run_stage
from .tokens import SharedTokens

TRAINED = "trained.json"  # <run>/trained.json: written when the stage has finished


def generator_options(cfg: StudyConfig, spec: RunSpec, shared: SharedTokens, grid: tuple[int, int, int]) -> list[str]:
    steps = cfg.steps
    return ["--tokens", str(shared.tokens), "--tokenizer", str(shared.tokenizer), "--model", cfg.model,
            "--block", block_arg(block_shape(spec.shape, grid)), "--condition", spec.task,
            "--context-frames", str(cfg.context_frames), "--start-block", cfg.start, "--steps", str(steps),
            "--batch-size", str(cfg.batch_size), "--lr", str(cfg.lr), "--warmup", str(min(cfg.warmup, steps)),
            "--seed", str(spec.seed), "--eval-every", str(steps), "--sample-every", str(steps),
            "--ckpt-every", str(max(1, steps // 4)), "--num-workers", "0", "--device", cfg.device,
            *([] if cfg.progress else ["--no-progress"])]


def train_run(cfg: StudyConfig, spec: RunSpec, shared: SharedTokens, grid: tuple[int, int, int], run_dir: Path,
              parser: argparse.ArgumentParser, log: Callable[[str], None]) -> dict:
    """Train the run unless trained before; returns its record (training seconds)."""
    trained = read_record(run_dir / TRAINED)
    if trained is not None:
        return trained
    start = time.monotonic()
    run_stage(parser, "generator", run_dir, generator_options(cfg, spec, shared, grid), log)
    record = {"seconds": round(time.monotonic() - start, 1)}
    write_record(run_dir / TRAINED, record)
    return record
