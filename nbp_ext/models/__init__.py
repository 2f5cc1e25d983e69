"""Models: the video tokenizer (and, later, the NBP transformer)."""

from .fsq import FSQ
from .pretrained import PretrainedMixin
from .registry import config_from_name
from .tokenizer import VideoTokenizer
from .tokenizer_config import TOKENIZER_SIZES, VideoTokenizerConfig

__all__ = ["FSQ", "PretrainedMixin", "config_from_name", "VideoTokenizer", "VideoTokenizerConfig", "TOKENIZER_SIZES"]
