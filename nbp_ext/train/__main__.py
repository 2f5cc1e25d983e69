"""``python -m nbp_ext.train [--preset NAME | STAGE [options]]``.

With no stage every stage of ``PIPELINE`` runs in order on its defaults (``PIPELINE_DEFAULTS``,
then the chosen preset's ``PIPELINE_PRESETS`` on top), each handed the results of the ones before
through ``PIPELINE_ARGS``. A stage is a module with
``add_arguments(parser)`` and ``main(args) -> Path``; adding one is a line in ``STAGES`` (and in
``PIPELINE``, with a ``PIPELINE_ARGS`` entry when it needs an earlier stage's output).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

# name -> (module, one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "tokenizer": ("nbp_ext.train.tokenizer", "train the video tokenizer"),
    "tokenize": ("nbp_ext.tokenize", "encode a data set into token files with a trained tokenizer"),
    "nbp": ("nbp_ext.train.nbp", "train the NBP generator on token files"),
}
PIPELINE: tuple[str, ...] = ("tokenizer", "tokenize", "nbp")


def _pipeline_args_tokenize(results: dict[str, Path]) -> list[str]:
    run = results["tokenizer"]
    return ["--tokenizer", str(run / "tokenizer"), "--out", str(run / "tokens")]


def _pipeline_args_nbp(results: dict[str, Path]) -> list[str]:
    run = results["tokenizer"]
    return ["--tokens", str(results["tokenize"]), "--tokenizer", str(run / "tokenizer")]


# Defaults of the no-argument pipeline, chosen to finish on a 2-core CPU:
# - the synthetic clips on plain backgrounds, with object and background colours from six fixed
#   ones each (same shapes, motions and positions as the default set): with textures and free
#   colours a tiny generator's held-out loss was 1.18 nats/token after 1200 steps and its samples
#   mosaics or empty backgrounds; with plain backgrounds alone 0.85 and objects in few samples, since
#   an object's first codes spread over hundreds of colour codes; with the palette 0.52 after 1000
#   steps and an object in nearly every sample, 0.47 after 1300 (0.50 with rotary theta 10 000);
# - the patch codec (space /4, started from PCA, borders padded by repetition), which reconstructs
#   the synthetic shapes within a minute, where the causal CNN needs hours to leave its blurry early
#   plateau; in fp32, since bf16 cost it 0.7 dB; 600 steps: with 1200 (and 150 fewer generator
#   steps, the same wall time) python -m nbp_ext.evaluate scores the samples alike (accuracy 0.27
#   against 0.26: shapes better, motion worse), though the reconstructions score 0.60 against 0.42;
# - 9 frames of 48x48 (3 x 12 x 12 = 432 tokens per clip), so that an object spans 4-6 codes and
#   the generator still gets several passes over the set;
# - 8000 training clips, so the generator sees each clip about 2.6 times (with 2000 it overfits:
#   held-out loss 1.51 against 1.21 on training clips after 800 steps);
# - 1300 generator steps of 16 clips: about 0.37 s each in bf16 on a 2-core AVX512-BF16 CPU (10
#   minutes for the pipeline), 0.55 s in fp32 where a CPU lacks bf16 instructions (13.5 minutes);
# - a 1000-code FSQ codebook (8, 5, 5, 5) instead of the paper's 64 000, which a tiny generator
#   cannot learn in minutes;
# - the hybrid start: the first row token by token, so that a sample's background colour is one
#   draw, not twelve independent ones (with the learned start the samples are vertical streaks);
# - sample videos drawn from the 30 likeliest codes without a nucleus cut: top-p 0.9 removes the
#   few-percent chance of an object starting at a position, so objects almost never appeared.
PIPELINE_DEFAULTS = {
    "tokenizer": ["--model", "patch", "--fsq-levels", "8,5,5,5", "--frames", "9", "--size", "48", "--train-clips", "8000",
                  "--background", "plain", "--palette", "--steps", "600", "--batch-size", "8", "--lr", "1e-3", "--precision", "fp32"],
    "nbp": ["--steps", "1300", "--start", "hybrid", "--sample-top-k", "30", "--sample-top-p", "1.0"],
}

# Whole-pipeline presets: arguments appended to PIPELINE_DEFAULTS (the last value of an option wins).
# Times and scores on a 2-core AVX512-BF16 CPU (python -m nbp_ext.evaluate; bench/RESULTS.md):
# - quick (the default): about 10 minutes; reconstructions 0.42 and samples 0.26 accuracy
#   (chance 0.083): objects of the class colours, blobs rather than shapes;
# - long: about 50 minutes: the codec 1500 steps (reconstructions 0.60), 20 800 clips tokenized,
#   the generator 8000 steps; samples 0.52 (shape 0.73, motion 0.72):
#   one-coloured squares, triangles and crosses that move as their class does, digits as strokes.
PIPELINE_PRESETS: dict[str, dict[str, list[str]]] = {
    "quick": {},
    "long": {
        "tokenizer": ["--steps", "1500"],
        "tokenize": ["--train-clips", "20800"],
        "nbp": ["--steps", "8000", "--eval-every", "1000", "--sample-every", "2000", "--ckpt-every", "500"],
    },
}


# Arguments a stage gets from earlier stages when the whole pipeline runs.
PIPELINE_ARGS = {"tokenize": _pipeline_args_tokenize, "nbp": _pipeline_args_nbp}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nbp_ext.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PIPELINE_PRESETS), default=None,
                   help="without a stage: run the whole pipeline with this preset: quick (the default, about 10 "
                        "minutes on 2 CPU cores) or long (about 50 minutes, clearer shapes)")
    sub = p.add_subparsers(dest="stage", metavar="STAGE",
                           help=f"one of {', '.join(STAGES)}; none: run {' -> '.join(PIPELINE)} with --preset (default quick)")
    for name, (module, help_line) in STAGES.items():
        mod = importlib.import_module(module)
        sp = sub.add_parser(name, help=help_line, description=mod.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
        sp.set_defaults(_main=mod.main)
    return p


def pipeline_stage_args(name: str, preset: str, results: dict[str, Path]) -> list[str]:
    """The command line of pipeline stage ``name`` under ``preset``, given the earlier stages' results."""
    if preset not in PIPELINE_PRESETS:
        raise ValueError(f"preset must be one of {sorted(PIPELINE_PRESETS)}, got {preset!r}")
    return (PIPELINE_DEFAULTS.get(name, []) + PIPELINE_PRESETS[preset].get(name, [])
            + (PIPELINE_ARGS[name](results) if name in PIPELINE_ARGS else []))


def run_pipeline(parser: argparse.ArgumentParser, preset: str = "quick") -> dict[str, Path]:
    results: dict[str, Path] = {}
    start = time.monotonic()
    for name in PIPELINE:
        extra = pipeline_stage_args(name, preset, results)
        args = parser.parse_args([name, *extra])
        print(f"== {name} ==", flush=True)
        results[name] = args._main(args)
    print(f"pipeline ({preset}) finished in {(time.monotonic() - start) / 60:.1f} min: " + ", ".join(f"{k}: {v}" for k, v in results.items()))
    print(f"score its videos: python -m nbp_ext.evaluate --run {results['nbp']}  (about 2 minutes on 2 CPU cores "
          "the first time, which trains the judge classifier)")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
        if args.stage is None:
            run_pipeline(parser, args.preset or "quick")
            return
        if args.preset is not None:
            raise ValueError(f"--preset runs the whole pipeline; it cannot be combined with the stage {args.stage!r}")
        args._main(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
