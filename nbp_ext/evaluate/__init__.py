"""Scoring generated videos: a classifier trained on the real clips, its accuracy on generated ones and
the Fréchet distance of its features (``python -m nbp_ext.evaluate``)."""

from .classifier import ClipClassifier, ClipClassifierConfig
from .frechet import frechet_distance
from .train_classifier import ClassifierTraining, train_classifier

__all__ = ["ClassifierTraining", "ClipClassifier", "ClipClassifierConfig", "frechet_distance", "train_classifier"]
