"""Sets of videos to score (generated, reconstructed, read) and their rows: the judge's accuracy and
Fréchet distance, and the I3D features for FVD."""

from __future__ import annotations

import torch
from torch.utils.data import Subset
from tqdm import tqdm

from ..data.builder import DataConfig
from ..generate import generate
from ..generate.videos import decode
from .classifier import ClipClassifier
from .frechet import frechet_distance
from .fvd import i3d_features
from .train_classifier import read_clips, to_float

SETS = ("real", "real_floor", "reconstructed", "generated")


@torch.no_grad()
def generated_videos(model, tokenizer, cond: torch.Tensor | None, count: int, sampling, seed: int, batch_size: int,
                     progress: bool) -> torch.Tensor:
    """``count`` decoded videos (N, 3, T, H, W) in [-1, 1] on the CPU; video i uses seed + i, whatever the batch."""
    device = next(model.parameters()).device
    out = []
    for i in tqdm(range(0, count, batch_size), desc="generate", unit="batch", disable=not progress):
        n = min(batch_size, count - i)
        if cond is None:
            codes = generate(model, num_videos=n, seed=seed + i, sampling=sampling)
        else:
            codes = generate(model, cond[i : i + n].to(device), seed=seed + i, sampling=sampling)
        out.append(decode(tokenizer, codes).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def reconstructions(model, tokenizer, videos: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real float videos -> (their reconstructions (N, 3, T, H, W), their codes (N, T', H', W'))."""
    device = next(tokenizer.parameters()).device
    recs, codes = [], []
    for i in range(0, videos.shape[0], batch_size):
        c = tokenizer.encode(videos[i : i + batch_size].to(device))
        codes.append(c.cpu())
        recs.append(decode(tokenizer, c).float().cpu())
    return torch.cat(recs), torch.cat(codes)


def part_accuracies(pred: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    """The synthetic set's classes are "shape-motion": the accuracy of the shape and of the motion alone."""
    shapes = [n.split("-")[0] for n in names]
    motions = [n.split("-")[-1] for n in names]
    out = {}
    for key, part in (("shape", shapes), ("motion", motions)):
        ids = torch.tensor([sorted(set(part)).index(p) for p in part])  # (num_classes,) class -> part id
        out[key] = float((ids[pred] == ids[labels]).float().mean())
    return out


def make_row(feats: torch.Tensor, pred: torch.Tensor, labels: torch.Tensor | None, reference: torch.Tensor | None,
             names: list[str] | None, num_classes: int) -> dict:
    """One row from the classifier's features and predictions of a set of videos."""
    row: dict = {"videos": int(pred.shape[0])}
    if labels is not None:
        row["accuracy"] = float((pred == labels).float().mean())
        if names:
            row.update(part_accuracies(pred, labels, names))
        row["per_class"] = [float((pred[labels == c] == c).float().mean()) if (labels == c).any() else None
                            for c in range(num_classes)]
    else:
        row["classes_drawn"] = int(pred.unique().numel())
    if reference is not None:
        row["frechet"] = frechet_distance(feats, reference)
    return row


def score(classifier: ClipClassifier, videos: torch.Tensor, labels: torch.Tensor | None, reference: torch.Tensor | None,
          names: list[str] | None) -> tuple[dict, torch.Tensor]:
    """One row: accuracy against ``labels`` (with shape and motion where ``names`` is given), and the
    Fréchet distance to the ``reference`` features; returns the row and the videos' features."""
    feats, pred = classifier.predict(videos)
    return make_row(feats, pred, labels, reference, names, classifier.config.num_classes), feats


def empty_videos(data: DataConfig) -> torch.Tensor:
    return torch.zeros(0, 3, data.frames, data.size, data.size)


def read_share(dataset, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips lo .. hi-1 of ``dataset`` as [-1, 1] floats (n, 3, T, H, W) and labels (n,); unreadable ones
    are skipped."""
    if hi <= lo:
        return torch.zeros(0, 3, 1, 1, 1), torch.zeros(0, dtype=torch.int64)
    videos, labels = read_clips(Subset(dataset, range(lo, hi)))
    return to_float(videos), labels


def share_scores(classifier: ClipClassifier, loaded, protocol, videos: torch.Tensor, args, progress: bool,
                 name: str) -> dict[str, torch.Tensor]:
    """This process's share of one set: the classifier's features and predictions, and the I3D features."""
    feats, pred = classifier.predict(videos)
    out = {"feats": feats, "pred": pred}
    if loaded is not None:
        out["i3d"] = i3d_features(loaded.model, videos, protocol, args.fvd_batch_size, progress, f"I3D {name}")
    return out
