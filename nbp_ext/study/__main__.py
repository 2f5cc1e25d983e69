"""``python -m nbp_ext.study [--quick] [options]``: next-block against next-token prediction at equal
training compute, on the embedded synthetic set.

What it does: trains one tokenizer (the tokenizer stage) and tokenizes the clips once, trains the
judge classifier of ``nbp_ext.evaluate`` once, then trains the same generator (the generator stage:
same size, steps, batch and tokens seen) once per block shape and seed:

  frame prediction    the first 2 latent frames (video frames 0-4) given, frames 5-16 predicted:
                      token (next-token prediction), half-row, row, two-rows, half-frame, frame
  class-conditional   token (next-token prediction), row

with seeds 0 and 1: 16 runs. Each run is scored on the same held-out clips: held-out token loss;
PSNR and SSIM of every predicted frame against the clip's true frames; the judge's accuracy and
Fréchet distance on the generated videos; generation steps and seconds per video. The report gives
means and spread over seeds, three figures, and what held of the paper's claims and what did not.

How long: about 60 minutes on 2 idle CPU cores (Intel Xeon with AMX: about 3 minutes per
generator run of 900 steps, 2.5 for the tokenizer and the tokens, 2 for the judge); other work on
the machine makes it longer. --quick: about 5 minutes (seed 0, frame shapes token, row and frame
and the two class-conditional ones, 200 steps, 24 videos).

Where it writes: the runs to --out (default runs/study; --quick: runs/study-quick), one folder per
run (the generator stage's run folder, with done.json once scored), the shared tokenizer, tokens and
judge beside them, every number in <out>/results.json; the report to <docs>/reproduction.md and its
figures to <docs>/reproduction/*.png (default docs/; --quick: <out>/docs).

Running the same command again continues the study: finished runs are skipped, a run cut short
continues from its latest checkpoint, and the report is written again. Other settings in the same
--out are refused (give another --out); more --seeds or other --shapes add runs. Idle OpenMP
threads sleep rather than spin (OMP_WAIT_POLICY=PASSIVE unless set), so that other work on the
machine slows the study by its share of the cores, not many times over.
"""

from __future__ import annotations

import os

# Before torch loads: idle OpenMP threads sleep instead of spinning. On 2 cores shared with other
# work, spinning threads waiting for a descheduled one made a training step 10-16x slower (5.3 s
# against 0.57 s in fp32, 6.3 s against 0.39 s in bf16, tiny generator, batch 16); a value the
# user sets is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402

from ..cli_errors import run_command  # noqa: E402
from .config import QUICK, StudyConfig, study_config  # noqa: E402
from .shapes import CLASS_SHAPES, SHAPE_NAMES  # noqa: E402


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def build_parser() -> argparse.ArgumentParser:
    d = StudyConfig()
    p = argparse.ArgumentParser(prog="python -m nbp_ext.study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"the reduced study: {QUICK['seeds']} seed, frame shapes {','.join(QUICK['shapes'])}, "
                        f"{QUICK['steps']} steps, {QUICK['videos']} videos (about 5 minutes on 2 idle cores)")
    p.add_argument("--out", default=None, help="folder of the runs and results (default runs/study; --quick: runs/study-quick)")
    p.add_argument("--docs", default=None,
                   help="folder of reproduction.md and reproduction/*.png (default docs; --quick: <out>/docs)")
    g = p.add_argument_group("what is compared (the defaults are the full study's)")
    g.add_argument("--seeds", type=int, default=None, help=f"train each shape with seeds 0 .. N-1 (default {d.seeds})")
    g.add_argument("--shapes", type=_names, default=None,
                   help=f"frame-prediction block shapes, comma separated, from {','.join(SHAPE_NAMES)} (default all)")
    g.add_argument("--class-shapes", type=_names, default=None,
                   help=f"class-conditional block shapes (default {','.join(CLASS_SHAPES)}; empty: none)")
    g = p.add_argument_group("sizes (the same for every run; --quick lowers several)")
    g.add_argument("--steps", type=int, default=None, help=f"generator training steps per run (default {d.steps})")
    g.add_argument("--batch-size", type=int, default=None, help=f"clips per generator step (default {d.batch_size})")
    g.add_argument("--model", default=None, help=f"generator size (default {d.model})")
    g.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr:g})")
    g.add_argument("--start-block", dest="start", default=None,
                   help=f"first block: learned (one step from a learned start block, the paper's) or hybrid "
                        f"(token by token) (default {d.start})")
    g.add_argument("--frames", type=int, default=None, help=f"frames per clip, 1 + 4k (default {d.frames})")
    g.add_argument("--context-frames", type=int, default=None,
                   help=f"latent frames given for frame prediction (default {d.context_frames}: video frames 0-4)")
    g.add_argument("--train-clips", type=int, default=None, help=f"training clips tokenized (default {d.train_clips})")
    g.add_argument("--videos", type=int, default=None,
                   help=f"held-out clips scored, and videos generated per class-conditional run (default {d.videos})")
    g.add_argument("--tokenizer-steps", type=int, default=None, help=f"tokenizer training steps (default {d.tokenizer_steps})")
    g.add_argument("--judge-steps", type=int, default=None, help=f"judge classifier training steps (default {d.judge_steps})")
    g.add_argument("--timing-videos", type=int, default=None,
                   help=f"videos generated one at a time to time generation (default {d.timing_videos})")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write the report from the runs finished so far (it names those still missing)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                   help="no progress bars (the study's own lines stay)")
    return p


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = vars(build_parser().parse_args(argv))
    report_only = args.pop("report_only")

    def run():
        from .study import run_study

        cfg = study_config(**args)
        command = " ".join(["python -m nbp_ext.study", *map(shlex.quote, [a for a in argv if a != "--report-only"])])
        return run_study(cfg, command=command, report_only=report_only)

    run_command(run)


if __name__ == "__main__":
    main()
