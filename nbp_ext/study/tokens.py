"""The study's one tokenizer and one set of token files, shared by every generator run.

The tokenizer stage trains the patch tokenizer once on the embedded set's easy variant (the stage's own
data defaults, with the study's clip length and clip counts), and ``python -m nbp_ext.tokenize``
encodes the training clips and the held-out clips once. The held-out split holds exactly the clips
every run is scored on: their first latent frames are the frame task's contexts, and the clips
themselves the true continuations.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data.builder import DataConfig
from ..evaluate.judge import run_data_config
from ..runs import TOKENIZER_DIR, TOKENS_DIR
from .config import StudyConfig
from ..records import read_record, write_record
from .stage_run import run_stage

FOLDER = "tokenizer"  # <out>/tokenizer: the tokenizer stage's run folder, with tokens/ inside
TRAINED = "trained.json"  # <out>/tokenizer/trained.json: the tokenizer's held-out scores once trained
TOKENIZED = "tokenized.json"  # <out>/tokenizer/tokenized.json: written once both splits are complete


@dataclass
class SharedTokens:
    tokenizer: Path  # the model folder
    tokens: Path  # with train/ and val/
    data: DataConfig  # the clips the tokens were made from
    scores: dict  # the tokenizer's held-out PSNR and SSIM, and the seconds its training and tokenizing took


def tokenizer_options(cfg: StudyConfig) -> list[str]:
    steps = cfg.tokenizer_steps
    return ["--steps", str(steps), "--frames", str(cfg.frames), "--train-clips", str(cfg.train_clips),
            "--val-clips", str(cfg.videos), "--eval-every", str(max(1, steps // 4)), "--sample-every", str(steps),
            "--ckpt-every", str(max(1, steps // 8)), "--seed", "0", "--device", cfg.device,
            *([] if cfg.progress else ["--no-progress"])]


def shared_tokens(cfg: StudyConfig, parser: argparse.ArgumentParser, log: Callable[[str], None]) -> SharedTokens:
    """Train the tokenizer and tokenize the clips, each unless done before in ``cfg.out``."""
    folder = Path(cfg.out) / FOLDER
    trained = read_record(folder / TRAINED)
    if trained is None:
        log(f"tokenizer: training the patch tokenizer for {cfg.tokenizer_steps} steps in {folder}")
        start = time.monotonic()
        run_stage(parser, "tokenizer", folder, tokenizer_options(cfg), log)
        trained = {**(read_record(folder / "eval.json") or {}), "seconds": round(time.monotonic() - start, 1)}
        write_record(folder / TRAINED, trained)
    else:
        log(f"tokenizer: trained before in {folder} (held-out PSNR {trained.get('psnr', float('nan')):.2f} dB)")
    tokens = folder / TOKENS_DIR
    if read_record(folder / TOKENIZED) is None:
        log(f"tokenize: the training and held-out clips into {tokens}")
        start = time.monotonic()
        args = parser.parse_args(["tokenize", "--tokenizer", str(folder / TOKENIZER_DIR), "--out", str(tokens),
                                  "--device", cfg.device, *([] if cfg.progress else ["--no-progress"])])
        args._main(args)
        write_record(folder / TOKENIZED, {"tokens": str(tokens), "seconds": round(time.monotonic() - start, 1)})
    data = run_data_config({}, str(tokens))
    scores = {k: trained[k] for k in ("psnr", "ssim", "seconds") if k in trained}
    scores["tokenize_seconds"] = (read_record(folder / TOKENIZED) or {}).get("seconds", 0.0)
    return SharedTokens(folder / TOKENIZER_DIR, tokens, data, scores)
