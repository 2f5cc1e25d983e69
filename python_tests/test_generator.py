"""The NBP transformer, its block layout, and KV-cache generation."""

import math

import pytest
import torch
import torch.nn.functional as F

from nbp_ext.generate import SamplingConfig, decode_block, generate, generate_tokens, make_caches, prefill
from nbp_ext.models import GENERATOR_SIZES, BlockLayout, Generator
from nbp_ext.models import generator as generator_module

V = 97


def tiny(**kw):
    args = dict(vocab_size=V, grid=(3, 8, 8), block=(1, 1, 8), num_classes=5, context_frames=1, n_layer=2, d_model=64)
    args.update(kw)
    torch.manual_seed(0)
    return Generator.from_name("tiny", **args).eval()


@pytest.mark.parametrize("grid,block", [((5, 16, 16), (1, 1, 16)), ((5, 16, 16), (1, 16, 16)), ((5, 16, 16), (1, 4, 4)),
                                        ((4, 16, 16), (2, 1, 8)), ((5, 16, 16), (1, 1, 1))])
def test_layout_round_trip(grid, block):
    layout = BlockLayout(grid, block)
    codes = torch.randint(0, 1000, (2, *grid))
    seq = layout.to_sequence(codes)
    assert seq.shape == (2, layout.seq_len)
    assert torch.equal(layout.to_grid(seq), codes)
    # block-major: the first block is the first bt x bh x bw corner, in raster order
    bt, bh, bw = block
    assert torch.equal(seq[:, : layout.block_len], codes[:, :bt, :bh, :bw].reshape(2, -1))
    coords = layout.coords()
    assert coords.shape == (layout.seq_len, 3) and coords.unique(dim=0).shape[0] == layout.seq_len


def test_layout_rejects_a_block_that_does_not_divide():
    with pytest.raises(ValueError, match="must divide the latent grid"):
        BlockLayout((5, 16, 16), (2, 1, 16))
    with pytest.raises(ValueError, match="must divide"):
        tiny(block=(1, 3, 8))


def test_named_sizes_parameter_counts():
    # The paper's names count the transformer body (no embeddings, no output head): 679M, 1.21B and
    # 3.63B for its (24, 1536), (24, 2048) and (32, 3072) shapes; within 25% of the name.
    for name, target in {"700M": 700e6, "1.2B": 1.2e9, "3B": 3e9}.items():
        with torch.device("meta"):
            m = Generator.from_name(name, vocab_size=64000, num_classes=101)
        assert abs(m.num_params(non_embedding=True) / target - 1) < 0.25, (name, m.num_params(non_embedding=True))
        assert m.num_params() > m.num_params(non_embedding=True) + 2 * 64000 * m.config.d_model - 1
    with torch.device("meta"):
        small = Generator.from_name("small", vocab_size=64000)
    assert small.num_params() >= 50e6  # the CPU benchmark's size
    assert set(GENERATOR_SIZES) >= {"tiny", "small", "700M", "1.2B", "3B"}
    with torch.device("meta"):
        m = Generator.from_name("700M")
    assert (m.config.n_layer, m.config.d_model, m.config.n_head, m.config.style) == (24, 1536, 16, "gpt2")


def test_ntp_block_is_an_ordinary_causal_lm(monkeypatch):
    model = tiny(block=(1, 1, 1), condition="none")
    video = torch.randint(0, V, (2, model.config.video_len))
    logits = model(video)

    def causal_sdpa(q, k, v, block_size, prefix_len=0, q_offset=0, scale=None):
        assert block_size == 1 and prefix_len == 0 and q_offset == 0
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    monkeypatch.setattr(generator_module, "block_causal_attention", causal_sdpa)
    torch.testing.assert_close(logits, model(video), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("condition", ["class", "frames", "none"])
@pytest.mark.parametrize("block", [(1, 1, 8), (1, 1, 1), (1, 8, 8), (1, 2, 4)])
@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_kv_cache_logits_equal_teacher_forcing(condition, block, style):
    model = tiny(condition=condition, block=block, style=style)
    cfg = model.config
    B = 2
    cond = {"class": torch.tensor([1, 4]), "frames": torch.randint(0, V, (B, cfg.prefix_len)), "none": None}[condition]
    video = torch.randint(0, V, (B, cfg.video_len))
    full = model(video, cond)
    caches = make_caches(model, B)
    L, P = cfg.block_len, cfg.prefix_len
    steps = [prefill(model, cond, B, caches)]
    for s in range(cfg.num_steps - 1):
        steps.append(decode_block(model, video[:, s * L : (s + 1) * L], P + L + s * L, caches))
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-4


def test_exact_gelu_is_erf_and_kept_on_save(tmp_path):
    """gelu="exact" (the official NBP models' MLP) uses erf, not the tanh form; the cache still equals
    teacher forcing, and the choice survives save and load."""
    exact, approx = tiny(style="gpt2", gelu="exact"), tiny(style="gpt2")
    mlp, x = exact.blocks[0].mlp, torch.randn(2, 5, 64)
    h = mlp.up(x)
    torch.testing.assert_close(mlp(x), mlp.down(0.5 * h * (1 + torch.erf(h / math.sqrt(2)))))
    video = torch.randint(0, V, (2, exact.config.video_len))
    cond = torch.tensor([1, 4])
    assert (exact(video, cond) - approx(video, cond)).abs().max() > 1e-6  # same weights, other activation
    caches = make_caches(exact, 2)
    L, P = exact.config.block_len, exact.config.prefix_len
    steps = [prefill(exact, cond, 2, caches)]
    for s in range(exact.config.num_steps - 1):
        steps.append(decode_block(exact, video[:, s * L : (s + 1) * L], P + L + s * L, caches))
    assert (torch.cat(steps, dim=1) - exact(video, cond)).abs().max() <= 1e-4
    exact.save_pretrained(tmp_path / "g")
    assert Generator.from_pretrained(tmp_path / "g").config.gelu == "exact"
    with pytest.raises(ValueError, match="gelu must be one of"):
        tiny(style="gpt2", gelu="sigmoid")


def test_loss_is_on_video_tokens_only_and_per_position():
    model = tiny(condition="frames")
    codes = torch.randint(0, V, (2, 3, 8, 8))
    out = model.loss(codes)
    assert out["per_position"].shape == (8,)
    context, video = model.split_codes(codes)
    assert context.shape == (2, 64) and video.shape == (2, 128)
    logits = model(video, context)
    assert torch.isclose(out["loss"], F.cross_entropy(logits.flatten(0, 1), video.flatten()))
    # per generated latent frame: frames 1 and 2 (frame 0 is the context), each the mean of its tokens
    per_token = F.cross_entropy(logits.flatten(0, 1), video.flatten(), reduction="none").view(2, 128)
    frame = model.config.layout.coords()[64:, 0]
    assert out["per_frame"].shape == (2,)
    for i, t in enumerate((1, 2)):
        assert torch.isclose(out["per_frame"][i], per_token[:, frame == t].mean(), atol=1e-5)
    assert torch.isclose(out["per_frame"].mean(), out["loss"], atol=1e-5)  # frames have equal token counts


@pytest.mark.parametrize("block,start", [((1, 1, 8), "learned"), ((1, 4, 4), "hybrid"), ((1, 1, 1), "learned")])
def test_loss_per_frame_of_class_models(block, start):
    model = tiny(condition="class", block=block, start=start)
    codes = torch.randint(0, V, (3, 3, 8, 8))
    codes[:, 1:] = codes[:, :1]  # later frames repeat the first; the per-frame split must follow the grid
    out = model.loss(codes, torch.tensor([0, 1, 4]))
    logits = model(model.split_codes(codes)[1], torch.tensor([0, 1, 4]))
    per_token = F.cross_entropy(logits.flatten(0, 1), model.split_codes(codes)[1].flatten(), reduction="none").view(3, -1)
    frame = model.config.layout.coords()[:, 0]
    expected = torch.stack([per_token[:, frame == t].mean() for t in range(3)])
    assert out["per_frame"].shape == (3,)
    assert torch.allclose(out["per_frame"], expected, atol=1e-5)


def test_same_seed_same_video_and_batch_independence():
    model = tiny()
    s = SamplingConfig(top_k=50, top_p=0.95, guidance_scale=1.5)
    a = generate(model, torch.tensor([0, 3, 2]), seed=7, sampling=s)
    b = generate(model, torch.tensor([0, 3, 2]), seed=7, sampling=s)
    assert a.shape == (3, 3, 8, 8) and torch.equal(a, b)
    alone = generate(model, torch.tensor([3]), seed=8, sampling=s)  # row 1 of the batch used seed 7 + 1
    assert torch.equal(alone[0], a[1])
    assert not torch.equal(a, generate(model, torch.tensor([0, 3, 2]), seed=9, sampling=s))


def test_guidance_scale_one_equals_conditional_sampling():
    """1.0 is "no guidance": one stream, the conditional logits as they are."""
    model = tiny()
    cond = torch.tensor([1, 2])
    off = SamplingConfig(top_k=40, guidance_scale=1.0)
    assert not off.guided("class") and SamplingConfig(top_k=40).guided("class")
    plain = generate_tokens(model, cond, seed=3, sampling=off)
    guided = generate_tokens(model, cond, seed=3, sampling=SamplingConfig(top_k=40, guidance_scale=1.0))
    assert torch.equal(plain, guided)
    assert not torch.equal(plain, generate_tokens(model, cond, seed=3, sampling=SamplingConfig(top_k=40, guidance_scale=4.0)))


def test_guidance_scale_is_ignored_without_a_null_class():
    """Only a class-conditional model has the null class: the others sample their one stream."""
    frames = tiny(condition="frames")
    context = torch.randint(0, V, (2, 64))
    assert not SamplingConfig(guidance_scale=2.0).guided("frames")
    assert torch.equal(generate(frames, context, seed=1, sampling=SamplingConfig(guidance_scale=2.0)),
                       generate(frames, context, seed=1, sampling=SamplingConfig(guidance_scale=1.0)))


def test_frame_prediction_keeps_the_context():
    model = tiny(condition="frames")
    context = torch.randint(0, V, (2, 64))
    codes = generate(model, context, seed=0)
    assert torch.equal(model.config.layout.to_sequence(codes)[:, :64], context)


def test_bad_input_errors():
    model = tiny()
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 5\)"):
        generate(model, torch.tensor([5]))
    with pytest.raises(ValueError, match="class ids"):
        generate(model, None)
    frames = tiny(condition="frames")
    with pytest.raises(ValueError, match=r"context tokens of shape \(B, 64\)"):
        generate(frames, torch.zeros(1, 10, dtype=torch.long))
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        generate(frames, torch.zeros(1, 64, dtype=torch.long), sampling=SamplingConfig(guidance_scale=float("nan")))
    with pytest.raises(ValueError, match="num_videos"):
        generate(tiny(condition="none"))
    with pytest.raises(ValueError, match="context_frames"):
        tiny(condition="frames", context_frames=3)


def test_save_and_load_round_trip(tmp_path):
    model = tiny(style="gpt2")
    model.save_pretrained(tmp_path / "g")
    loaded = Generator.from_pretrained(tmp_path / "g").eval()
    video = torch.randint(0, V, (1, model.config.video_len))
    assert torch.equal(model(video, torch.tensor([2])), loaded(video, torch.tensor([2])))


def overfit_one_clip(**overrides):
    """A tiny class model trained 150 steps on one clip: (model in eval mode, codes, label, last loss)."""
    torch.manual_seed(0)
    model = Generator.from_name("tiny", vocab_size=64, grid=(2, 4, 4), block=(1, 1, 4), num_classes=2,
                                     n_layer=2, d_model=64, cond_dropout=0.0, **overrides)
    codes = torch.randint(0, 64, (1, 2, 4, 4))
    label = torch.tensor([1])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = model.loss(codes, label)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), codes, label, float(loss.detach())


def test_overfits_one_clip():
    model, codes, label, loss = overfit_one_clip()
    assert loss < 0.05
    greedy = generate(model, label, sampling=SamplingConfig(temperature=0.0))
    assert torch.equal(greedy, codes)


@pytest.mark.parametrize("condition", ["class", "frames", "none"])
def test_hybrid_start_cache_equals_teacher_forcing(condition):
    """Hybrid start: block 0 token by token (causal inside the start region), then whole blocks."""
    model = tiny(condition=condition, start="hybrid")
    cfg = model.config
    B, L, P = 2, cfg.block_len, cfg.prefix_len
    assert cfg.num_steps == cfg.video_len // L + L - 1
    cond = {"class": torch.tensor([1, 4]), "frames": torch.randint(0, V, (B, P)), "none": None}[condition]
    video = torch.randint(0, V, (B, cfg.video_len))
    full = model(video, cond)
    caches = make_caches(model, B)
    steps = [prefill(model, cond, B, caches)]  # predicts token 0 of block 0
    for j in range(L - 1):
        steps.append(decode_block(model, video[:, j : j + 1], P + 1 + j, caches))
    for k in range(cfg.video_len // L - 1):
        steps.append(decode_block(model, video[:, k * L : (k + 1) * L], P + L + k * L, caches))
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-4
    # inside the start region a token never sees the ones after it
    changed = video.clone()
    changed[:, 3] = (changed[:, 3] + 1) % V
    assert torch.equal(model(changed, cond)[:, :4], full[:, :4])
    codes = generate(model, cond, num_videos=B, seed=1, sampling=SamplingConfig(top_k=20))
    assert torch.equal(codes, generate(model, cond, num_videos=B, seed=1, sampling=SamplingConfig(top_k=20)))


def test_hybrid_start_overfits_and_regenerates_one_clip():
    model, codes, label, _ = overfit_one_clip(start="hybrid")
    assert torch.equal(generate(model, label, sampling=SamplingConfig(temperature=0.0)), codes)
