"""Block-by-block generation: prefill, one decode step per block, every block drawn at once."""

from __future__ import annotations

import torch

from ..ops import sample_block
from ..models.kv_cache import make_caches
from .packed import packed_linears
from .sampling_config import SamplingConfig


@torch.no_grad()
def prefill(model, cond: torch.Tensor | None, batch: int, caches) -> torch.Tensor:
    """Prefix and start block through the model; returns logits (B, L, V) for video block 0
    (hybrid start: (B, 1, V) for its first token)."""
    cfg = model.config
    x = model.start_embeddings(cond, batch)  # (B, P + L, d)
    h = model.hidden(x, 0, caches)
    return model.head(h[:, cfg.prefix_len :])


@torch.no_grad()
def decode_block(model, tokens: torch.Tensor, pos: int, caches) -> torch.Tensor:
    """One step: the block just drawn (B, L) at input positions pos .. pos + L - 1 -> logits (B, L, V)."""
    return model.head(model.hidden(model.tok_emb(tokens), pos, caches))


def _check_cond(model, cond: torch.Tensor | None, num_videos: int | None) -> tuple[torch.Tensor | None, int]:
    cfg = model.config
    if cfg.condition == "class":
        if cond is None:
            raise ValueError("cond: class ids (B,) are required for a class-conditional model")
        cond = torch.as_tensor(cond, dtype=torch.long).reshape(-1)
        bad = (cond < 0) | (cond >= cfg.num_classes)
        if bool(bad.any()):
            raise ValueError(f"class ids must be in [0, {cfg.num_classes}), got {cond[bad].tolist()}")
        return cond, cond.shape[0]
    if cfg.condition == "frames":
        if cond is None or cond.dim() != 2 or cond.shape[1] != cfg.prefix_len:
            raise ValueError(f"cond: context tokens of shape (B, {cfg.prefix_len}) ({cfg.context_frames} latent "
                             f"frames) are required, got {None if cond is None else tuple(cond.shape)}")
        if bool(((cond < 0) | (cond >= cfg.vocab_size)).any()):
            raise ValueError(f"context tokens must be in [0, {cfg.vocab_size})")
        return cond, cond.shape[0]
    if num_videos is None or num_videos < 1:
        raise ValueError("num_videos must be >= 1 for an unconditional model")
    return None, num_videos


@torch.no_grad()
def generate_tokens(model, cond=None, *, num_videos: int | None = None, seed: int = 0,
                    sampling: SamplingConfig | None = None) -> torch.Tensor:
    """Video tokens (B, video_len) in block-major order, one forward pass per block.

    Row b uses seed + b, so a video depends on its seed, not on the batch it was generated in.
    With a guidance scale other than 1 on a class-conditional model, the conditional and the
    null-class streams run as one batch of 2B and every block is drawn from the guided logits.
    """
    cfg = model.config
    s = sampling or SamplingConfig()
    cond, B = _check_cond(model, cond, num_videos)
    device = next(model.parameters()).device
    guided = s.guided(cfg.condition)
    if guided:
        cond = torch.cat([cond, torch.full_like(cond, cfg.num_classes)])  # (2B,): conditional, then null
    if cond is not None:
        cond = cond.to(device)
    streams = 2 * B if guided else B
    L, P = cfg.block_len, cfg.prefix_len
    K = cfg.video_len // L  # blocks (hybrid start: the first one takes L steps)
    top_k = min(s.top_k, cfg.vocab_size)
    caches = make_caches(model, streams)
    out = torch.empty(B, K, L, dtype=torch.long, device=device)

    def draw(logits: torch.Tensor, step: int) -> torch.Tensor:
        c, u = (logits[:B], logits[B:]) if guided else (logits, None)
        return sample_block(c.float(), seed, step, s.temperature, top_k, s.top_p,
                            s.guidance_scale if guided else None, None if u is None else u.float(), check=False)

    def feed(tokens: torch.Tensor, pos: int) -> torch.Tensor:
        return decode_block(model, torch.cat([tokens, tokens]) if guided else tokens, pos, caches)

    with packed_linears(model, streams * L):  # CPU: weights in oneDNN's packed layout for the loop
        logits = prefill(model, cond, streams, caches)
        step = 0
        if cfg.start == "hybrid":  # block 0 token by token: its token j sits at input position P + 1 + j
            first = torch.empty(B, L, dtype=torch.long, device=device)
            for j in range(L):
                first[:, j] = draw(logits, step)[:, 0]
                step += 1
                if j + 1 < L:
                    logits = feed(first[:, j : j + 1], P + 1 + j)
            out[:, 0] = first
            if K > 1:
                logits = feed(first, P + L)
            blocks = range(1, K)
        else:
            blocks = range(K)
        for k in blocks:
            out[:, k] = draw(logits, step)  # (B, L)
            step += 1
            if k + 1 < K:
                logits = feed(out[:, k], P + L + k * L)
    if bool((out < 0).any()):  # one check after the loop (CUDA marks bad rows with -1)
        raise FloatingPointError("the model produced NaN or infinite logits during generation")
    return out.reshape(B, K * L)


@torch.no_grad()
def generate(model, cond=None, *, num_videos: int | None = None, seed: int = 0,
             sampling: SamplingConfig | None = None) -> torch.Tensor:
    """Latent codes (B, T', H', W'): the context (frame prediction) followed by the generated blocks."""
    cfg = model.config
    video = generate_tokens(model, cond, num_videos=num_videos, seed=seed, sampling=sampling)
    seq = torch.cat([cond.to(video.device), video], dim=1) if cfg.condition == "frames" else video
    return cfg.layout.to_grid(seq)
