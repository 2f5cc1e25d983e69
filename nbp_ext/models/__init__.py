"""Models: the video tokenizer and the NBP transformer."""

from .fsq import FSQ
from .generator import NBPTransformer
from .generator_config import NBP_SIZES, NBPConfig
from .layout import BlockLayout
from .pretrained import PretrainedMixin
from .registry import config_from_name
from .tokenizer import VideoTokenizer
from .tokenizer_config import TOKENIZER_SIZES, VideoTokenizerConfig

__all__ = ["BlockLayout", "NBPConfig", "NBPTransformer", "NBP_SIZES", "FSQ", "PretrainedMixin", "config_from_name", "VideoTokenizer", "VideoTokenizerConfig", "TOKENIZER_SIZES"]
