"""nbp: semi-autoregressive video generation by Next-Block Prediction."""

__version__ = "0.1.0"


def build_info() -> dict:
    """What the compiled extension contains (CUDA and architectures, OpenMP, compiler, the torch it was
    compiled against and torch_target, the oldest torch its stable-ABI build loads under)."""
    from nbp_ext._ext import build_info as _build_info

    return _build_info()
