"""GeneratorConfig: the generator's dataclass config and its named sizes."""

from __future__ import annotations

from dataclasses import dataclass

from .layout import BlockLayout
from .registry import config_from_name

CONDITIONS = ("class", "frames", "none")
STYLES = ("llama", "gpt2")
STARTS = ("learned", "hybrid")
GELUS = ("tanh", "exact")  # the gpt2 style's MLP activation: GELU's tanh form, or erf (the official NBP models)


@dataclass
class GeneratorConfig:
    # transformer
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # grouped KV heads; None: n_head
    d_model: int = 128
    style: str = "llama"  # "llama": RMSNorm, SwiGLU, 3-axis rotary; "gpt2": LayerNorm, GELU, learned positions
    mlp_ratio: float = 4.0  # hidden width / d_model (SwiGLU uses 2/3 of it per branch)
    gelu: str = "tanh"  # gpt2 style: "tanh" (GELU's tanh approximation) or "exact" (erf)
    rope_theta: float = 10000.0
    dropout: float = 0.0
    # tokens and layout
    vocab_size: int = 64000
    grid: tuple[int, int, int] = (5, 16, 16)
    block: tuple[int, int, int] = (1, 1, 16)
    # conditioning
    condition: str = "class"  # "class": class token prefix; "frames": first latent frames; "none"
    num_classes: int = 101  # the null class (for guidance) is id num_classes
    context_frames: int = 2  # latent frames given as the prefix when condition == "frames"
    cond_dropout: float = 0.1  # share of training clips whose class is replaced by the null class
    start: str = "learned"  # first video block: "learned" start block (one step) or "hybrid" (token by token)

    def __post_init__(self):
        self.grid, self.block = tuple(self.grid), tuple(self.block)
        for name in ("n_layer", "n_head", "d_model", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.gelu not in GELUS:
            raise ValueError(f"gelu must be one of {GELUS}, got {self.gelu!r}")
        if self.d_model % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError(f"d_model ({self.d_model}) must divide by n_head ({self.n_head}) and n_head by n_kv_head ({self.n_kv_head})")
        self.layout  # validates grid and block
        if self.condition == "frames" and not (0 < self.context_frames < self.grid[0] and self.context_frames % self.block[0] == 0):
            raise ValueError(f"context_frames must be in [1, {self.grid[0]}) and a multiple of the block's time size "
                             f"{self.block[0]}, got {self.context_frames}")
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.condition == "class" and self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 for class conditioning, got {self.num_classes}")

    @property
    def layout(self) -> BlockLayout:
        return BlockLayout(self.grid, self.block)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def block_len(self) -> int:
        return self.layout.block_len

    @property
    def prefix_len(self) -> int:
        """P: condition tokens in front of the sequence (block 0 of the block-causal rule)."""
        if self.condition == "class":
            return 1
        if self.condition == "frames":
            return self.context_frames * self.grid[1] * self.grid[2]
        return 0

    @property
    def video_len(self) -> int:
        """Tokens the model generates: the grid less the context frames."""
        return self.layout.seq_len - (self.prefix_len if self.condition == "frames" else 0)

    @property
    def num_steps(self) -> int:
        """Forward passes to generate a clip: one per block (hybrid start: L - 1 more)."""
        extra = self.block_len - 1 if self.start == "hybrid" else 0
        return self.video_len // self.block_len + extra

    @property
    def max_len(self) -> int:
        """Longest model input: prefix + start block + every video block but the last."""
        return self.prefix_len + self.video_len


GENERATOR_SIZES: dict[str, dict] = {
    # CPU sizes; the tiny one trains in minutes on the embedded synthetic set. Its head size is 32,
    # so each grid axis gets 5 rotary frequencies: with theta 10 000 only the first two turn
    # noticeably over a 12-16 code axis; theta 20 spreads them over it. Held-out loss of the default
    # pipeline's generator stage on 128 clips: 0.453 (theta 10 000), 0.442 (100), 0.430 (20), 0.433 (5).
    "tiny": dict(n_layer=4, n_head=4, d_model=128, rope_theta=20.0),
    "small": dict(n_layer=8, n_head=8, d_model=512),  # ~53M parameters with the 64000-code vocabulary
    # The paper's GPT-2 style sizes.
    "700M": dict(n_layer=24, n_head=16, d_model=1536, style="gpt2"),
    "1.2B": dict(n_layer=24, n_head=32, d_model=2048, style="gpt2"),
    "3B": dict(n_layer=32, n_head=32, d_model=3072, style="gpt2"),
}


def generator_config_from_name(size: str, **overrides) -> GeneratorConfig:
    return config_from_name(GENERATOR_SIZES, GeneratorConfig, size, **overrides)
