"""Run folders: the names of what a training run writes, and loading a generator run back.

``runs/tokenizer-<time>/`` holds ``tokenizer/`` (the model) and ``tokens/`` (the token files);
``runs/nbp-<time>/`` holds ``generator/`` (the model) and ``generator.json`` (``RUN_INFO``: the
tokenizer and tokens it was trained from, the tokenizer's SHA-256, class names, the sampling of its
sample videos). Both hold ``args.json``, ``checkpoints/``, ``metrics.jsonl``, ``tb/``, ``samples/``.
Commands and stages take these names from here.
"""

from __future__ import annotations

import json
from pathlib import Path

from .generate import SamplingConfig
from .models import NBPTransformer, VideoTokenizer
from .models.pretrained import WEIGHTS_FILE, file_sha256

TOKENIZER_DIR = "tokenizer"  # runs/tokenizer-<time>/tokenizer: config.json + model.safetensors
TOKENS_DIR = "tokens"  # runs/tokenizer-<time>/tokens/{train,val}: memory-mapped token files
GENERATOR_DIR = "generator"  # runs/nbp-<time>/generator: config.json + model.safetensors
RUN_INFO = "generator.json"  # runs/nbp-<time>/generator.json


def load_tokenizer(directory: str | Path, vocab_size: int, device) -> VideoTokenizer:
    """The tokenizer, checked against the generator's vocabulary."""
    tok = VideoTokenizer.from_pretrained(directory).to(device).eval()
    if tok.codebook_size != vocab_size:
        raise ValueError(f"the tokenizer in {directory} has {tok.codebook_size} codes but the generator was trained on "
                         f"{vocab_size}: give the tokenizer the generator's tokens came from (--tokenizer)")
    return tok


def recorded_sampling(info: dict) -> dict:
    """Sampling defaults of a run: what its generator.json records under "sampling" (the settings of
    the training stage's sample videos), over ``SamplingConfig``'s (the paper's) with guidance 2.0."""
    paper = SamplingConfig()
    return {"temperature": paper.temperature, "top_k": paper.top_k, "top_p": paper.top_p, "cfg_scale": 2.0,
            **info.get("sampling", {})}


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


def load_run(run: str | Path, device, tokenizer: str | None = None) -> tuple[NBPTransformer, VideoTokenizer, dict]:
    run = Path(run)
    if not (run / GENERATOR_DIR).is_dir():
        raise FileNotFoundError(f"--run must be a generator run folder with {GENERATOR_DIR}/ "
                                f"(made by python -m nbp_ext.train nbp), got {run}")
    model = NBPTransformer.from_pretrained(run / GENERATOR_DIR).to(device).eval()
    info = read_run_info(run)
    tok_dir = tokenizer or info.get("tokenizer")
    if not tok_dir:
        raise FileNotFoundError(f"no tokenizer recorded in {run / RUN_INFO}: give --tokenizer")
    expected = info.get("tokenizer_sha256")  # the tokenizer the generator's tokens came from
    if expected and (Path(tok_dir) / WEIGHTS_FILE).is_file() and file_sha256(Path(tok_dir) / WEIGHTS_FILE) != expected:
        raise ValueError(f"tokenizer {tok_dir} is not the one this generator was trained on ({run / RUN_INFO} records "
                         "another SHA-256 of its weights)")
    return model, load_tokenizer(tok_dir, model.config.vocab_size, device), info
