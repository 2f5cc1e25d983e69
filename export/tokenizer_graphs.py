"""Export wrappers of the video tokenizer: the decoder (codes -> frames) and, for frame prediction,
the encoder (context frames -> codes)."""

from __future__ import annotations

import torch
from torch import nn


class DecoderGraph(nn.Module):
    """codes (B, T', H', W') int64 -> video (B, 3, T, H, W) float32, as VideoTokenizer.decode.

    The code book is tabulated once (``indices_to_codes`` of every index), so the graph looks codes
    up with a Gather instead of the quantizer's range check, which needs the data on the host.
    """

    def __init__(self, tokenizer):
        super().__init__()
        self.decoder = tokenizer.decoder
        q = tokenizer.quantizer
        dtype = next(tokenizer.parameters()).dtype
        self.register_buffer("codebook", q.indices_to_codes(torch.arange(q.codebook_size)).to(dtype), persistent=False)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        q = self.codebook[codes]  # (B, T', H', W', C)
        return self.decoder(q.permute(0, 4, 1, 2, 3)).float()


class EncoderGraph(nn.Module):
    """video (B, 3, T, H, W) float32 in [-1, 1] -> codes (B, T', H', W') int64, as VideoTokenizer.encode."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        dtype = next(self.tokenizer.parameters()).dtype
        return self.tokenizer.quantize(video.to(dtype))[1]
