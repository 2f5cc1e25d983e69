"""The held-out clips every run is scored on, and the reference rows that frame the scores.

The held-out token split (``tokens.py``) holds the codes of the first ``videos`` clips of the
validation split; the same clips rendered again are the true videos, and the next ``videos`` clips
are a second real set (what the Fréchet distance is between two real sets of this size). The
references, computed once:

  real clips            the judge on the true clips (its accuracy there bounds every other)
  other real clips      the floor of the Fréchet distance
  tokenizer             the true codes decoded: the best any generator can do through this tokenizer
  last frame held       the tokenizer's last context frame repeated: a prediction with no motion
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import TokenDataset
from ..evaluate.scoring import score
from ..evaluate.train_classifier import read_clips, split_dataset, to_float
from ..generate.videos import decode
from .frame_metrics import hold_last_frame, per_frame_scores
from ..records import read_record, write_record
from .tokens import SharedTokens

REFERENCES = "references.json"  # <out>/references.json


@dataclass
class HeldOut:
    codes: torch.Tensor  # (N, T', H', W') the held-out clips' codes
    videos: torch.Tensor  # (N, 3, T, H, W) in [-1, 1]: the true clips
    labels: torch.Tensor  # (N,)
    others: torch.Tensor  # (N, 3, T, H, W): other real held-out clips
    other_labels: torch.Tensor  # (N,)
    class_names: list[str]


def held_out(shared: SharedTokens, count: int) -> HeldOut:
    val = TokenDataset(shared.tokens / "val")
    if len(val) < count:
        raise ValueError(f"the held-out tokens in {shared.tokens / 'val'} hold {len(val)} clips, fewer than --videos "
                         f"({count})")
    items = [val[i] for i in range(count)]
    real, labels = read_clips(split_dataset(shared.data, "val", 2 * count, shared.data.seed))
    ids = torch.tensor([it["video_id"] for it in items])
    if int(ids.max()) >= count or not torch.equal(labels[ids], torch.tensor([it["label"] for it in items])):
        raise ValueError(f"the held-out tokens in {shared.tokens / 'val'} are not of the first {count} held-out "
                         "clips of the data set they record")
    return HeldOut(codes=torch.stack([it["codes"] for it in items]), videos=to_float(real[ids]), labels=labels[ids],
                   others=to_float(real[count : 2 * count]), other_labels=labels[count : 2 * count], class_names=list(val.class_names or []))


@torch.no_grad()
def references(out: Path, held: HeldOut, tokenizer, judge, first_predicted: int, batch_size: int = 48) -> dict:
    """The reference rows (cached in <out>/references.json); also the real clips' judge features."""
    names = held.class_names or None
    real, feats = score(judge, held.videos, held.labels, None, names)
    saved = read_record(out / REFERENCES)
    if saved is not None:
        return {**saved, "_reference_features": feats}
    device = next(tokenizer.parameters()).device
    recon = torch.cat([decode(tokenizer, held.codes[i : i + batch_size].to(device)).float().cpu()
                       for i in range(0, held.codes.shape[0], batch_size)])
    rows = {"real": real}
    rows["real_other"], _ = score(judge, held.others, held.other_labels, feats, names)
    rows["tokenizer"], _ = score(judge, recon, held.labels, feats, names)
    rows["tokenizer"].update(per_frame_scores(recon, held.videos, first_predicted))
    held_video = hold_last_frame(recon, first_predicted)
    rows["last_frame_held"], _ = score(judge, held_video, held.labels, feats, names)
    rows["last_frame_held"].update(per_frame_scores(held_video, held.videos, first_predicted))
    write_record(out / REFERENCES, rows)
    return {**rows, "_reference_features": feats}
