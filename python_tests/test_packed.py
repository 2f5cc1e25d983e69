"""Generation on the CPU with linear weights packed for oneDNN."""

import copy

import pytest
import torch
from torch import nn

from nbp_ext.generate import SamplingConfig, decode_block, generate_tokens, make_caches, prefill
from nbp_ext.generate.packed import PackedLinear, packed_linears, packing_available
from nbp_ext.models import Generator

pytestmark = pytest.mark.skipif(not packing_available(nn.Linear(2, 2)), reason="this PyTorch has no oneDNN packed linear")


def model(**kw):
    torch.manual_seed(0)
    args = dict(vocab_size=301, grid=(3, 8, 8), block=(1, 1, 8), num_classes=5, n_layer=2, d_model=64)
    return Generator.from_name("tiny", **{**args, **kw}).eval()


def linear_names(m: nn.Module) -> list[str]:
    return [n for n, mod in m.named_modules() if isinstance(mod, nn.Linear)]


@pytest.mark.parametrize("rows", [1, 3, 16, 130])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_equals_linear(rows, bias):
    torch.manual_seed(rows)
    lin = nn.Linear(96, 1000, bias=bias)
    x = torch.randn(2, rows, 96)
    with torch.no_grad():
        ref = lin(x)
        out = PackedLinear(lin, 16)(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_block_swaps_in_packed_layers_and_restores_the_model():
    m = model()
    names = linear_names(m)
    keys = list(m.state_dict())
    x = torch.randint(0, 301, (2, 8))
    with torch.no_grad():
        caches = make_caches(m, 2)
        prefill(m, torch.tensor([1, 2]), 2, caches)
        ref = decode_block(m, x, 9, caches)
        with packed_linears(m, 16):
            assert all(isinstance(m.get_submodule(n), PackedLinear) for n in names)
            caches = make_caches(m, 2)
            prefill(m, torch.tensor([1, 2]), 2, caches)
            out = decode_block(m, x, 9, caches)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert linear_names(m) == names and list(m.state_dict()) == keys  # back to plain nn.Linear, nothing added


def test_packed_weights_follow_in_place_updates():
    m = model()
    x = torch.randint(0, 301, (1, 8))
    with torch.no_grad():
        with packed_linears(m):
            h = m.hidden(m.tok_emb(x))
            before = m.head(h)
        m.head.weight.mul_(2.0)  # what an optimizer step does: an in-place change
        with packed_linears(m):
            after = m.head(h)
    torch.testing.assert_close(after, 2.0 * before, rtol=1e-5, atol=1e-5)


def test_model_still_copies_and_saves_after_generation(tmp_path):
    m = model()
    generate_tokens(m, torch.tensor([1]), seed=0)
    copy.deepcopy(m)
    torch.save(m, tmp_path / "whole_model.pt")  # the packed (opaque) weights live beside the model


def test_no_packing_while_gradients_are_recorded():
    m = model()
    with packed_linears(m):
        assert isinstance(m.head, nn.Linear)


def test_generation_matches_the_unpacked_model(monkeypatch):
    m = model()
    s = SamplingConfig(top_k=50, top_p=0.95, guidance_scale=2.0)
    packed = generate_tokens(m, torch.tensor([0, 3]), seed=4, sampling=s)
    monkeypatch.setenv("NBP_PACKED_LINEAR", "0")
    plain = generate_tokens(m, torch.tensor([0, 3]), seed=4, sampling=s)
    # Same weights, a different summation order: the draws agree unless one lands within rounding
    # of a boundary between two tokens.
    assert (packed == plain).float().mean() >= 0.99


def test_bf16_models_are_packed_where_the_cpu_has_bf16_instructions():
    from nbp_ext.hardware import native_bf16

    lin = nn.Linear(96, 1000).to(torch.bfloat16)
    assert packing_available(lin) == native_bf16(torch.device("cpu"))
    if not packing_available(lin):
        pytest.skip("this CPU has no bf16 instructions")
    torch.manual_seed(0)
    x = torch.randn(3, 16, 96).to(torch.bfloat16)
    with torch.no_grad():
        ref = (x.float() @ lin.weight.float().t() + lin.bias.float())
        out = PackedLinear(lin, 16)(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)  # bf16 output rounding


def test_bf16_generation_follows_fp32():
    """A bf16 copy of the model (weights and activations; the CPU's KV cache stays fp32, the attention
    kernel's own precision) gives logits within bf16 rounding of fp32's, and generates."""
    from nbp_ext.hardware import native_bf16

    m = model()
    if not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 instructions")
    half = copy.deepcopy(m).to(torch.bfloat16)
    x = torch.randint(0, 301, (2, 8))
    with torch.no_grad():
        outs = []
        for mm in (m, half):
            with packed_linears(mm, 16):
                caches = make_caches(mm, 2)
                prefill(mm, torch.tensor([1, 2]), 2, caches)
                outs.append(decode_block(mm, x, 9, caches).float())
    assert caches[0].k.dtype == torch.float32 and half.head.weight.dtype == torch.bfloat16
    rel = (outs[1] - outs[0]).norm() / outs[0].norm()
    assert rel < 0.03, rel  # bf16 keeps 8 bits of mantissa: ~0.4% per rounding, a few dozen roundings deep
    tokens = generate_tokens(half, torch.tensor([0, 3]), seed=4, sampling=SamplingConfig(top_k=50, guidance_scale=2.0))
    assert tokens.shape == (2, m.config.video_len) and 0 <= int(tokens.min()) and int(tokens.max()) < 301
