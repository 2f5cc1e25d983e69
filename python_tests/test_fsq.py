import itertools

import pytest
import torch

from nbp_ext.models import FSQ


def test_default_codebook_has_64000_codes():
    assert FSQ((8, 8, 8, 5, 5, 5)).codebook_size == 64000


@pytest.mark.parametrize("levels", [(8, 8, 8, 5, 5, 5), (3, 4), (2,)])
def test_every_index_round_trips(levels):
    fsq = FSQ(levels)
    idx = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(idx)  # (N, C)
    assert codes.shape == (fsq.codebook_size, len(levels))
    assert codes.min() >= -1 and codes.max() <= 1
    assert torch.equal(fsq.codes_to_indices(codes), idx)
    # every code is distinct and every grid point appears exactly once
    assert torch.unique(codes, dim=0).shape[0] == fsq.codebook_size


def test_quantize_hits_every_level_and_only_levels():
    fsq = FSQ((8, 5))
    z = torch.linspace(-6, 6, 4001).unsqueeze(1).repeat(1, 2)  # (N, 2)
    q, idx = fsq(z)
    for ch, levels in enumerate(fsq.levels):
        half = levels // 2
        grid = torch.round(q[:, ch] * half)
        assert set(grid.unique().tolist()) == set(range(-half, levels - half))
    assert idx.min() >= 0 and idx.max() < fsq.codebook_size
    assert torch.equal(fsq.codes_to_indices(q), idx)


def test_mixed_radix_order():
    fsq = FSQ((3, 4))
    for i, (a, b) in enumerate(itertools.product(range(4), range(3))):
        digits = torch.tensor([b, a])
        code = (digits - torch.tensor([1, 2])).float() / torch.tensor([1, 2])
        assert fsq.codes_to_indices(code).item() == i


def test_straight_through_gradient():
    fsq = FSQ((8, 8, 8, 5, 5, 5))
    z = torch.randn(5, 6, requires_grad=True)
    q, _ = fsq(z)
    q.sum().backward()
    assert z.grad is not None and torch.all(z.grad > 0)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="levels"):
        FSQ((8, 1))
    fsq = FSQ((8, 5))
    with pytest.raises(ValueError, match="2 channels"):
        fsq(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        fsq.indices_to_codes(torch.tensor([40]))
    with pytest.raises(TypeError, match="integer"):
        fsq.indices_to_codes(torch.tensor([1.0]))


def test_quantizing_code_values_is_identity():
    fsq = FSQ((8, 8, 8, 5, 5, 5))
    idx = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(idx)
    # inverse of the bound: a latent whose bounded value is exactly the code's grid value
    levels = torch.tensor(fsq.levels, dtype=torch.float64)
    half_l = (levels - 1) * (1 + fsq.eps) / 2
    offset = (levels % 2 == 0).double() * 0.5
    target = codes.double() * (levels // 2) + 0  # grid value in -half..half
    z = torch.atanh((target + offset) / half_l) - torch.atanh(offset / half_l)
    q, got = fsq(z.float())
    assert torch.equal(got, idx)
    assert torch.equal(q, codes)
