"""The study's settings (``StudyConfig``) and its two sizes: the full study and ``--quick``.

Every generator run of a study trains the same model size for the same steps on the same batch (so
the same tokens seen); only the block shape, the task and the seed change between runs. The
settings that shape the results are recorded in the output folder, so a study resumed with other
ones stops with a message instead of mixing runs made two ways.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..models.generator_config import GENERATOR_SIZES
from .shapes import CLASS_SHAPES, SHAPE_NAMES

STARTS = ("learned", "hybrid")


@dataclass
class StudyConfig:
    out: str = "runs/study"  # runs, the shared tokenizer and judge, results.json
    docs: str = "docs"  # reproduction.md and reproduction/*.png
    quick: bool = False
    seeds: int = 2  # each shape is trained with seeds 0 .. seeds - 1
    shapes: tuple[str, ...] = SHAPE_NAMES  # block shapes of the frame-prediction task
    class_shapes: tuple[str, ...] = CLASS_SHAPES  # block shapes of the class-conditional task
    # generator runs: the same for every shape
    model: str = "tiny"
    steps: int = 900
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 50
    start: str = "learned"  # the paper's: the first block from a learned start block in one step
    context_frames: int = 2  # latent frames given for frame prediction (5 of 17 frames, as on K600)
    # the clips and the shared tokenizer and judge
    frames: int = 17
    train_clips: int = 8000
    videos: int = 64  # held-out clips scored per run (and generated videos per class-conditional run)
    tokenizer_steps: int = 2000
    judge_steps: int = 1500
    timing_videos: int = 3  # videos generated one at a time to time a video's generation
    device: str = "auto"
    progress: bool = True

    def __post_init__(self):
        self.shapes, self.class_shapes = tuple(self.shapes), tuple(self.class_shapes)
        for name in ("seeds", "steps", "batch_size", "warmup", "train_clips", "tokenizer_steps", "judge_steps",
                     "timing_videos"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.videos < 4:
            raise ValueError(f"--videos must be >= 4 (a Fréchet distance needs a few videos), got {self.videos}")
        if self.batch_size > self.train_clips:
            raise ValueError(f"--batch-size ({self.batch_size}) must be at most --train-clips ({self.train_clips})")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.model not in GENERATOR_SIZES:
            raise ValueError(f"--model must be one of {sorted(GENERATOR_SIZES)}, got {self.model!r}")
        if self.start not in STARTS:
            raise ValueError(f"--start-block must be one of {STARTS}, got {self.start!r}")
        if self.frames < 9 or (self.frames - 1) % 4:
            raise ValueError(f"--frames must be 1 + 4k and at least 9, got {self.frames}")
        latent_frames = 1 + (self.frames - 1) // 4
        if not 1 <= self.context_frames < latent_frames:
            raise ValueError(f"--context-frames must be in [1, {latent_frames}) for {self.frames} frames "
                             f"({latent_frames} latent frames), got {self.context_frames}")
        for flag, names in (("--shapes", self.shapes), ("--class-shapes", self.class_shapes)):
            bad = [n for n in names if n not in SHAPE_NAMES]
            if bad or len(set(names)) != len(names):
                raise ValueError(f"{flag} must be distinct names from {', '.join(SHAPE_NAMES)}, got {','.join(names)}")
        if not self.shapes and not self.class_shapes:
            raise ValueError("--shapes and --class-shapes are both empty: nothing to train")

    @property
    def context_pixel_frames(self) -> int:
        """Video frames the context latent frames cover: the first latent frame codes one, each later one four."""
        return 1 + 4 * (self.context_frames - 1)

    def settings(self) -> dict:
        """What the results depend on, beyond which runs there are (seeds, shapes) and where they go."""
        skip = {"out", "docs", "quick", "seeds", "shapes", "class_shapes", "device", "progress"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


# --quick: one seed, three shapes and the two class-task shapes, fewer steps and videos; under 10
# minutes on 2 CPU cores.
QUICK = dict(seeds=1, shapes=("token", "row", "frame"), steps=200, train_clips=2000, videos=24,
             tokenizer_steps=400, judge_steps=300, timing_videos=2)
QUICK_OUT = "runs/study-quick"


def study_config(quick: bool = False, **given) -> StudyConfig:
    """The full study's settings or --quick's, with ``given`` (values not None) on top. A quick study
    writes to runs/study-quick, and its report into its own folder (<out>/docs) unless --docs says
    otherwise, so that it never replaces the full study's report."""
    given = {k: v for k, v in given.items() if v is not None}
    if quick:
        out = given.get("out", QUICK_OUT)
        given = {**QUICK, "out": out, "docs": str(Path(out) / "docs"), **given}
    return StudyConfig(quick=quick, **given)
