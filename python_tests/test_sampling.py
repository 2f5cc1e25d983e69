"""sample_block: determinism, the seed rule, filters, the distribution, guidance, the reference."""

import pytest
import torch

from nbp_ext.ops import sample_block, sample_block_ref


def logits_of(B, L, V, seed=0, scale=2.0, dtype=torch.float32):
    return (torch.randn(B, L, V, generator=torch.Generator().manual_seed(seed)) * scale).to(dtype)


def test_same_seed_and_offset_same_tokens():
    x = logits_of(3, 16, 500)
    a = sample_block(x, 11, 4, top_k=100, top_p=0.9)
    assert torch.equal(a, sample_block(x, 11, 4, top_k=100, top_p=0.9))
    assert not torch.equal(a, sample_block(x, 11, 5, top_k=100, top_p=0.9))
    assert not torch.equal(a, sample_block(x, 12, 4, top_k=100, top_p=0.9))
    assert a.dtype == torch.int64 and a.shape == (3, 16)


def test_row_depends_only_on_its_seed():
    """Row b of a batch drawn with seed s equals a batch of one drawn with seed s + b, anywhere."""
    x = logits_of(5, 8, 300)
    batch = sample_block(x, 100, 7, temperature=0.9, top_k=50, top_p=0.95)
    for b in range(5):
        alone = sample_block(x[b : b + 1], 100 + b, 7, temperature=0.9, top_k=50, top_p=0.95)
        assert torch.equal(batch[b], alone[0])
    # a permuted batch with the permuted per-row seeds gives the permuted tokens
    perm = torch.tensor([3, 0, 4, 1, 2])
    seeds = torch.arange(5, dtype=torch.int64) + 100
    permuted = sample_block(x[perm], seeds[perm], 7, temperature=0.9, top_k=50, top_p=0.95)
    assert torch.equal(permuted, batch[perm])


def test_thread_count_does_not_change_tokens():
    x = logits_of(4, 16, 2000)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sample_block(x, 3, 1, top_k=300, top_p=0.8)
        torch.set_num_threads(max(2, before))
        many = sample_block(x, 3, 1, top_k=300, top_p=0.8)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, many)


def test_top_k_one_and_temperature_zero_are_argmax():
    x = logits_of(2, 16, 1000)
    x[0, 0, 5] = x[0, 0].max() + 1
    x[0, 0, 7] = x[0, 0, 5]  # a tie: the lowest index wins
    argmax = x.argmax(-1)
    assert torch.equal(sample_block(x, 0, 0, top_k=1), argmax)
    assert torch.equal(sample_block(x, 0, 0, temperature=0.0), argmax)
    assert int(argmax[0, 0]) == 5


@pytest.mark.parametrize("top_k,top_p", [(5, 1.0), (0, 0.5), (20, 0.7)])
def test_filters_never_leave_the_allowed_set(top_k, top_p):
    V = 64
    x = logits_of(1, 1, V, seed=3, scale=1.5).expand(4000, 1, V).contiguous()
    tokens = sample_block(x, 0, 0, top_k=top_k, top_p=top_p).flatten()
    row = x[0, 0].double()
    order = row.argsort(descending=True)
    allowed = order[:top_k] if top_k else order
    probs = torch.softmax(row[allowed], 0)
    n_keep = int((probs.cumsum(0) < top_p).sum()) + 1
    allowed = set(allowed[:n_keep].tolist())
    assert set(tokens.tolist()) <= allowed
    assert len(set(tokens.tolist())) == len(allowed)  # and every allowed token shows up


def test_distribution_matches_filtered_softmax():
    """Chi-square goodness of fit over many seeds (fixed), small vocabulary."""
    scipy_stats = pytest.importorskip("scipy.stats")
    V, n = 12, 60000
    row = torch.tensor([2.0, 1.5, 1.2, 1.0, 0.7, 0.5, 0.1, 0.0, -0.5, -1.0, -2.0, -3.0])
    temperature, top_k, top_p = 0.8, 10, 0.95
    x = row.expand(n, 1, V).contiguous()
    tokens = sample_block(x, 12345, 0, temperature=temperature, top_k=top_k, top_p=top_p).flatten()
    counts = torch.bincount(tokens, minlength=V).double()
    p = torch.softmax(row.double()[:top_k] / temperature, 0)
    n_keep = int((p.cumsum(0) < top_p).sum()) + 1
    expected = torch.zeros(V, dtype=torch.float64)
    expected[:n_keep] = p[:n_keep] / p[:n_keep].sum()
    assert counts[n_keep:].sum() == 0
    stat, pvalue = scipy_stats.chisquare(counts[:n_keep].numpy(), (expected[:n_keep] * n).numpy())
    assert pvalue > 1e-3, (stat, pvalue)


def test_guidance_scale_zero_is_unconditional_and_one_is_conditional():
    c, u = logits_of(3, 16, 400, seed=1), logits_of(3, 16, 400, seed=2)
    kw = dict(temperature=1.0, top_k=100, top_p=0.9)
    assert torch.equal(sample_block(c, 9, 2, guidance_scale=0.0, uncond_logits=u, **kw), sample_block(u, 9, 2, **kw))
    assert torch.equal(sample_block(c, 9, 2, guidance_scale=1.0, uncond_logits=u, **kw), sample_block(c, 9, 2, **kw))


def test_guidance_moves_towards_the_condition():
    V = 10
    c = torch.zeros(1, 1, V)
    c[..., 3] = 1.0
    u = torch.zeros(1, 1, V)
    x, xu = c.expand(4000, 1, V).contiguous(), u.expand(4000, 1, V).contiguous()
    plain = (sample_block(x, 0, 0) == 3).float().mean()
    guided = (sample_block(x, 0, 0, guidance_scale=4.0, uncond_logits=xu) == 3).float().mean()
    assert guided > plain + 0.3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    "V,temperature,top_k,top_p,cfg",
    [(50, 1.0, 0, 1.0, None), (50, 0.7, 5, 1.0, None), (300, 1.3, 0, 0.6, None), (2000, 1.0, 200, 0.9, 2.5),
     (64000, 1.0, 16000, 0.9, None), (64000, 0.8, 0, 0.5, None), (20000, 1.0, 1, 1.0, 1.5)],
)
def test_kernel_equals_reference_token_for_token(dtype, V, temperature, top_k, top_p, cfg):
    c = logits_of(2, 16, V, seed=V, dtype=dtype)
    u = logits_of(2, 16, V, seed=V + 1, dtype=dtype) if cfg is not None else None
    for offset in (0, 1, 2**40 + 3):
        ours = sample_block(c, 77, offset, temperature, top_k, top_p, cfg, u)
        ref = sample_block_ref(c, 77, offset, temperature, top_k, top_p, cfg, u)
        assert torch.equal(ours, ref)


def _hard_rows(kind: str) -> torch.Tensor:
    x = logits_of(2, 16, 64000, seed=5)
    if kind == "ties":  # few distinct values: the top-k and top-p cuts fall inside runs of equal entries
        return (x * 2).round() / 2
    if kind == "masked":  # most of the row disallowed, -inf spread through the sample points
        x[..., torch.arange(64000) % 3 != 0] = float("-inf")
        return x
    if kind == "peaked":  # almost all the mass on a handful of tokens
        x[..., 100:105] += 25.0
        return x
    if kind == "flat":  # one value everywhere but a few
        x = torch.zeros(2, 16, 64000)
        x[..., 7] = 0.5
        return x
    return x * 40.0  # "wide": weights spanning far below 2^-64


@pytest.mark.parametrize("kind", ["ties", "masked", "peaked", "flat", "wide"])
@pytest.mark.parametrize("top_k,top_p", [(16000, 0.9), (50, 0.95), (63000, 0.3), (0, 0.999)])
def test_kernel_equals_reference_on_hard_rows(kind, top_k, top_p):
    x = _hard_rows(kind)
    for offset in (0, 9):
        ours = sample_block(x, 3, offset, 1.0, top_k, top_p)
        assert torch.equal(ours, sample_block_ref(x, 3, offset, 1.0, top_k, top_p))


def test_minus_inf_entries_are_never_drawn():
    x = logits_of(2, 16, 100)
    x[..., ::2] = float("-inf")
    tokens = sample_block(x, 1, 0)
    assert (tokens % 2 == 1).all()
    tokens = sample_block(x, 1, 0, top_k=80)  # more than the finite entries: keep them all
    assert (tokens % 2 == 1).all()


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda x: x.__setitem__((0, 3, 7), float("nan")), "finite"),
        (lambda x: x.__setitem__((1, 0, 0), float("inf")), "finite"),
        (lambda x: x.__setitem__((0, 2), float("-inf")), "finite"),
    ],
)
def test_bad_logits_raise(change, match):
    x = logits_of(2, 4, 30)
    change(x)
    with pytest.raises(ValueError, match=match):
        sample_block(x, 0, 0)
    with pytest.raises(ValueError, match=match):
        sample_block_ref(x, 0, 0)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(top_p=0.0), ValueError, "top_p"),
        (dict(top_p=1.5), ValueError, "top_p"),
        (dict(temperature=-1.0), ValueError, "temperature"),
        (dict(top_k=-3), ValueError, "top_k"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(seed=True), TypeError, "seed"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=torch.zeros(3, dtype=torch.int64)), ValueError, "seed"),
        (dict(seed=torch.zeros(2, dtype=torch.int32)), ValueError, "seed"),
        (dict(offset=1.0), TypeError, "offset"),
        (dict(offset=-2), ValueError, "offset"),
        (dict(guidance_scale=2.0), ValueError, "uncond_logits"),
        (dict(uncond_logits=torch.zeros(2, 4, 30)), ValueError, "guidance_scale"),
        (dict(guidance_scale=2.0, uncond_logits=torch.zeros(2, 4, 31)), ValueError, "uncond_logits"),
        (dict(guidance_scale=2.0, uncond_logits=torch.zeros(2, 4, 30, dtype=torch.float16)), TypeError, "uncond_logits"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, exc, match):
    args = dict(seed=0, offset=0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        sample_block(logits_of(2, 4, 30), **args)


def test_bad_logits_shape_and_dtype():
    with pytest.raises(ValueError, match="logits"):
        sample_block(torch.zeros(4, 30), 0, 0)
    with pytest.raises(TypeError, match="logits"):
        sample_block(torch.zeros(2, 4, 30, dtype=torch.float64), 0, 0)
    with pytest.raises(ValueError, match="vocabulary"):
        sample_block(torch.zeros(2, 4, 0), 0, 0)


def test_opcheck_and_compile():
    x = logits_of(2, 16, 100)
    seeds = torch.tensor([5, 9], dtype=torch.int64)
    torch.library.opcheck(torch.ops.nbp.sample_block.default, (x, seeds, 3, 1.0, 10, 0.9, 1.0, None))
    torch.library.opcheck(torch.ops.nbp.sample_block.default, (x, seeds, 3, 1.0, 0, 1.0, 2.0, x.flip(-1)))

    def step(logits):
        return sample_block(logits, 5, 3, top_k=10, top_p=0.9)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), step(x))
