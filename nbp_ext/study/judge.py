"""The study's judge: the classifier of ``nbp_ext.evaluate`` trained once on the real clips.

It is the scoring command's own classifier and training (``evaluate/train_classifier.py``), on the
clips the tokens were made from; its held-out accuracy on real clips says how far its verdicts on
generated videos can be trusted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import torch

from ..data.builder import DataConfig
from ..evaluate import ClassifierTraining, ClipClassifier, train_classifier
from ..evaluate.judge import RECORD, load_classifier
from .config import StudyConfig

FOLDER = "judge"  # <out>/judge: the classifier (config.json, model.safetensors) and its training record
MAX_CLIPS = 3000  # the scoring command's default training clips


def judge_training(cfg: StudyConfig) -> ClassifierTraining:
    return ClassifierTraining(steps=cfg.judge_steps, clips=min(MAX_CLIPS, cfg.train_clips),
                              warmup=min(ClassifierTraining.warmup, max(1, cfg.judge_steps // 10)))


def shared_judge(cfg: StudyConfig, data: DataConfig, device: torch.device,
                 log: Callable[[str], None]) -> tuple[ClipClassifier, dict]:
    """The judge and its training record (held-out accuracy, class names), trained unless done before."""
    folder = Path(cfg.out) / FOLDER
    if (folder / RECORD).is_file():
        model, record = load_classifier(folder, data, device)
        log(f"judge: trained before in {folder} (held-out accuracy {record['held_out_accuracy']:.3f})")
        return model, record
    if folder.exists():  # a training killed before its record: start it again
        shutil.rmtree(folder)
    training = judge_training(cfg)
    log(f"judge: training the classifier of nbp_ext.evaluate for {training.steps} steps on {training.clips} real clips")
    model, record = train_classifier(data, training, device, progress=cfg.progress, log=log)
    model.save_pretrained(folder)
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n")  # written last: the judge's done marker
    return model.eval(), record
