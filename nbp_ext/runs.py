"""Run folders: the names of what a training run writes, and loading a generator run back.

``runs/tokenizer-<time>/`` holds ``tokenizer/`` (the model) and ``tokens/`` (the token files);
``runs/generator-<time>/`` holds ``generator/`` (the model) and ``generator.json`` (``RUN_INFO``: the
tokenizer and tokens it was trained from, the tokenizer's SHA-256, class names, the sampling of its
sample videos, read by ``generate.sampling_config.recorded_sampling``). Both hold ``args.json``, ``checkpoints/``, ``metrics.jsonl``, ``tb/``, ``samples/``.
Commands and stages take these names from here.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .models import Generator, VideoTokenizer
from .models.pretrained import WEIGHTS_FILE, file_sha256

TOKENIZER_DIR = "tokenizer"  # runs/tokenizer-<time>/tokenizer: config.json + model.safetensors
TOKENS_DIR = "tokens"  # runs/tokenizer-<time>/tokens/{train,val}: memory-mapped token files
GENERATOR_DIR = "generator"  # runs/generator-<time>/generator: config.json + model.safetensors
RUN_INFO = "generator.json"  # runs/generator-<time>/generator.json


def new_run_dir(runs_root: str | os.PathLike, stage: str) -> Path:
    """A new ``runs_root/<stage>-<YYYYmmdd-HHMMSS>`` folder (a suffix -2, -3 .. where that exists)."""
    root = Path(runs_root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stage}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stage}-{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def latest_run_dir(runs_root: str | os.PathLike, stage: str, must_contain: str | None = None) -> Path | None:
    """Newest ``runs_root/<stage>-*`` folder (holding ``must_contain`` when given), or None."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    runs = [p for p in root.glob(f"{stage}-*") if p.is_dir() and (must_contain is None or (p / must_contain).exists())]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def given_or_newest(given: str | os.PathLike | None, runs_root: str | os.PathLike, stage: str, part: str,
                    marker: str, missing: str) -> Path:
    """``given`` as a path, else ``<part>`` of the newest ``runs_root/<stage>-*`` holding ``<part>/<marker>``;
    FileNotFoundError(``missing``) where there is none."""
    if given:
        return Path(given)
    run = latest_run_dir(runs_root, stage, must_contain=f"{part}/{marker}")
    if run is None:
        raise FileNotFoundError(missing)
    return run / part


def save_args(run_dir: Path, args: dict, name: str = "args.json") -> None:
    (run_dir / name).write_text(json.dumps(args, indent=2, default=str) + "\n")


def load_tokenizer(directory: str | Path, vocab_size: int, device) -> VideoTokenizer:
    """The tokenizer, checked against the generator's vocabulary."""
    tok = VideoTokenizer.from_pretrained(directory).to(device).eval()
    if tok.codebook_size != vocab_size:
        raise ValueError(f"the tokenizer in {directory} has {tok.codebook_size} codes but the generator was trained on "
                         f"{vocab_size}: give the tokenizer the generator's tokens came from (--tokenizer)")
    return tok


def read_run_info(run: Path) -> dict:
    """A generator run's ``RUN_INFO`` ({} where the run has none)."""
    path = Path(run) / RUN_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({str(e)[:80]})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return info


def load_run(run: str | Path, device, tokenizer: str | None = None) -> tuple[Generator, VideoTokenizer, dict]:
    run = Path(run)
    if not (run / GENERATOR_DIR).is_dir():
        raise FileNotFoundError(f"--run must be a generator run folder with {GENERATOR_DIR}/ "
                                f"(made by python -m nbp_ext.train generator), got {run}")
    model = Generator.from_pretrained(run / GENERATOR_DIR).to(device).eval()
    info = read_run_info(run)
    tok_dir = tokenizer or info.get("tokenizer")
    if not tok_dir:
        raise FileNotFoundError(f"no tokenizer recorded in {run / RUN_INFO}: give --tokenizer")
    expected = info.get("tokenizer_sha256")  # the tokenizer the generator's tokens came from
    if expected and (Path(tok_dir) / WEIGHTS_FILE).is_file() and file_sha256(Path(tok_dir) / WEIGHTS_FILE) != expected:
        raise ValueError(f"tokenizer {tok_dir} is not the one this generator was trained on ({run / RUN_INFO} records "
                         "another SHA-256 of its weights)")
    return model, load_tokenizer(tok_dir, model.config.vocab_size, device), info
