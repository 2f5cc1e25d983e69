"""Models: the video tokenizer and the NBP transformer."""

from .fsq import FSQ
from .generator import Generator
from .generator_config import GENERATOR_SIZES, GeneratorConfig
from .layout import BlockLayout
from .pretrained import PretrainedMixin
from .registry import config_from_name
from .tokenizer import VideoTokenizer
from .tokenizer_config import TOKENIZER_SIZES, VideoTokenizerConfig

__all__ = ["BlockLayout", "GeneratorConfig", "Generator", "GENERATOR_SIZES", "FSQ", "PretrainedMixin", "config_from_name", "VideoTokenizer", "VideoTokenizerConfig", "TOKENIZER_SIZES"]
