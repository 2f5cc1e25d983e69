"""The judge: a classifier trained on a data set's real clips, kept in ``runs/classifier-<hash>/``
and reused, and the data set a generator run was trained on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..data.builder import DataConfig
from ..records import write_record
from .classifier import ClipClassifier
from .train_classifier import ClassifierTraining, train_classifier

RECORD = "training.json"  # beside the classifier's weights: its training and held-out accuracy


def run_data_config(info: dict, tokens: str | None) -> DataConfig:
    """The data set the run's tokens were made from, as recorded in the token folder."""
    folder = Path(tokens or info.get("tokens") or "")
    meta = folder / "train" / "meta.json"
    if not meta.is_file():
        raise FileNotFoundError(f"the run's token folder {folder} has no train/meta.json to say which data set it "
                                "came from: give --tokens")
    data = json.loads(meta.read_text()).get("info", {}).get("data")
    if not data:
        raise ValueError(f"{meta} records no data set (info.data); it was made by an older tokenize")
    return DataConfig(**data)


def classifier_key(data: DataConfig, training: ClassifierTraining) -> str:
    """Names the cache folder: the data set (without its clip counts, which the training sets) and the training."""
    d = {k: v for k, v in asdict(data).items() if k not in ("train_clips", "val_clips")}
    text = json.dumps({"data": d, "training": asdict(training)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_classifier(folder: Path, data: DataConfig, device: torch.device) -> tuple[ClipClassifier, dict]:
    model = ClipClassifier.from_pretrained(folder).to(device).eval()
    record = json.loads((folder / RECORD).read_text()) if (folder / RECORD).is_file() else {}
    c = model.config
    if (c.frames, c.size) != (data.frames, data.size):
        raise ValueError(f"--classifier {folder} was trained on {c.frames}x{c.size}x{c.size} clips, the run's data "
                         f"set has {data.frames}x{data.size}x{data.size}")
    trained_on = record.get("data", {}).get("dataset")
    if trained_on and trained_on != data.dataset:
        raise ValueError(f"--classifier {folder} was trained on the {trained_on} set, the run's is {data.dataset}")
    return model, record


def cached_classifier(folder: Path, data: DataConfig, training: ClassifierTraining, device: torch.device,
                      progress: bool = True, log=print) -> tuple[ClipClassifier, dict, bool]:
    """(classifier, its record, whether it was trained before): the one kept in ``folder``, trained
    and saved there first unless its record (written last, the done marker) is there."""
    if (folder / RECORD).is_file():
        model, record = load_classifier(folder, data, device)
        return model, record, True
    model, record = train_classifier(data, training, device, progress=progress, log=log)
    model.save_pretrained(folder)
    write_record(folder / RECORD, record)
    return model.eval(), record, False


def get_classifier(args, data: DataConfig, device: torch.device, log=print) -> tuple[ClipClassifier, dict, Path]:
    if args.classifier:
        folder = Path(args.classifier)
        model, record = load_classifier(folder, data, device)
        return model, record, folder
    training = ClassifierTraining(steps=args.classifier_steps, clips=args.classifier_clips)
    folder = Path(args.runs_root) / f"classifier-{classifier_key(data, training)}"
    model, record, before = cached_classifier(folder, data, training, device, progress=not args.no_progress, log=log)
    log(f"classifier: {folder} (held-out accuracy {record['held_out_accuracy']:.3f})" if before
        else f"classifier: saved to {folder}")
    return model, record, folder
