"""Scoring generated videos: a classifier trained on the real clips, its accuracy on generated ones and
the Fréchet distance of its features; FVD, the Fréchet distance of I3D features, when I3D weights are
given (``python -m nbp_ext.evaluate``, docs/fvd.md)."""

from .classifier import ClipClassifier, ClipClassifierConfig
from .frechet import frechet_distance, gaussian_frechet
from .fvd import PRESETS, FVDProtocol, i3d_features
from .i3d import InceptionI3d
from .i3d_weights import STYLEGAN_V_SHA256, LoadedI3D, load_i3d
from .train_classifier import ClassifierTraining, train_classifier

__all__ = ["ClassifierTraining", "ClipClassifier", "ClipClassifierConfig", "FVDProtocol", "InceptionI3d", "LoadedI3D",
           "PRESETS", "STYLEGAN_V_SHA256", "frechet_distance", "gaussian_frechet", "i3d_features", "load_i3d",
           "train_classifier"]
