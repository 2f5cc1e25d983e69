"""``python -m nbp_ext.train [--preset NAME] [--time-limit MIN] | STAGE [options]``.

With no stage every stage of ``PIPELINE`` runs in order on its own defaults (the same model a stage
trains when run alone) with the chosen preset's ``PIPELINE_PRESETS`` on top, each handed the
results of the ones before through ``PIPELINE_ARGS``. The quick preset (the default) has a time limit: each training stage
then trains as many steps as fit in its part of it, up to its --steps, so the run ends in time on
a slow CPU and trains longer on a fast one. A stage is a module with
``add_arguments(parser)`` and ``main(args) -> Path``; adding one is a line in ``STAGES`` (and in
``PIPELINE``, with a ``PIPELINE_ARGS`` entry when it needs an earlier stage's output).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli_errors import run_command
from ..data.builder import DATASETS
from ..runs import TOKENIZER_DIR, TOKENS_DIR

# name -> (module, one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "tokenizer": ("nbp_ext.train.tokenizer", "train the video tokenizer"),
    "tokenize": ("nbp_ext.tokenize", "encode a data set into token files with a trained tokenizer"),
    "generator": ("nbp_ext.train.generator", "train the NBP generator on token files"),
}
PIPELINE: tuple[str, ...] = ("tokenizer", "tokenize", "generator")


def _pipeline_args_tokenize(results: dict[str, Path]) -> list[str]:
    run = results["tokenizer"]
    return ["--tokenizer", str(run / TOKENIZER_DIR), "--out", str(run / TOKENS_DIR)]


def _pipeline_args_generator(results: dict[str, Path]) -> list[str]:
    run = results["tokenizer"]
    return ["--tokens", str(results["tokenize"]), "--tokenizer", str(run / TOKENIZER_DIR)]


@dataclass(frozen=True)
class PipelinePreset:
    """A whole-pipeline run: per-stage arguments on top of each stage's own defaults and an optional time limit for the whole run. Under a limit the tokenizer stage gets
    ``tokenizer_share`` of it and the generator what is left after token extraction; each stage's
    --steps is then its ceiling, and the stage trains as many steps as fit (time_budget.py)."""

    args: dict[str, list[str]]
    minutes: float | None = None
    tokenizer_share: float = 0.2
    about: str = ""


PIPELINE_PRESETS: dict[str, PipelinePreset] = {
    # Ends within 15 minutes on any 2-core CPU: what the machine does in 13.5 minutes.
    "quick": PipelinePreset(
        args={"tokenizer": ["--steps", "3000"], "generator": ["--steps", "4000"]}, minutes=13.5,
        about="13.5 minutes on any machine: as many tokenizer and generator steps as fit"),
    # Fixed step counts, the same run everywhere: about 45 minutes on a 2-core AVX512-BF16 CPU.
    "long": PipelinePreset(
        args={"tokenizer": ["--steps", "6000"], "tokenize": ["--train-clips", "24000"],
              "generator": ["--steps", "12000", "--eval-every", "1000", "--sample-every", "2000", "--ckpt-every", "500"]},
        about="fixed steps: the tokenizer 6000, 24 000 clips tokenized, the generator 12 000 (about 45 minutes on 2 "
              "cores)"),
}


# Arguments a stage gets from earlier stages when the whole pipeline runs.
PIPELINE_ARGS = {"tokenize": _pipeline_args_tokenize, "generator": _pipeline_args_generator}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nbp_ext.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    presets = "; ".join(f"{name}: {preset.about}" for name, preset in PIPELINE_PRESETS.items())
    p.add_argument("--preset", choices=sorted(PIPELINE_PRESETS), default=None,
                   help=f"without a stage: run the whole pipeline with this preset (default quick). {presets}")
    p.add_argument("--time-limit", dest="pipeline_minutes", type=float, default=None, metavar="MIN",
                   help="without a stage: the whole pipeline's time limit in minutes instead of the preset's "
                        "(0: none, each stage trains its full --steps)")
    g = p.add_argument_group("your own videos (without a stage: the whole pipeline on them)")
    g.add_argument("--dataset", dest="pipeline_dataset", choices=DATASETS, default=None,
                   help="ucf101: a folder of class folders (--data-root); k600: lists of path,label (--train-list, "
                        "--val-list); default: the embedded synthetic set")
    g.add_argument("--data-root", dest="pipeline_root", default=None,
                   help="ucf101: the folder of class folders; k600: the base of the lists' relative paths")
    g.add_argument("--train-list", dest="pipeline_train_list", default=None, help="k600: CSV of path,label for training")
    g.add_argument("--val-list", dest="pipeline_val_list", default=None, help="k600: CSV of path,label held out")
    g.add_argument("--fold", dest="pipeline_fold", type=int, default=None, help="ucf101: which trainlist0N / testlist0N")
    g.add_argument("--fps", dest="pipeline_fps", type=float, default=None,
                   help="resample to this frame rate (default 8 for ucf101, 16 for k600)")
    g.add_argument("--clip-cache", dest="pipeline_clip_cache", default=None, metavar="DIR",
                   help="decode every video once into DIR and train the tokenizer on it (see the tokenizer stage)")
    g.add_argument("--max-bad-fraction", dest="pipeline_max_bad_fraction", type=float, default=None,
                   help="stop when more than this share of the video files is bad (default 0.1)")
    sub = p.add_subparsers(dest="stage", metavar="STAGE",
                           help=f"one of {', '.join(STAGES)}; none: run {' -> '.join(PIPELINE)} with --preset (default quick)")
    for name, (module, help_line) in STAGES.items():
        mod = importlib.import_module(module)
        sp = sub.add_parser(name, help=help_line, description=mod.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
        sp.set_defaults(_main=mod.main)
    return p


def _preset(name: str) -> PipelinePreset:
    if name not in PIPELINE_PRESETS:
        raise ValueError(f"preset must be one of {sorted(PIPELINE_PRESETS)}, got {name!r}")
    return PIPELINE_PRESETS[name]


def pipeline_stage_args(name: str, preset: str, results: dict[str, Path], minutes_left: float | None = None) -> list[str]:
    """The command line of pipeline stage ``name`` under ``preset``, given the earlier stages' results
    and, under a time limit, the minutes left of it (None: no limit)."""
    chosen = _preset(preset)
    args = list(chosen.args.get(name, []))
    if minutes_left is not None and name in TIMED_STAGES:
        args += ["--time-limit", f"{TIMED_STAGES[name](chosen, minutes_left):.3f}"]
    return args + (PIPELINE_ARGS[name](results) if name in PIPELINE_ARGS else [])


# Under a pipeline time limit: a stage's own limit from the preset and the minutes left.
MIN_STAGE_MINUTES = 0.5
TIMED_STAGES = {
    # the first stage: ``left`` is the whole limit (the preset's or --time-limit's)
    "tokenizer": lambda preset, left: max(MIN_STAGE_MINUTES, left * preset.tokenizer_share),
    "generator": lambda preset, left: max(MIN_STAGE_MINUTES, left),
}


# The pipeline's data options and the tokenizer stage's flags they become (tokenize and the
# generator take the data from the tokenizer's run).
DATA_FLAGS = {"pipeline_dataset": "--dataset", "pipeline_root": "--data-root", "pipeline_train_list": "--train-list",
              "pipeline_val_list": "--val-list", "pipeline_fold": "--fold", "pipeline_fps": "--fps",
              "pipeline_max_bad_fraction": "--max-bad-fraction", "pipeline_clip_cache": "--clip-cache"}


def data_flags(args: argparse.Namespace) -> list[str]:
    """The user's data options as tokenizer-stage flags (empty for the embedded set)."""
    flags = []
    for dest, flag in DATA_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            flags += [flag, str(value)]
    return flags


def _say_what_was_found(parser: argparse.ArgumentParser, data: list[str]) -> None:
    """For the user's own videos: what the folder or lists hold, before any training."""
    if not data:
        return
    from ..data import data_config_from_args
    from ..data.survey import survey

    stage_args = parser.parse_args(["tokenizer", *data])
    cfg = data_config_from_args(stage_args)
    found = survey(cfg)
    print(found.summary(cfg), flush=True)
    if found.train_files - len(found.bad) < 1:
        raise ValueError(f"no readable training video in {cfg.root or cfg.train_list}")
    total = found.train_files + found.val_files
    if len(found.bad) > stage_args.max_bad_fraction * total:  # stop now rather than minutes into training
        raise ValueError(f"{len(found.bad)} of {total} video files are bad, more than --max-bad-fraction "
                         f"(max_bad_fraction={stage_args.max_bad_fraction:g}) allows; raise it to go on without them")


def run_pipeline(parser: argparse.ArgumentParser, preset: str = "quick", minutes: float | None = None,
                 data: list[str] | None = None) -> dict[str, Path]:
    """Every stage of PIPELINE in order; ``minutes``: the time limit (None: the preset's; 0: none);
    ``data``: tokenizer-stage flags naming the user's videos (None: the embedded set)."""
    limit = _preset(preset).minutes if minutes is None else (minutes or None)
    if limit is not None and limit < 2 * MIN_STAGE_MINUTES:
        raise ValueError(f"--time-limit must be 0 (none) or at least {2 * MIN_STAGE_MINUTES:g} minutes, got {limit:g}")
    data = data or []
    _say_what_was_found(parser, data)
    results: dict[str, Path] = {}
    start = time.monotonic()
    if limit is not None:
        print(f"pipeline ({preset}): time limit {limit:g} min; each stage trains the steps that fit, "
              "up to its --steps (--time-limit 0: all of them)", flush=True)
    for name in PIPELINE:
        left = None if limit is None else limit - (time.monotonic() - start) / 60
        extra = pipeline_stage_args(name, preset, results, left)
        if name == "tokenizer":
            extra += data
        elif name == "tokenize" and "--max-bad-fraction" in data:
            extra += data[data.index("--max-bad-fraction"):][:2]
        args = parser.parse_args([name, *extra])
        print(f"== {name} ==", flush=True)
        results[name] = args._main(args)
    print(f"pipeline ({preset}) finished in {(time.monotonic() - start) / 60:.1f} min: " + ", ".join(f"{k}: {v}" for k, v in results.items()))
    print(f"score its videos: python -m nbp_ext.evaluate --run {results['generator']}  (about 2 minutes on 2 CPU cores "
          "the first time, which trains the judge classifier)")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv

    def run() -> None:
        args = parser.parse_args(argv)
        if args.stage is None:
            run_pipeline(parser, args.preset or "quick", args.pipeline_minutes, data_flags(args))
            return
        if args.preset is not None or args.pipeline_minutes is not None or data_flags(args):
            raise ValueError(f"--preset, --time-limit and the data options before the stage run the whole pipeline; for the stage "
                             f"{args.stage!r} alone, give its own options after it (e.g. {args.stage} --time-limit MIN)")
        args._main(args)

    run_command(run)


if __name__ == "__main__":
    main()
