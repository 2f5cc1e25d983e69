"""Property-based fuzzing of the two ops, run as a child process by test_fuzz_ops.py (so that a crash
in a kernel fails that test instead of ending the test run).

    python python_tests/fuzz/ops_fuzz.py EXAMPLES

For random shapes, dtypes, views, values and arguments, each op either raises ValueError or
TypeError with a message, or returns what its reference returns (attention: within the dtype's
tolerance; sampling: the same tokens).
"""

import math
import sys

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbp_ext.ops import block_causal_attention, block_causal_attention_ref
from nbp_ext.ops.sampling import sample_block, sample_block_ref

EXAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32]
# fp32: inputs up to 10x unit scale give scores up to a few hundred, whose rounding reaches 1e-4 in
# the output depending on the reduction order of the threads
TOL = {torch.float32: 1e-3, torch.float16: 2e-2, torch.bfloat16: 8e-2}


def mostly(valid: list, invalid: list):
    """A value from ``valid`` nine times in ten, else one from ``invalid``."""
    return st.integers(0, 9).flatmap(lambda i: st.sampled_from(invalid if i == 0 else valid))


def tensor(draw, shape, dtype, special: bool):
    if dtype == torch.int32:
        return torch.randint(-3, 3, shape, dtype=dtype)
    t = torch.randn(shape, dtype=torch.float64) * draw(st.sampled_from([0.1, 1.0, 10.0]))
    if special and t.numel():
        flat = t.view(-1)
        flat[draw(st.integers(0, flat.numel() - 1))] = draw(st.sampled_from([math.inf, -math.inf, math.nan, 1e30]))
    return t.to(dtype)


def view(draw, t: torch.Tensor) -> torch.Tensor:
    """The same values as a contiguous tensor, a transposed copy seen back, or a strided slice."""
    kind = draw(st.sampled_from(["contiguous", "transposed", "sliced"]))
    if kind == "transposed" and t.dim() == 4:
        return t.transpose(1, 2).contiguous().transpose(1, 2)
    if kind == "sliced" and t.dim() >= 1:
        return torch.cat([t, t], dim=-1)[..., ::2] if t.shape[-1] else t
    return t


@st.composite
def attention_case(draw):
    b, hkv = draw(st.integers(0, 2)), draw(st.integers(0, 3))
    h = hkv * draw(st.integers(1, 3)) if draw(st.booleans()) else draw(st.integers(0, 4))
    nq, nk, d = draw(st.integers(0, 12)), draw(st.integers(0, 24)), draw(mostly([1, 3, 8, 16, 64], [0, 257]))
    dtype = draw(mostly(DTYPES[:3], DTYPES[3:]))
    special = draw(st.integers(0, 9)) == 0
    q = view(draw, tensor(draw, (b, h, nq, d), dtype, special))
    k = view(draw, tensor(draw, (b, hkv, nk, d), dtype, False))
    v = view(draw, tensor(draw, (b, hkv, nk, d), dtype, False))
    block = draw(mostly(list(range(1, 31)), [0, -1]))
    prefix = draw(mostly(list(range(0, 9)), [-1]))
    offset = draw(mostly([0, 0, 1, 5, 17, 2**31, 2**62 - 20], [2**63 - 17, -1]))
    scale = draw(mostly([None, None, 0.5, 0.0, -1.0], [math.nan, math.inf]))
    return q, k, v, block, prefix, offset, scale, special


@SETTINGS
@given(attention_case())
def test_attention(case):
    q, k, v, block, prefix, offset, scale, special = case
    try:
        out = block_causal_attention(q, k, v, block, prefix_len=prefix, q_offset=offset, scale=scale)
    except (ValueError, TypeError) as e:
        assert str(e), "an error without a message"
        return
    assert out.shape == q.shape and out.dtype == q.dtype
    if special or scale is not None and not math.isfinite(scale) or out.numel() == 0:
        return
    ref = block_causal_attention_ref(q.double(), k.double(), v.double(), block, prefix, offset, scale).to(q.dtype)
    torch.testing.assert_close(out, ref, atol=TOL[q.dtype], rtol=TOL[q.dtype], equal_nan=True)


@st.composite
def sampling_case(draw):
    b, l, vocab = draw(st.integers(0, 3)), draw(st.integers(0, 5)), draw(mostly(list(range(1, 70)), [0]))
    dtype = draw(mostly(DTYPES[:3], DTYPES[3:]))
    special = draw(st.integers(0, 9)) == 0
    logits = view(draw, tensor(draw, (b, l, vocab), dtype, special))
    guided = draw(st.booleans())
    uncond = view(draw, tensor(draw, (b, l, vocab), dtype, False)) if guided else None
    return dict(logits=logits, seed=draw(mostly([0, 1, 12345, 2**40], [2**63 - 1, -1])),
                offset=draw(mostly([0, 3, 2**40], [-1])),
                temperature=draw(mostly([1.0, 0.0, 0.7, 2.0], [-1.0, math.nan])),
                top_k=draw(mostly([0, 1, 5, 100], [-2])), top_p=draw(mostly([1.0, 0.9, 0.5, 1e-6], [0.0, 1.5])),
                guidance_scale=draw(st.sampled_from([1.5, 0.0, -2.0])) if guided else None, uncond_logits=uncond)


@SETTINGS
@given(sampling_case())
def test_sampling(case):
    try:
        tokens = sample_block(**case)
    except (ValueError, TypeError) as e:
        assert str(e), "an error without a message"
        return
    b, l, vocab = case["logits"].shape
    assert tokens.shape == (b, l) and tokens.dtype == torch.int64
    if tokens.numel():
        assert int(tokens.min()) >= 0 and int(tokens.max()) < vocab
    assert torch.equal(tokens, sample_block_ref(**case))


if __name__ == "__main__":
    torch.set_num_threads(2)
    test_attention()
    test_sampling()
    print(f"fuzzed the two ops with {EXAMPLES} examples each: no crash, no silent wrong result")
