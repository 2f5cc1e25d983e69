"""Output head and cross-entropy in one pass over row chunks, without the (N, V) logits.

``linear_cross_entropy(h, weight, target)`` equals
``F.cross_entropy((h @ weight.T).float(), target, reduction="none")`` but computes the logits a
chunk of rows at a time, in the forward pass for the loss and the log-sum-exp, and again in the
backward pass for the gradient (softmax minus one-hot, times the incoming gradient). For a training
batch of 16 clips x 432 tokens and 1000 codes the full logits are 28 MB in fp32, with as many again
for the log-softmax and each of its gradients: freshly allocated every step, their pages are
faulted in every step, which cost more than the head's matmuls on a CPU. With the paper's 64 000
codes they are 1.8 GB. A chunk holds at most 4 MB of logits on a CPU and 256 MB on a GPU (whose
caching allocator reuses it), but never fewer than 256 rows: the weight's gradient (V, d) is read and
written once per chunk, so with 64 000 codes a 4 MB chunk of 16 rows spent its time streaming that
gradient (bench/head_loss.py). The price is the head's forward matmul done twice.

The matmuls run in the dtype of the forward pass's own (h @ W^T): under bf16 autocast in bf16,
both ways, like a plain ``nn.Linear`` head; the softmax and the loss are always fp32.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 20  # logits per chunk on a CPU: 4 MB in fp32
CUDA_CHUNK_ELEMENTS = 1 << 26  # on a GPU: 256 MB in fp32
MIN_CHUNK_ROWS = 256  # rows per chunk at least, whatever the vocabulary


def chunk_rows(vocab: int, device: torch.device) -> int:
    """Rows of logits computed at once for a vocabulary of ``vocab`` codes on ``device``."""
    budget = CUDA_CHUNK_ELEMENTS if device.type == "cuda" else CHUNK_ELEMENTS
    return max(MIN_CHUNK_ROWS, budget // max(vocab, 1))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, vocab = h.shape[0], weight.shape[0]
        loss = torch.empty(n, dtype=torch.float32, device=h.device)
        lse = torch.empty(n, dtype=torch.float32, device=h.device)
        step = chunk_rows(vocab, h.device)
        compute_dtype = h.dtype
        for i in range(0, n, step):
            logits = h[i : i + step] @ weight.T  # (c, V), in autocast's dtype when it is on
            compute_dtype = logits.dtype
            logits = logits.float()
            lse[i : i + step] = torch.logsumexp(logits, dim=-1)
            loss[i : i + step] = lse[i : i + step] - logits.gather(1, target[i : i + step, None])[:, 0]
        ctx.save_for_backward(h, weight, target, lse)
        ctx.compute_dtype = compute_dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        h, weight, target, lse = ctx.saved_tensors
        dt = ctx.compute_dtype
        hc, wc = h.to(dt), weight.to(dt)
        grad_h = torch.empty(h.shape, dtype=dt, device=h.device) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if ctx.needs_input_grad[1] else None
        step = chunk_rows(weight.shape[0], h.device)
        grad_loss = grad_loss.float()
        for i in range(0, h.shape[0], step):
            rows = hc[i : i + step]
            probs = torch.exp((rows @ wc.T).float() - lse[i : i + step, None])  # softmax (c, V)
            probs.scatter_add_(1, target[i : i + step, None], torch.full_like(probs[:, :1], -1.0))
            probs.mul_(grad_loss[i : i + step, None])  # d loss / d logits
            d_logits = probs.to(dt)
            if grad_h is not None:
                torch.mm(d_logits, wc, out=grad_h[i : i + step])
            if grad_w is not None:  # summed in fp32 over the chunks
                if dt == torch.float32:
                    grad_w.addmm_(d_logits.T, rows)
                else:
                    grad_w += (d_logits.T @ rows).float()
        return (None if grad_h is None else grad_h.to(h.dtype),
                None if grad_w is None else grad_w.to(weight.dtype), None)


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy (N,) fp32 of the logits ``h @ weight.T``: ``h (N, d)``, ``weight (V, d)``,
    ``target (N,)`` int64 in [0, V)."""
    if h.dim() != 2 or weight.dim() != 2 or h.shape[1] != weight.shape[1]:
        raise ValueError(f"h must be (N, d) and weight (V, d), got {tuple(h.shape)} and {tuple(weight.shape)}")
    if target.shape != (h.shape[0],):
        raise ValueError(f"target must have shape ({h.shape[0]},), got {tuple(target.shape)}")
    return _LinearCrossEntropy.apply(h, weight, target)
