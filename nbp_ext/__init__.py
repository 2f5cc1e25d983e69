"""nbp: semi-autoregressive video generation by Next-Block Prediction."""

__version__ = "0.1.0"
