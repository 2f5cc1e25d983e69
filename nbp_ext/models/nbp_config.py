"""NBPConfig: the generator's dataclass config, its derived sizes, and the registry of named sizes."""

from __future__ import annotations

from dataclasses import dataclass

from .block_layout import BlockLayout
from .registry import config_from_name

STYLES = ("llama", "gpt2")
CONDITIONS = ("class", "frames", "none")
STARTS = ("learned", "hybrid")


@dataclass
class NBPConfig:
    # transformer
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # grouped key/value heads; None: n_head
    dim: int = 128
    mlp_hidden: int | None = None  # None: 4 * dim (gpt2), 2/3 of that rounded up to 64 (llama SwiGLU)
    style: str = "llama"  # "llama": RMSNorm, SwiGLU, (t, h, w) rotary; "gpt2": LayerNorm, GELU, learned positions
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    dropout: float = 0.0
    # tokens and blocks
    vocab_size: int = 64000  # the tokenizer's codebook size
    grid: tuple[int, int, int] = (5, 16, 16)  # latent grid (T', H', W')
    block: tuple[int, int, int] = (1, 1, 16)  # (bt, bh, bw); (1, 1, 1) is next-token prediction
    start: str = "learned"  # first video block: "learned" start block (one step) or "hybrid" (token by token)
    # conditioning
    condition: str = "class"  # "class": class tokens; "frames": the first latent frames; "none"
    num_classes: int = 101  # class ids 0 .. num_classes - 1; id num_classes is the null class
    class_tokens: int = 1  # prefix length of a class condition
    context_frames: int = 2  # latent frames given as the prefix of a "frames" condition
    cond_dropout: float = 0.1  # training: share of class ids replaced by the null class
    # derived in __post_init__ (a value given here is recomputed)
    head_dim: int = 0
    block_len: int = 0  # L
    prefix_len: int = 0  # P
    video_len: int = 0  # tokens to generate
    seq_len: int = 0  # model input length: prefix, start region, every video block but the last

    def __post_init__(self):
        self.grid, self.block = tuple(self.grid), tuple(self.block)
        for name, value, choices in (("style", self.style, STYLES), ("condition", self.condition, CONDITIONS),
                                     ("start", self.start, STARTS)):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.dim % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError(f"n_head ({self.n_head}) must divide dim ({self.dim}) and be a multiple of "
                             f"n_kv_head ({self.n_kv_head})")
        self.head_dim = self.dim // self.n_head
        if self.style == "llama" and self.head_dim % 2:
            raise ValueError(f"rotary positions need an even head_dim (dim / n_head), got {self.head_dim}")
        if self.mlp_hidden is None:
            self.mlp_hidden = 4 * self.dim if self.style == "gpt2" else 64 * -(-8 * self.dim // (3 * 64))
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ValueError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        layout = self.layout  # checks that the block divides the grid
        self.block_len = layout.block_len
        t, h, w = self.grid
        if self.condition == "class":
            if self.num_classes < 1 or self.class_tokens < 1:
                raise ValueError(f"num_classes and class_tokens must be >= 1, got {self.num_classes}, {self.class_tokens}")
            self.prefix_len = self.class_tokens
        elif self.condition == "frames":
            if not 1 <= self.context_frames < t or self.context_frames % self.block[0]:
                raise ValueError(f"context_frames must be in [1, {t}) and a multiple of the block's time size "
                                 f"{self.block[0]}, got {self.context_frames}")
            self.prefix_len = self.context_frames * h * w
        else:
            self.prefix_len = 0
        self.video_len = layout.num_tokens - (self.prefix_len if self.condition == "frames" else 0)
        self.seq_len = self.prefix_len + self.video_len

    @property
    def layout(self) -> BlockLayout:
        return BlockLayout(self.grid, self.block)

    @property
    def null_class(self) -> int:
        return self.num_classes

    @property
    def num_video_blocks(self) -> int:
        return self.video_len // self.block_len


NBP_SIZES: dict[str, dict] = {
    # Seconds on a CPU; the vocabulary is small, set it to the tokenizer's codebook for real runs.
    "tiny": dict(n_layer=4, n_head=4, dim=128, vocab_size=1024),
    # About 59M parameters without the embeddings (141M with them, vocab 64000).
    "small": dict(n_layer=12, n_head=10, dim=640),
    # The paper's sizes.
    "700M": dict(n_layer=24, n_head=16, dim=1536),
    "1.2B": dict(n_layer=24, n_head=32, dim=2048),
    "3B": dict(n_layer=32, n_head=32, dim=3072),
}


def from_name(size: str, **overrides) -> NBPConfig:
    """The named size's config with ``overrides`` (any NBPConfig field) on top."""
    return config_from_name(NBP_SIZES, NBPConfig, size, **overrides)
