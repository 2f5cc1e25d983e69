"""One training stage of ``python -m nbp_ext.train`` run into a given folder, as the pipeline runs it.

The stage's command line goes through the training command's own parser, so the study trains exactly
what ``python -m nbp_ext.train STAGE ...`` trains. A folder with a finished checkpoint is continued
with the stage's ``--resume`` (a stage at its last step only repeats its closing evaluation); a
folder without one is from a run killed before its first checkpoint and starts over.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Callable

from ..train.checkpoint import complete_checkpoints


def train_parser() -> argparse.ArgumentParser:
    from ..train.__main__ import build_parser

    return build_parser()


def run_stage(parser: argparse.ArgumentParser, stage: str, run_dir: Path, options: list[str],
              log: Callable[[str], None]) -> Path:
    """Train ``stage`` with ``options`` in ``run_dir`` (continuing it where it has a checkpoint)."""
    argv = [stage, "--run-dir", str(run_dir), *options]
    if complete_checkpoints(run_dir):
        log(f"continuing {run_dir} from {complete_checkpoints(run_dir)[-1].name}")
        argv += ["--resume", str(run_dir)]
    elif run_dir.exists():
        shutil.rmtree(run_dir)
    args = parser.parse_args(argv)
    return args._main(args)
