"""Training of the judge classifier (``classifier.py``) on the real clips of a data set.

The clips are read once into memory as uint8 (3000 clips of 9x48x48 take 62 MB), so training costs
the network only: on 2 CPU cores the default 1500 steps of 32 clips (with the training loop of ``nbp_ext.train``) take about 2 minutes and reach
about 96% held-out accuracy on the embedded set's easy variant (``docs/results/pipeline.md``, "The judge classifier").
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ..data.builder import DataConfig, build_dataset, build_loader
from ..data.video_writer import to_uint8
from ..train.distributed import DistInfo
from ..train.loop import Stage, train
from ..train.options import LoopOptions
from ..train.schedule import CONV_BETAS, build_optimizer
from .classifier import ClipClassifier, ClipClassifierConfig


@dataclass
class ClassifierTraining:
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 100
    clips: int = 3000  # training clips read (the synthetic set renders this many; real sets: a random subset)
    val_clips: int = 240  # held-out clips for the reported accuracy
    width: int = 16
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "clips", "val_clips", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def split_dataset(data: DataConfig, split: str, clips: int, seed: int) -> Dataset:
    """``clips`` clips of ``split``: rendered for the synthetic set, a seeded random subset of a real one."""
    if data.dataset == "synthetic":
        field = "train_clips" if split == "train" else "val_clips"
        return build_dataset(dataclasses.replace(data, **{field: clips}), split)
    full = build_dataset(data, split, position="center")
    if len(full) <= clips:
        return full
    keep = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed))[:clips]
    subset = Subset(full, keep.tolist())
    subset.num_classes, subset.class_names = full.num_classes, full.class_names
    return subset


def read_clips(dataset: Dataset, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """All clips of ``dataset`` as uint8 (N, 3, T, H, W) and labels (N,); unreadable files are skipped."""
    videos, labels = [], []
    for batch in build_loader(dataset, batch_size, shuffle=False):
        if batch["video"].numel():
            videos.append(to_uint8(batch["video"]))
            labels.append(batch["label"])
    if not videos:
        raise ValueError(f"no readable clips in the data set ({len(dataset)} listed)")
    return torch.cat(videos), torch.cat(labels)


def to_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> [-1, 1] float."""
    return video.float() / 127.5 - 1


@torch.no_grad()
def accuracy(model: ClipClassifier, videos: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of uint8 videos (N, 3, T, H, W) the classifier assigns to their label."""
    _, pred = model.predict(to_float(videos))
    return float((pred == labels.cpu()).float().mean())


class ClassifierStage(Stage):
    """The judge classifier as a stage of the training loop, over clips held in memory."""

    name, title, method = "classifier", "classifier", "forward"
    cpu_bf16 = False

    def __init__(self, cfg: LoopOptions, info: DistInfo, videos: torch.Tensor, labels: torch.Tensor,
                 model_config: ClipClassifierConfig):
        self.cfg, self.info = cfg, info
        self.data = TensorDataset(videos, labels)
        self.train_size = len(self.data)
        self.model = ClipClassifier(model_config).to(info.device)

    def optimizer(self, model, cfg):
        return build_optimizer(model, cfg.lr, cfg.weight_decay, CONV_BETAS)

    def loader(self, order):
        return DataLoader(self.data, batch_size=self.cfg.batch_size, sampler=order, drop_last=True)

    def loss(self, call, batch):
        videos, labels = batch
        x, y = to_float(videos).to(self.info.device), labels.to(self.info.device)  # (B, 3, T, H, W), (B,)
        loss = F.cross_entropy(call(x), y)
        return loss, {"loss": loss.detach()}


def train_classifier(data: DataConfig, training: ClassifierTraining | None = None, device: torch.device | None = None,
                     progress: bool = True, log=print, run_dir: str | Path | None = None) -> tuple[ClipClassifier, dict]:
    """Train the classifier on ``training.clips`` clips of ``data``'s training split with the training
    loop (its checkpoints and logs in ``run_dir``, a temporary folder when None); returns it and a
    record (held-out accuracy on ``training.val_clips`` clips of the validation split, clip counts, time)."""
    t = training or ClassifierTraining()
    device = device or torch.device("cpu")
    t0 = time.perf_counter()
    train_set = split_dataset(data, "train", t.clips, t.seed)
    num_classes = train_set.num_classes
    log(f"classifier: reading {len(train_set)} training clips of {data.dataset} ({data.frames}x{data.size}x{data.size})")
    videos, labels = read_clips(train_set)
    val_videos, val_labels = read_clips(split_dataset(data, "val", t.val_clips, t.seed))
    model_config = ClipClassifierConfig(num_classes=num_classes, frames=data.frames, size=data.size, width=t.width)
    stages: list[ClassifierStage] = []

    def build(cfg, info):
        stages.append(ClassifierStage(cfg, info, videos, labels, model_config))
        return stages[-1]

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(run_dir) if run_dir is not None else Path(scratch) / "classifier"
        loop_cfg = LoopOptions(steps=t.steps, batch_size=min(t.batch_size, int(videos.shape[0])), lr=t.lr, weight_decay=t.weight_decay,
                               warmup=t.warmup, lr_floor=0.0, eval_every=t.steps, sample_every=t.steps,
                               ckpt_every=t.steps, log_every=max(1, t.steps // 20), run_dir=str(folder), seed=t.seed,
                               device=str(device), precision="fp32", progress=progress)
        train(loop_cfg, build)
    model = stages[-1].model.eval()
    record = {"held_out_accuracy": accuracy(model, val_videos, val_labels), "train_clips": int(videos.shape[0]),
              "val_clips": int(val_videos.shape[0]), "steps": t.steps, "seconds": round(time.perf_counter() - t0, 1),
              "data": dataclasses.asdict(data), "class_names": list(getattr(train_set, "class_names", []))}
    log(f"classifier: held-out accuracy {record['held_out_accuracy']:.3f} on {record['val_clips']} clips "
        f"(chance {1 / num_classes:.3f}), {record['seconds']:.0f} s")
    return model, record
