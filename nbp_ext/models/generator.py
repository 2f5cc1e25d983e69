"""Generator: the decoder-only next-block predictor.

Input sequence: [prefix (P)] [start block (L learned embeddings)] [video blocks 0 .. K-2]. With the
block-causal rule (prefix = block 0, block size L) the output at position p of input block b
predicts the token at position p of video block b (the start block predicts video block 0): the
NBP shift. With block (1, 1, 1) this is an ordinary causal language model.

Hybrid start (config.start == "hybrid"): the start region is one learned token followed by the
first L - 1 tokens of video block 0, with causal attention inside it, so block 0 is generated token
by token and every later block at once.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..ops import block_causal_attention
from .generator_config import GENERATOR_SIZES, GeneratorConfig, generator_config_from_name
from .head_loss import linear_cross_entropy
from .kv_cache import ExplicitCache
from .pretrained import PretrainedMixin
from .rope import apply_rope, rope_tables


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def make_norm(cfg: GeneratorConfig) -> nn.Module:
    return RMSNorm(cfg.d_model) if cfg.style == "llama" else nn.LayerNorm(cfg.d_model)


class Attention(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, (cfg.n_head + 2 * cfg.n_kv_head) * hd, bias=cfg.style == "gpt2")
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.style == "gpt2")

    def forward(self, x, rope, cache=None, pos: int = 0):
        """x (B, n, d) at positions pos .. pos + n - 1; ``cache``: None (the whole sequence at once),
        or a cache of ``nbp_ext.models.kv_cache`` whose ``attend`` stores this block's keys and
        values and attends to everything so far."""
        cfg = self.cfg
        B, n, _ = x.shape
        H, Hkv, hd = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        q, k, v = self.qkv(x).split([H * hd, Hkv * hd, Hkv * hd], dim=-1)
        q = q.view(B, n, H, hd).transpose(1, 2)  # (B, H, n, hd)
        k = k.view(B, n, Hkv, hd).transpose(1, 2)  # (B, Hkv, n, hd)
        v = v.view(B, n, Hkv, hd).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = self.block_causal(q, k, v, pos) if cache is None else cache.attend(self, q, k, v, pos)  # (B, H, n, hd)
        return self.proj(y.transpose(1, 2).reshape(B, n, H * hd).to(x.dtype))

    def block_causal(self, q, k, v, pos: int) -> torch.Tensor:
        """Queries at pos .. pos + n - 1 against keys 0 .. pos + n - 1 under the block-causal rule."""
        cfg = self.cfg
        n = q.shape[2]
        P, L = cfg.prefix_len, cfg.block_len
        split = min(max(P + L - pos, 0), n) if cfg.start == "hybrid" else 0
        if split == 0:
            return block_causal_attention(q, k, v, L, P, q_offset=pos)  # (B, H, n, hd)
        # hybrid start: queries up to the end of the start region attend causally (block size 1)
        head = block_causal_attention(q[:, :, :split], k[:, :, : pos + split], v[:, :, : pos + split], 1, P, q_offset=pos)
        if split == n:
            return head
        return torch.cat([head, block_causal_attention(q[:, :, split:], k, v, L, P, q_offset=pos + split)], dim=2)


class MLP(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.swiglu = cfg.style == "llama"
        self.approximate = "tanh" if cfg.gelu == "tanh" else "none"
        hidden = int(cfg.mlp_ratio * cfg.d_model)
        if self.swiglu:
            hidden = 8 * math.ceil(2 * hidden / 3 / 8)
            self.up = nn.Linear(cfg.d_model, 2 * hidden, bias=False)
            self.down = nn.Linear(hidden, cfg.d_model, bias=False)
        else:
            self.up = nn.Linear(cfg.d_model, hidden)
            self.down = nn.Linear(hidden, cfg.d_model)

    def forward(self, x):
        if self.swiglu:
            gate, up = self.up(x).chunk(2, dim=-1)
            return self.down(F.silu(gate) * up)
        return self.down(F.gelu(self.up(x), approximate=self.approximate))


class Block(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.norm1, self.attn = make_norm(cfg), Attention(cfg)
        self.norm2, self.mlp = make_norm(cfg), MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rope, cache=None, pos: int = 0):
        x = x + self.drop(self.attn(self.norm1(x), rope, cache, pos))
        return x + self.drop(self.mlp(self.norm2(x)))


class Generator(nn.Module, PretrainedMixin):
    config_class = GeneratorConfig
    model_type = "generator"

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = cfg = config
        d, L = cfg.d_model, cfg.block_len
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        if cfg.condition == "class":
            self.class_emb = nn.Embedding(cfg.num_classes + 1, d)  # the last id is the null class
        n_start = 1 if cfg.start == "hybrid" else L
        self.start = nn.Parameter(torch.randn(n_start, d) * 0.02)  # the learned start block (hybrid: one token)
        if cfg.style == "gpt2":
            self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = make_norm(cfg)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        coords = self.input_coords()
        cos, sin = rope_tables(coords, cfg.head_dim, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        # The generated latent frame (0 = the first generated) of every video token, for the
        # per-frame loss; context frames are the prefix, not video tokens.
        frame = cfg.layout.coords()[:, 0]  # (N,) block-major
        if cfg.condition == "frames":
            frame = frame[cfg.prefix_len:] - cfg.context_frames
        self.register_buffer("video_frame", frame, persistent=False)  # (video_len,)
        self.num_video_frames = cfg.grid[0] - (cfg.context_frames if cfg.condition == "frames" else 0)
        self.apply(self._init_weights)
        self.activation_checkpointing = False  # set by the training loop (set_activation_checkpointing)

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Keep only each block's input in the forward pass and recompute the block in the backward."""
        self.activation_checkpointing = enabled

    def fsdp_units(self) -> list[nn.Module]:
        """The submodules sharded on their own under FSDP: the transformer blocks (the root holds the
        embeddings, the final norm and the head)."""
        return list(self.blocks)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    @classmethod
    def from_name(cls, size: str, **overrides) -> "Generator":
        return cls(generator_config_from_name(size, **overrides))

    sizes = GENERATOR_SIZES

    def num_params(self, non_embedding: bool = False) -> int:
        """All parameters, or those of the transformer body only (no token/class/position embeddings,
        no output head): the count the named sizes refer to."""
        skip = {"tok_emb.weight", "class_emb.weight", "pos_emb.weight", "head.weight"} if non_embedding else set()
        return sum(p.numel() for name, p in self.named_parameters() if name not in skip)

    # ---- positions --------------------------------------------------------------------------
    def input_coords(self) -> torch.Tensor:
        """(max_len, 3) grid coordinates of every input position (prefix, start block, video blocks)."""
        cfg = self.config
        grid_coords = cfg.layout.coords()  # (N, 3), block-major
        P, L = cfg.prefix_len, cfg.block_len
        if cfg.condition == "frames":
            prefix, video = grid_coords[:P], grid_coords[P:]
        else:
            prefix, video = torch.zeros(P, 3, dtype=torch.long), grid_coords
        start = video[:L] - torch.tensor([cfg.block[0], 0, 0])  # the block before the first one, in time
        return torch.cat([prefix, start, video[: cfg.video_len - L]], dim=0)

    def _rope(self, pos: int | torch.Tensor, n: int):
        """Rotary tables of positions pos .. pos + n - 1 (pos a tensor (1,) in an exported step)."""
        if self.config.style != "llama":
            return None
        if isinstance(pos, torch.Tensor):
            idx = pos + torch.arange(n, device=pos.device)  # (n,)
            return self.rope_cos.index_select(0, idx), self.rope_sin.index_select(0, idx)
        return self.rope_cos[pos : pos + n], self.rope_sin[pos : pos + n]

    # ---- embeddings -------------------------------------------------------------------------
    def prefix_embeddings(self, cond: torch.Tensor | None) -> torch.Tensor:
        """cond: class ids (B,) (num_classes = the null class), context tokens (B, P), or None."""
        cfg = self.config
        if cfg.condition == "class":
            if cond is None or cond.dim() != 1:
                raise ValueError("cond must be class ids of shape (B,) for a class-conditional model")
            return self.class_emb(cond)[:, None]  # (B, 1, d)
        if cfg.condition == "frames":
            if cond is None or cond.dim() != 2 or cond.shape[1] != cfg.prefix_len:
                raise ValueError(f"cond must be the context tokens of shape (B, {cfg.prefix_len}) "
                                 f"({cfg.context_frames} latent frames), got {None if cond is None else tuple(cond.shape)}")
            return self.tok_emb(cond)
        raise ValueError("this model is unconditional: use start_embeddings(batch) instead")

    def start_embeddings(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Prefix and start block: the first P + L inputs, (B, P + L, d) (hybrid start: P + 1)."""
        start = self.start[None].expand(batch, -1, -1)
        if self.config.condition == "none":
            return start
        return torch.cat([self.prefix_embeddings(cond), start], dim=1)

    def hidden(self, x: torch.Tensor, pos: int | torch.Tensor = 0, caches=None) -> torch.Tensor:
        """Run the blocks on inputs x (B, n, d) sitting at positions pos .. pos + n - 1 (pos a tensor
        (1,) in an exported step); ``caches``: one per layer (``nbp_ext.models.kv_cache``), or None."""
        n = x.shape[1]
        if self.config.style == "gpt2":
            if isinstance(pos, torch.Tensor):
                x = x + self.pos_emb(pos + torch.arange(n, device=pos.device))
            else:
                x = x + self.pos_emb.weight[pos : pos + n]
        rope = self._rope(pos, n)
        for i, block in enumerate(self.blocks):
            if self.activation_checkpointing and caches is None and torch.is_grad_enabled():
                x = checkpoint(block, x, rope, None, pos, use_reentrant=False)  # recomputed in the backward pass
            else:
                x = block(x, rope, None if caches is None else caches[i], pos)
        return self.norm(x)

    # ---- generation with explicit caches (the exported graphs) ---------------------------------
    def logits_fp32(self, h: torch.Tensor) -> torch.Tensor:
        """Logits in fp32 whatever the model's type: the sampler reads them so (hidden state and head
        weight widened for this one matmul)."""
        return F.linear(h.float(), self.head.weight.float())

    def prefill_explicit(self, cond: torch.Tensor | None, batch: int):
        """Prefix and start through the model -> (logits (B, S, V) fp32 of video block 0 (hybrid start:
        of its first token, S = 1), keys and values per layer (B, Hkv, P + S, D))."""
        caches = [ExplicitCache() for _ in self.blocks]
        h = self.hidden(self.start_embeddings(cond, batch), 0, caches)
        return self.logits_fp32(h[:, self.config.prefix_len :]), [c.k for c in caches], [c.v for c in caches]

    def step_explicit(self, tokens: torch.Tensor, position: torch.Tensor, past_k: list, past_v: list):
        """tokens (B, n) at position (1,) int64 against caches (B, Hkv, N, D) whose first ``position``
        entries are valid -> (logits (B, n, V) fp32, the tokens' keys and values per layer (B, Hkv, n, D)).
        n = L: a block; n = 1: a token of block 0 of a hybrid start (it sees the cache and itself)."""
        caches = [ExplicitCache(k, v, position) for k, v in zip(past_k, past_v)]
        h = self.hidden(self.tok_emb(tokens), position, caches)
        return self.logits_fp32(h), [c.k for c in caches], [c.v for c in caches]

    # ---- training ---------------------------------------------------------------------------
    def split_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Codes (B, T', H', W') -> (context tokens (B, P) or None, video tokens (B, video_len))."""
        cfg = self.config
        seq = cfg.layout.to_sequence(codes)  # (B, N) block-major
        if cfg.condition == "frames":
            return seq[:, : cfg.prefix_len], seq[:, cfg.prefix_len :]
        return None, seq

    def forward(self, video: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, video_len, V): logits[:, i] predicts video[:, i]."""
        return self.head(self.video_hidden(video, cond))

    def video_hidden(self, video: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced final hidden states (B, video_len, d), before the output head."""
        cfg = self.config
        B, L = video.shape[0], cfg.block_len
        if video.shape[1] != cfg.video_len:
            raise ValueError(f"video tokens must have length {cfg.video_len}, got {video.shape[1]}")
        x = self.start_embeddings(cond, B)
        if cfg.start == "hybrid":  # the start token is followed by block 0's first L - 1 tokens
            x = torch.cat([x, self.tok_emb(video[:, : L - 1])], dim=1)
        x = torch.cat([x, self.tok_emb(video[:, : cfg.video_len - L])], dim=1)
        return self.hidden(x)[:, cfg.prefix_len :]  # (B, video_len, d)

    def loss(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """NBP loss on video tokens only: overall, per position inside the block (L,), and per
        generated latent frame (frames,): a model that has learned the motion pays less for a frame
        than for the one before it."""
        cfg = self.config
        context, video = self.split_codes(codes)
        cond = context
        if cfg.condition == "class":
            if labels is None:
                raise ValueError("labels are required for a class-conditional model")
            cond = labels
            if self.training and cfg.cond_dropout > 0:
                drop = torch.rand(labels.shape, device=labels.device) < cfg.cond_dropout
                cond = torch.where(drop, torch.full_like(labels, cfg.num_classes), labels)
        h = self.video_hidden(video, cond)  # (B, video_len, d)
        per_token = linear_cross_entropy(h.flatten(0, 1), self.head.weight, video.flatten())  # (B * video_len,)
        per_token = per_token.view(video.shape[0], -1, cfg.block_len)  # (B, blocks, L)
        return {"loss": per_token.mean(), "per_position": per_token.detach().mean(dim=(0, 1)),
                "per_frame": self._per_frame(per_token.detach().flatten(1).mean(0))}

    def _per_frame(self, per_video_token: torch.Tensor) -> torch.Tensor:
        """Mean loss (video_len,) over each generated latent frame -> (frames,), the first generated first
        (every frame has H' x W' tokens)."""
        n = self.num_video_frames
        sums = torch.zeros(n, device=per_video_token.device).index_add_(0, self.video_frame, per_video_token.float())
        return sums * (n / self.video_frame.numel())
