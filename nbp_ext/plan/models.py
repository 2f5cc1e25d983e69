"""The models a plan is for, built on the meta device, with their activation estimates.

``build(spec)`` returns the meta model (for the parameter counts and the FSDP units), a one-line
description, and ``activations(flow, checkpointing)``: a function of the micro-batch giving the
peak bytes of activations. The generator's is the formula of ``generator_acts`` with the GPU's
chunk of the loss; the tokenizer's comes from meta runs of one and two clips (``meta_run``),
extended linearly to larger batches.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .flow import Flow
from .generator_acts import GeneratorShape, activation_bytes
from .meta_run import meta_peak

ActivationFn = Callable[[Flow, bool], Callable[[int], int]]


def build(spec) -> tuple[nn.Module, str, ActivationFn]:
    return build_generator(spec) if spec.stage == "generator" else build_tokenizer(spec)


def generator_config(spec):
    """The NBP config of the plan: one latent row per block, class conditioning (101 classes)."""
    from ..models.generator_config import generator_config_from_name  # noqa: PLC0415

    return generator_config_from_name(spec.model, vocab_size=spec.vocab, grid=spec.grid, block=(1, 1, spec.grid[2]),
                                num_classes=101)


def build_generator(spec) -> tuple[nn.Module, str, ActivationFn]:
    from ..models import Generator  # noqa: PLC0415
    from ..models.head_loss import CUDA_CHUNK_ELEMENTS, MIN_CHUNK_ROWS  # noqa: PLC0415

    cfg = generator_config(spec)
    with torch.device("meta"):
        model = Generator(cfg)
    shape = GeneratorShape.from_model(model)
    t, h, w = spec.grid
    description = (f"generator {spec.model} ({cfg.style}, {cfg.n_layer} layers, d_model {cfg.d_model}), "
                   f"grid {t}x{h}x{w}: {cfg.max_len} tokens per clip, vocab {spec.vocab}, {spec.precision}")

    def activations(flow: Flow, checkpointing: bool) -> Callable[[int], int]:
        return lambda batch: activation_bytes(shape, flow, batch, checkpointing, CUDA_CHUNK_ELEMENTS, MIN_CHUNK_ROWS)

    return model, description, activations


def build_tokenizer(spec) -> tuple[nn.Module, str, ActivationFn]:
    from ..models import VideoTokenizer  # noqa: PLC0415

    with torch.device("meta"):
        model = VideoTokenizer.from_name(spec.model)
    model.config.check_clip(spec.frames, spec.size)
    description = (f"tokenizer {spec.model} ({model.config.arch}), clips {spec.frames}x{spec.size}x{spec.size}, "
                   f"L1 reconstruction loss only, {spec.precision}")
    by_dtype: dict[int, nn.Module] = {4: model}
    memo: dict[tuple[Flow, bool], Callable[[int], int]] = {}

    def activations(flow: Flow, checkpointing: bool) -> Callable[[int], int]:
        if (flow, checkpointing) not in memo:
            if flow.param not in by_dtype:  # FSDP's bf16 parameters: a second meta model
                with torch.device("meta"):
                    by_dtype[flow.param] = VideoTokenizer.from_name(spec.model).to(torch.bfloat16)
            m = by_dtype[flow.param]
            m.set_activation_checkpointing(checkpointing)
            one, two = (tokenizer_step_peak(m, flow, b, spec.frames, spec.size) for b in (1, 2))
            memo[(flow, checkpointing)] = lambda batch: max(one, one + (two - one) * (batch - 1))
        return memo[(flow, checkpointing)]

    return model, description, activations


def tokenizer_step_peak(model: nn.Module, flow: Flow, batch: int, frames: int, size: int) -> int:
    """Peak activation bytes of a tokenizer training step (L1 reconstruction loss) on a meta model."""
    video = torch.zeros(batch, model.config.in_channels, frames, size, size, device="meta")

    def loss() -> torch.Tensor:
        recon, _ = model(video)
        return (recon - video).abs().mean()

    return meta_peak(model, loss, [video], flow)
