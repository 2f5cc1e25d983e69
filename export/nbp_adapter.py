"""Adapter of nbp_ext's NBPTransformer to the export contract (export/generator_graphs.py).

``NBPAdapter`` runs the model's own layers (norms, projections, rotary or learned positions, MLPs)
with explicit key/value tensors instead of the model's KVCache modules:

- ``prefill(prefix)``: the prefix (class id, context tokens, or nothing for an unconditional model)
  and the learned start block (or the hybrid start's one token) through the model with the compiled
  block-causal attention op (exported
  through export/onnx_attention.py); returns the logits of video block 0 and every layer's keys and
  values of those P + L positions.
- ``step(tokens, position, past_k, past_v)``: one block at a *tensor* position against caches of a
  fixed length, so the graph is static: positions are gathered (rotary tables or learned position
  embeddings) with ``position + arange(L)``, and attention is ``cached_block_attention`` (every cached
  key before ``position`` is an earlier block, the block sees itself).

``load_generator`` reads a run of ``python -m nbp_ext.train`` (or a bare generator folder).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from export.generator_graphs import GeneratorSpec, cached_block_attention

from nbp_ext.runs import GENERATOR_DIR, RUN_INFO, read_run_info, recorded_sampling


class GeneratorUnavailable(RuntimeError):
    pass


class NBPAdapter(nn.Module):
    """Explicit-cache prefill and step of an NBPTransformer (the model's weights, no copies)."""

    def __init__(self, model):
        super().__init__()
        self.model = model.eval()
        self.cfg = model.config

    # ---- one transformer layer with explicit keys and values ------------------------------------
    def _layer(self, block, x, rope, attend):
        cfg = self.cfg
        R, n, _ = x.shape
        H, Hkv, D = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        q, k, v = block.attn.qkv(block.norm1(x)).split([H * D, Hkv * D, Hkv * D], dim=-1)
        q = q.view(R, n, H, D).transpose(1, 2)  # (R, H, n, D)
        k = k.view(R, n, Hkv, D).transpose(1, 2)  # (R, Hkv, n, D)
        v = v.view(R, n, Hkv, D).transpose(1, 2)
        if rope is not None:
            from nbp_ext.models.rope import apply_rope

            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = attend(q, k, v)  # (R, H, n, D)
        x = x + block.attn.proj(y.transpose(1, 2).reshape(R, n, H * D))
        return x + block.mlp(block.norm2(x)), k, v

    def _run(self, x, rope, attend):
        keys, values = [], []
        for i, block in enumerate(self.model.blocks):
            x, k, v = self._layer(block, x, rope, lambda q, k, v, i=i: attend(i, q, k, v))
            keys.append(k)
            values.append(v)
        # The logits the sampler reads in fp32 whatever the model's type: hidden state and head weight
        # widened for this one matmul (export/precision.py).
        return F.linear(self.model.norm(x).float(), self.model.head.weight.float()), keys, values

    def prefill(self, prefix):
        """prefix (R, P) int64 (P = 0 for an unconditional model) -> logits (R, L, V), keys, values (R, Hkv, P + L, D)."""
        from nbp_ext.ops import block_causal_attention

        cfg, m = self.cfg, self.model
        P, L = cfg.prefix_len, cfg.block_len
        S, block = (1, 1) if cfg.start == "hybrid" else (L, L)  # hybrid: one start token, causal
        cond = {"class": lambda: prefix[:, 0], "frames": lambda: prefix, "none": lambda: None}[cfg.condition]()
        x = m.start_embeddings(cond, prefix.shape[0])  # (R, P + S, d)
        if cfg.style == "gpt2":
            x = x + m.pos_emb.weight[: P + S]
        logits, keys, values = self._run(x, m._rope(0, P + S),
                                         lambda i, q, k, v: block_causal_attention(q, k, v, block, P))
        return logits[:, P:], keys, values

    def step(self, tokens, position, past_k, past_v):
        """tokens (R, n), position (1,) int64, caches (R, Hkv, N, D) -> logits (R, n, V), keys, values (R, Hkv, n, D).

        n = L: a block; n = 1: a token of block 0 of a hybrid start (it sees the cache and itself)."""
        cfg, m = self.cfg, self.model
        idx = position + torch.arange(tokens.shape[1], device=tokens.device)  # (n,) absolute positions
        x = m.tok_emb(tokens)
        rope = None
        if cfg.style == "gpt2":
            x = x + m.pos_emb(idx)
        else:
            rope = (m.rope_cos.index_select(0, idx), m.rope_sin.index_select(0, idx))
        scale = 1.0 / math.sqrt(cfg.head_dim)
        return self._run(x, rope, lambda i, q, k, v: cached_block_attention(q, k, v, past_k[i], past_v[i], position, scale))


def generator_spec(model) -> GeneratorSpec:
    cfg = model.config
    fields = dict(vocab_size=cfg.vocab_size, num_layers=cfg.n_layer, kv_heads=cfg.n_kv_head, head_dim=cfg.head_dim,
                  latent_grid=tuple(cfg.grid), block_shape=tuple(cfg.block), prefix_kind=cfg.condition,
                  prefix_len=cfg.prefix_len, start=cfg.start)
    if cfg.condition == "class":
        fields.update(num_classes=cfg.num_classes, null_class=cfg.num_classes)
    elif cfg.condition == "frames":
        fields.update(context_frames=cfg.context_frames)
    spec = GeneratorSpec(**fields)
    if spec.num_steps != cfg.num_steps or spec.max_cache_len > cfg.max_len:
        raise GeneratorUnavailable(f"the export contract and the model disagree: {spec.num_steps} steps and a cache "
                                   f"of {spec.max_cache_len} vs {cfg.num_steps} steps and max_len {cfg.max_len}")
    return spec


def video_shape(grid: tuple[int, int, int], spatial_factor: int) -> tuple[int, int, int]:
    """(frames, height, width) that a tokenizer decodes a (T', H', W') grid to (time x4 after the first
    frame, space x its spatial factor: 8 for the causal CNN, the patch size for the patch codec)."""
    t, h, w = grid
    return 1 + 4 * (t - 1), spatial_factor * h, spatial_factor * w


def generator_folder(path: Path) -> Path:
    """A run folder (runs/nbp-*) -> its generator/; a generator folder stays as it is."""
    path = Path(path)
    if (path / GENERATOR_DIR / "config.json").is_file():
        return path / GENERATOR_DIR
    if (path / "config.json").is_file():
        return path
    raise FileNotFoundError(f"--checkpoint: {path} is neither a generator run (with {GENERATOR_DIR}/config.json) "
                            f"nor a generator folder (with config.json)")


def run_info(run: Path) -> dict:
    """generator.json of a run folder, or {} where there is none."""
    info = read_run_info(run)
    if not isinstance(info.get("sampling", {}), dict):
        raise ValueError(f"{Path(run) / RUN_INFO}: expected a JSON object with \"sampling\" an object")
    return info


def recorded_tokenizer(run: Path) -> tuple[Path | None, str | None]:
    """(tokenizer folder, SHA-256 of its weights) that generator.json of a run records, or (None, None)."""
    info = run_info(run)
    tok = info.get("tokenizer")
    return (Path(tok) if tok else None), info.get("tokenizer_sha256")


def load_generator(path):
    """(model, adapter, spec, sampling defaults) of a generator run or folder; the defaults are the
    run's (generator.json), else the paper's."""
    from nbp_ext.models import NBPTransformer

    folder = generator_folder(Path(path))
    try:
        model = NBPTransformer.from_pretrained(folder).float().eval()
    except ValueError as e:  # nbp_ext names the file and what is wrong with it
        raise ValueError(f"--checkpoint: {e}") from e
    except (OSError, KeyError, TypeError, RuntimeError) as e:
        raise GeneratorUnavailable(f"--checkpoint: cannot load the NBPTransformer in {folder}: {e}") from e
    spec = generator_spec(model)
    rec = recorded_sampling(run_info(folder.parent) if folder.name == GENERATOR_DIR else {})
    top_k = rec["top_k"]  # its type is checked with the other defaults (export/to_trt.py)
    sampling = {"temperature": rec["temperature"], "top_p": rec["top_p"],
                "top_k": min(top_k, spec.vocab_size) if isinstance(top_k, int) else top_k,
                "guidance_scale": rec["cfg_scale"] if spec.prefix_kind == "class" else 1.0}
    return model, NBPAdapter(model), spec, sampling
