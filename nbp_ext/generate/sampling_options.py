"""The sampling options of the commands that generate (``sample``, ``evaluate``): each defaults to
what the run records, the settings of its training stage's sample videos."""

from __future__ import annotations

import argparse
import math

from ..runs import recorded_sampling
from .loop import SamplingConfig


def add_sampling_arguments(ap: argparse.ArgumentParser) -> None:
    """``--cfg``, ``--temperature``, ``--top-k``, ``--top-p``, each defaulting to the run's own."""
    ap.add_argument("--cfg", type=float, default=None,
                    help="classifier-free guidance scale (class models; default: the run's, 2.0; 1 turns it off)")
    ap.add_argument("--temperature", type=float, default=None, help="default: the run's (1.0)")
    ap.add_argument("--top-k", type=int, default=None,
                    help="default: the run's, that is the training stage's --sample-top-k (paper: 16000)")
    ap.add_argument("--top-p", type=float, default=None,
                    help="default: the run's, that is the training stage's --sample-top-p (paper: 0.9)")


def resolve_sampling(args: argparse.Namespace, info: dict, condition: str) -> SamplingConfig:
    """The sampling options given on the command line over the run's recorded ones."""
    run_sampling = recorded_sampling(info)
    given = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
    for flag, value in (("--cfg", args.cfg), ("--temperature", args.temperature), ("--top-p", args.top_p)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number, got {value}")
    if condition == "class":
        cfg_scale = run_sampling["cfg_scale"] if args.cfg is None else args.cfg
    elif args.cfg is not None:
        raise ValueError(f"--cfg needs a class-conditional model; this one is conditioned on {condition!r}")
    else:
        cfg_scale = None
    return SamplingConfig(**{k: run_sampling[k] if v is None else v for k, v in given.items()}, cfg_scale=cfg_scale)
