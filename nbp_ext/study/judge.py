"""The study's judge: the classifier of ``nbp_ext.evaluate`` trained once on the real clips.

It is the scoring command's own classifier and training (``evaluate/train_classifier.py``), on the
clips the tokens were made from; its held-out accuracy on real clips says how far its verdicts on
generated videos can be trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..data.builder import DataConfig
from ..evaluate import ClassifierTraining, ClipClassifier
from ..evaluate.judge import cached_classifier
from .config import StudyConfig

FOLDER = "judge"  # <out>/judge: the classifier (config.json, model.safetensors) and its training record


def judge_training(cfg: StudyConfig) -> ClassifierTraining:
    return ClassifierTraining(steps=cfg.judge_steps, clips=min(ClassifierTraining.clips, cfg.train_clips),
                              warmup=min(ClassifierTraining.warmup, max(1, cfg.judge_steps // 10)))


def shared_judge(cfg: StudyConfig, data: DataConfig, device: torch.device,
                 log: Callable[[str], None]) -> tuple[ClipClassifier, dict]:
    """The judge and its training record (held-out accuracy, class names), trained unless done before."""
    folder, training = Path(cfg.out) / FOLDER, judge_training(cfg)
    model, record, before = cached_classifier(folder, data, training, device, progress=cfg.progress, log=log)
    accuracy = f"held-out accuracy {record['held_out_accuracy']:.3f}"
    log(f"judge: trained before in {folder} ({accuracy})" if before else
        f"judge: the classifier of nbp_ext.evaluate, {training.steps} steps on {training.clips} real clips "
        f"({accuracy}), in {folder}")
    return model, record
