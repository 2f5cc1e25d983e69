"""Options of the generator training stage (``python -m nbp_ext.train generator``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..generate.sampling_config import SamplingConfig
from ..models.generator_config import CONDITIONS, GENERATOR_SIZES, STARTS, STYLES
from .options import LoopOptions, add_loop_arguments

_SAMPLING = SamplingConfig()


@dataclass
class GeneratorTrainConfig(LoopOptions):
    tokens: str | None = None  # token folder (with train/ and val/); default: the newest runs/tokenizer-*/tokens
    tokenizer: str | None = None  # tokenizer folder for sample videos; default: beside the tokens
    model: str = "tiny"
    style: str | None = None  # override the size's style
    block: str = "row"  # row (1,1,W'), frame (1,H',W'), token (1,1,1) or bt,bh,bw
    condition: str = "class"
    context_frames: int = 2
    cond_dropout: float = 0.1
    start: str = "hybrid"  # the first row token by token: one background colour per sample, not streaks
    # the sample videos' sampling; recorded in the run, it becomes the default of sample, evaluate, export
    sample_guidance_scale: float = _SAMPLING.guidance_scale
    sample_top_k: int = _SAMPLING.top_k
    sample_top_p: float = _SAMPLING.top_p

    def __post_init__(self):
        super().__post_init__()
        if self.model not in GENERATOR_SIZES:
            raise ValueError(f"--model must be one of {sorted(GENERATOR_SIZES)}, got {self.model!r}")
        if self.style is not None and self.style not in STYLES:
            raise ValueError(f"--style must be one of {STYLES}, got {self.style!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"--condition must be one of {CONDITIONS}, got {self.condition!r}")
        try:
            self.sampling
        except ValueError as e:
            raise ValueError(f"--sample-{str(e).replace('_', '-')}") from None

    @property
    def sampling(self) -> SamplingConfig:
        """The sample videos' sampling (the guidance scale is used by class-conditional models only)."""
        return SamplingConfig(top_k=self.sample_top_k, top_p=self.sample_top_p, guidance_scale=self.sample_guidance_scale)


# Options that define the model: a resumed run cannot change them.
MODEL_OPTIONS = ("model", "style", "block", "condition", "context_frames", "start")


def parse_block(spec: str, grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """'row' -> (1, 1, W'), 'frame' -> (1, H', W'), 'token' -> (1, 1, 1), 'bt,bh,bw' -> as given."""
    named = {"row": (1, 1, grid[2]), "frame": (1, grid[1], grid[2]), "token": (1, 1, 1)}
    if spec in named:
        return named[spec]
    try:
        block = tuple(int(x) for x in spec.split(","))
    except ValueError:
        block = ()
    if len(block) != 3:
        raise ValueError(f"--block must be row, frame, token or bt,bh,bw, got {spec!r}")
    return block


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = GeneratorTrainConfig()
    g = p.add_argument_group("data and model")
    g.add_argument("--tokens", default=None, help="token folder from python -m nbp_ext.tokenize (default: the newest runs/tokenizer-*/tokens)")
    g.add_argument("--tokenizer", default=None, help="tokenizer folder, to decode sample videos (default: the one that made the tokens)")
    g.add_argument("--model", choices=sorted(GENERATOR_SIZES), default=d.model, help="named generator size")
    g.add_argument("--style", choices=STYLES, default=None, help="llama (RMSNorm, SwiGLU, rotary) or gpt2 (the paper's); default: the size's")
    g.add_argument("--block", default=d.block, help="block shape: row (default, one latent row), frame, token (NTP) or bt,bh,bw")
    g.add_argument("--condition", choices=CONDITIONS, default=d.condition, help="class labels, first latent frames, or none")
    g.add_argument("--context-frames", type=int, default=d.context_frames, help="latent frames given for --condition frames")
    g.add_argument("--cond-dropout", type=float, default=d.cond_dropout, help="share of clips trained with the null class (for guidance)")
    g.add_argument("--start-block", dest="start", choices=STARTS, default=d.start,
                   help="first video block: a learned start block (one step) or hybrid (token by token, then blocks)")
    add_loop_arguments(p, d, "generator", eval_what="held-out token loss", sample_what="a grid of generated videos")
    g = p.add_argument_group("sample videos")
    g.add_argument("--sample-guidance-scale", type=float, default=d.sample_guidance_scale, help="guidance scale of the sample videos (class models)")
    g.add_argument("--sample-top-k", type=int, default=d.sample_top_k, help="0: no cut (the paper: 16000)")
    g.add_argument("--sample-top-p", type=float, default=d.sample_top_p, help="1: no cut (the paper: 0.9)")
