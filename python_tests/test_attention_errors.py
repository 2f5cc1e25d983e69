"""Bad input to block_causal_attention gets a clear error naming the argument."""

import pytest
import torch

from nbp_ext.ops import block_causal_attention, not_supported_reasons


def qkv(B=1, H=4, Hkv=2, N=8, D=16, dtype=torch.float32):
    return torch.randn(B, H, N, D, dtype=dtype), torch.randn(B, Hkv, N, D, dtype=dtype), torch.randn(B, Hkv, N, D, dtype=dtype)


@pytest.mark.parametrize(
    "make,kwargs,exc,match",
    [
        (lambda: qkv(dtype=torch.float64), {}, TypeError, "float32, float16 or bfloat16"),
        (lambda: tuple(t.to(torch.int32) for t in qkv()), {}, TypeError, "float32, float16 or bfloat16"),
        (lambda: (qkv()[0][0],) + qkv()[1:], {}, ValueError, "q must be a 4-D"),
        (lambda: (qkv()[0], qkv()[1], qkv()[2][..., :8]), {}, ValueError, "k and v must have the same shape"),
        (lambda: (qkv()[0], qkv()[1].half(), qkv()[2]), {}, TypeError, "share one dtype"),
        (lambda: qkv(D=300), {}, ValueError, "head dim"),
        (lambda: qkv(H=3, Hkv=2), {}, ValueError, "multiple of the number of key/value heads"),
        (lambda: (qkv()[0], qkv()[1][:, :, :0], qkv()[2][:, :, :0]), {}, ValueError, "at least one key"),
        (lambda: qkv(), dict(block_size=0), ValueError, "block_size"),
        (lambda: qkv(), dict(block_size=-4), ValueError, "block_size"),
        (lambda: qkv(), dict(block_size=2.0), TypeError, "block_size"),
        (lambda: qkv(), dict(prefix_len=-1), ValueError, "prefix_len"),
        (lambda: qkv(), dict(q_offset=-1), ValueError, "q_offset"),
        (lambda: (qkv()[0], qkv(B=2)[1], qkv(B=2)[2]), {}, ValueError, "batch size"),
    ],
)
def test_bad_input(make, kwargs, exc, match):
    q, k, v = make()
    args = dict(block_size=4)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        block_causal_attention(q, k, v, **args)


def test_device_mix_is_rejected():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="one device"):
        block_causal_attention(q, k.to("meta"), v, 4)


def test_not_supported_reasons():
    q, k, v = qkv()
    assert not_supported_reasons(q, k, v, 4) == []
    reasons = not_supported_reasons(q.double(), k, v[..., :3], 0)
    assert any("float64" in r for r in reasons)
    assert not_supported_reasons(*qkv(D=512), 4) and not_supported_reasons(*qkv(H=3, Hkv=2), 4)
