"""nbp: semi-autoregressive video generation by Next-Block Prediction."""

__version__ = "0.1.0"


def build_info() -> dict:
    """What the compiled extension contains (CUDA and architectures, OpenMP, compiler, torch version)."""
    from nbp_ext._ext import build_info as _build_info

    return _build_info()
