"""AdamW with linear warmup then cosine decay to ``min_ratio`` of the peak learning rate."""

from __future__ import annotations

import math

import torch


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float = 0.1):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def retarget(scheduler: torch.optim.lr_scheduler.LambdaLR, warmup_steps: int, total_steps: int) -> None:
    """Point a ``warmup_cosine`` schedule at a new step count (from the current step on)."""
    scheduler.lr_lambdas = [warmup_cosine(warmup_steps, total_steps) for _ in scheduler.lr_lambdas]


GENERATOR_BETAS = (0.9, 0.95)  # the transformer's: a shorter second-moment memory, as language models train
CONV_BETAS = (0.9, 0.99)  # the tokenizer's, its discriminator's and the judge classifier's


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and kernels only: not on norms, biases, embeddings
    (``*_emb.weight``) or the generator's learned start block."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_embedding = name.endswith("_emb.weight") or name == "start"
        (decay if p.dim() >= 2 and not is_embedding else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)
