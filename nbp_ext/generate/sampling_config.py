"""How a block's tokens are drawn: ``SamplingConfig``, the one place its defaults live, and the
sampling options of the commands that generate (``sample``, ``evaluate``).

Every consumer takes these defaults: the training stage's sample videos (and it records what it
used in the run's ``generator.json``), ``sample`` and ``evaluate`` (through that record), the
export's manifest and hence ``run_engine``. The guidance scale 1.0 means no guidance everywhere.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass

NO_GUIDANCE = 1.0  # u + 1 * (c - u) = c: the conditional stream alone


@dataclass
class SamplingConfig:
    """Temperature (0: greedy), top-k (0: no cut), top-p (1: no cut), and the classifier-free guidance
    scale, which only a class-conditional model uses (it alone has the null class); the others
    always sample from their one stream. Defaults: the 30 likeliest codes without a nucleus cut,
    guidance 2.0 (see docs/results/pipeline.md); ``paper()`` gives the paper's settings."""

    temperature: float = 1.0
    top_k: int = 30
    top_p: float = 1.0
    guidance_scale: float = 2.0

    def __post_init__(self):
        for name in ("temperature", "top_p", "guidance_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0: no cut), got {self.top_k!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0: greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @classmethod
    def paper(cls) -> "SamplingConfig":
        """The paper's sampling: top-k 16 000, top-p 0.9."""
        return cls(top_k=16000, top_p=0.9)

    def guided(self, condition: str) -> bool:
        """Whether a model with this condition samples two streams (conditional and null class)."""
        return condition == "class" and self.guidance_scale != NO_GUIDANCE

    def for_condition(self, condition: str) -> "SamplingConfig":
        """The settings a model with this condition uses: no guidance without a null class."""
        return self if condition == "class" else SamplingConfig(**{**asdict(self), "guidance_scale": NO_GUIDANCE})


def recorded_sampling(info: dict) -> SamplingConfig:
    """A run's sampling: what its ``generator.json`` records under "sampling" (the settings of the
    training stage's sample videos) over the defaults."""
    recorded = info.get("sampling", {})
    if not isinstance(recorded, dict):
        raise ValueError(f"generator.json: sampling must be an object, got {recorded!r}")
    known = asdict(SamplingConfig())
    return SamplingConfig(**{**known, **{k: v for k, v in recorded.items() if k in known}})


def add_sampling_arguments(ap: argparse.ArgumentParser) -> None:
    """``--guidance-scale``, ``--temperature``, ``--top-k``, ``--top-p``, each defaulting to the run's own."""
    d = SamplingConfig()
    ap.add_argument("--guidance-scale", type=float, default=None,
                    help=f"classifier-free guidance scale (class models; default: the run's, {d.guidance_scale}; "
                         f"{NO_GUIDANCE} turns it off)")
    ap.add_argument("--temperature", type=float, default=None, help=f"default: the run's ({d.temperature}; 0: greedy)")
    ap.add_argument("--top-k", type=int, default=None,
                    help=f"default: the run's, that is the training stage's --sample-top-k ({d.top_k}; paper: 16000)")
    ap.add_argument("--top-p", type=float, default=None,
                    help=f"default: the run's, that is the training stage's --sample-top-p ({d.top_p}; paper: 0.9)")


def resolve_sampling(args: argparse.Namespace, info: dict, condition: str) -> SamplingConfig:
    """The sampling options given on the command line over the run's recorded ones."""
    for flag, value in (("--guidance-scale", args.guidance_scale), ("--temperature", args.temperature),
                        ("--top-p", args.top_p)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number, got {value}")
    if args.guidance_scale is not None and condition != "class":
        raise ValueError(f"--guidance-scale needs a class-conditional model; this one is conditioned on {condition!r}")
    given = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
             "guidance_scale": args.guidance_scale}
    run = asdict(recorded_sampling(info))
    try:
        sampling = SamplingConfig(**{k: run[k] if v is None else v for k, v in given.items()})
    except ValueError as e:
        raise ValueError(f"--{str(e).replace('_', '-')}") from None
    return sampling.for_condition(condition)
