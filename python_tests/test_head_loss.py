"""linear_cross_entropy: the output head and cross-entropy by row chunks, against the plain two-step form."""

import pytest
import torch
import torch.nn.functional as F

from nbp_ext.models import head_loss
from nbp_ext.models.head_loss import linear_cross_entropy


def reference(h, weight, target):
    return F.cross_entropy(h @ weight.T, target, reduction="none")  # in the inputs' dtype


@pytest.mark.parametrize("n,d,vocab,chunk", [(1, 8, 5, 1 << 20), (97, 33, 1000, 4096), (300, 16, 64, 64 * 7)])
def test_matches_the_plain_head_and_loss_with_gradients(monkeypatch, n, d, vocab, chunk):
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", chunk)  # several chunks, the last one partial
    monkeypatch.setattr(head_loss, "MIN_CHUNK_ROWS", 1)
    torch.manual_seed(0)
    h = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    w = torch.randn(vocab, d, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, vocab, (n,))
    g = torch.rand(n, dtype=torch.float64)  # a weighted sum, so each row's gradient scale is checked
    ours = linear_cross_entropy(h.float(), w.float(), t)
    ref = reference(h, w, t)
    assert ours.dtype == torch.float32 and ours.shape == (n,)
    torch.testing.assert_close(ours.double(), ref, atol=1e-4, rtol=1e-5)
    hf, wf = h.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    (linear_cross_entropy(hf, wf, t) * g.float()).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(hf.grad.double(), h.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(wf.grad.double(), w.grad, atol=1e-4, rtol=1e-4)


def test_chunks_keep_enough_rows_for_large_vocabularies():
    """A chunk never drops under MIN_CHUNK_ROWS (the weight gradient is streamed once per chunk); small
    vocabularies get the memory budget's rows; a GPU gets the larger budget."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert head_loss.chunk_rows(64000, cpu) == head_loss.MIN_CHUNK_ROWS
    assert head_loss.chunk_rows(1000, cpu) == head_loss.CHUNK_ELEMENTS // 1000 > head_loss.MIN_CHUNK_ROWS
    assert head_loss.chunk_rows(64000, cuda) == head_loss.CUDA_CHUNK_ELEMENTS // 64000 > head_loss.MIN_CHUNK_ROWS
    assert head_loss.chunk_rows(10**9, cpu) == head_loss.MIN_CHUNK_ROWS


def test_under_bf16_autocast_it_follows_the_plain_head():
    """The matmuls in bf16 as autocast would run an nn.Linear head; loss and gradients within bf16 error."""
    torch.manual_seed(1)
    h = torch.randn(200, 32, requires_grad=True)
    w = (torch.randn(500, 32) * 0.2).requires_grad_()
    t = torch.randint(0, 500, (200,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = linear_cross_entropy(h, w, t)
    ours.sum().backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = reference(h, w, t)  # fp32
    ref.sum().backward()
    assert ours.dtype == torch.float32 and gh.dtype == torch.float32 and gw.dtype == torch.float32
    torch.testing.assert_close(ours, ref, atol=0.05, rtol=0.02)
    torch.testing.assert_close(gh, h.grad, atol=0.02, rtol=0.05)
    torch.testing.assert_close(gw, w.grad, atol=0.02, rtol=0.05)


def test_model_loss_equals_the_cross_entropy_of_its_logits():
    from nbp_ext.models import Generator

    torch.manual_seed(0)
    model = Generator.from_name("tiny", vocab_size=300, grid=(2, 4, 4), block=(1, 1, 4), num_classes=3)
    codes = torch.randint(0, 300, (3, 2, 4, 4))
    labels = torch.tensor([0, 1, 2])
    model.eval()
    out = model.loss(codes, labels)
    _, video = model.split_codes(codes)
    expected = F.cross_entropy(model(video, labels).float().flatten(0, 1), video.flatten())
    torch.testing.assert_close(out["loss"], expected, atol=1e-5, rtol=1e-5)


def test_bad_shapes_name_the_argument():
    h, w = torch.randn(4, 8), torch.randn(10, 8)
    with pytest.raises(ValueError, match=r"h must be \(N, d\) and weight \(V, d\)"):
        linear_cross_entropy(h, torch.randn(10, 7), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must have shape \(4,\)"):
        linear_cross_entropy(h, w, torch.zeros(5, dtype=torch.long))
