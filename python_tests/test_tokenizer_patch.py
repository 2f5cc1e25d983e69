"""The patch tokenizer: exact patch layout, causality, the PCA start, save/load, errors."""

import json

import pytest
import torch

from nbp_ext.data.synthetic import SyntheticVideoDataset
from nbp_ext.models import VideoTokenizer, VideoTokenizerConfig
from nbp_ext.models.tokenizer_patch import patchify, unpatchify


def _clip(b=2, t=9, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, s, s, generator=g) * 2 - 1


def _psnr(a, b):
    return float(10 * torch.log10(4 / ((a.clamp(-1, 1) - b) ** 2).mean()))


@pytest.mark.parametrize("p", [1, 2, 4, 8])
def test_patchify_round_trip_and_layout(p):
    video = _clip(2, 9, 16)
    x = patchify(video, p)
    assert x.shape == (2, 3 * 4 * p * p, 3, 16 // p, 16 // p)
    assert torch.equal(unpatchify(x, p, 3), video)
    # entry (channel c, time j, row y, column x) of the patch at latent (t, h, w) is pixel
    # (c, 4t + j - 3, p*h + y, p*w + x), with frame 0 standing in for the frames before it
    c, j, y, xx, t, h, w = 2, 1, p - 1, 0, 2, 16 // p - 1, 1
    flat = ((c * 4 + j) * p + y) * p + xx
    assert x[1, flat, t, h, w] == video[1, c, 4 * t + j - 3, p * h + y, p * w + xx]
    assert torch.equal(x[:, :, 0].reshape(2, 3, 4, p, p, 16 // p, 16 // p)[:, :, 0],
                       x[:, :, 0].reshape(2, 3, 4, p, p, 16 // p, 16 // p)[:, :, 3])  # frame 0 repeated


def test_shapes_codes_and_compression():
    model = VideoTokenizer.from_name("patch", fsq_levels=(8, 5, 5, 5)).eval()
    assert model.config.spatial_factor == 4 and model.config.latent_shape(17, 64, 64) == (5, 16, 16)
    codes = model.encode(_clip(2, 9, 32))
    assert codes.shape == (2, 3, 8, 8) and codes.dtype == torch.int64
    assert 0 <= int(codes.min()) and int(codes.max()) < 1000
    assert model.decode(codes).shape == (2, 3, 9, 32, 32)
    assert model.encode(_clip(1, 1, 8)).shape == (1, 1, 2, 2)  # one frame is one latent frame


def test_codes_and_frames_are_causal_in_time():
    torch.manual_seed(0)
    model = VideoTokenizer.from_name("patch", patch_width=16)
    for p in model.parameters():  # a codec whose corrections are not zero, so they are tested too
        torch.nn.init.normal_(p, std=0.05)
    model.eval()
    video = _clip(1, 13, 16)
    codes = model.encode(video)
    for t in range(3):
        changed = video.clone()
        changed[:, :, 4 * t + 1:] = _clip(1, 12 - 4 * t, 16, seed=t + 1)
        new = model.encode(changed)
        assert torch.equal(new[:, :t + 1], codes[:, :t + 1])
        assert not torch.equal(new[:, t + 1:], codes[:, t + 1:])
    out = model.decode(codes)
    changed = codes.clone()
    changed[:, 2:] = (changed[:, 2:] + 1) % model.codebook_size
    assert torch.equal(model.decode(changed)[:, :, :5], out[:, :, :5])  # frames 0..4 come from latents 0..1


def test_pca_start_reconstructs_synthetic_clips():
    """Before any training step, the PCA start already reconstructs held-out clips far better than
    the random start (whose corrections are zero and whose linear maps are random)."""
    torch.manual_seed(0)
    train = SyntheticVideoDataset(num_clips=16, frames=9, size=32)
    val = SyntheticVideoDataset(num_clips=4, frames=9, size=32, split="val")
    held_out = torch.stack([val[i]["video"] for i in range(4)])
    model = VideoTokenizer.from_name("patch", fsq_levels=(8, 5, 5, 5)).eval()
    with torch.no_grad():
        before = _psnr(model(held_out)[0], held_out)
        explained = model.init_from_data(torch.stack([train[i + j]["video"] for j in range(4)]) for i in range(0, 16, 4))
        after = _psnr(model(held_out)[0], held_out)
    assert 0.8 < explained <= 1.0
    assert before < 12 and after > 19, (before, after)
    # the continuous latents spread over the FSQ range without piling up at its ends
    with torch.no_grad():
        z = model.encoder(held_out)
    assert 0.2 < float(z.std()) < 1.0
    assert float((z.abs() > 2).float().mean()) < 0.05


def test_init_from_data_is_a_no_op_for_the_cnn_and_checks_clips():
    assert VideoTokenizer.from_name("tiny").init_from_data([_clip(1, 9, 16)]) is None
    model = VideoTokenizer.from_name("patch")
    with pytest.raises(ValueError, match="multiples of 4"):
        model.init_from_data([_clip(1, 9, 18)])
    with pytest.raises(ValueError, match="at least two patches"):
        model.init_from_data([])


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VideoTokenizer.from_name("patch", fsq_levels=(8, 5, 5, 5), patch_width=32).eval()
    model.init_from_data([_clip(2, 9, 16)])
    model.save_pretrained(tmp_path / "tok")
    meta = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert meta["config"]["arch"] == "patch" and meta["config"]["patch_size"] == 4
    loaded = VideoTokenizer.from_pretrained(tmp_path / "tok").eval()
    video = _clip(1, 9, 16, seed=3)
    assert torch.equal(loaded.encode(video), model.encode(video))
    assert torch.equal(loaded.decode(model.encode(video)), model.decode(model.encode(video)))


def test_a_cnn_config_written_before_the_patch_codec_still_loads(tmp_path):
    model = VideoTokenizer.from_name("tiny", fsq_levels=(8, 5, 5, 5))
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    for key in ("arch", "patch_size", "patch_width", "patch_depth"):
        del meta["config"][key]
    (tmp_path / "config.json").write_text(json.dumps(meta))
    assert VideoTokenizer.from_pretrained(tmp_path).config == model.config


def test_a_patch_config_saved_before_the_padding_option_keeps_zero_padding(tmp_path):
    model = VideoTokenizer.from_name("patch", fsq_levels=(8, 5, 5, 5), patch_width=16)
    assert model.config.patch_padding == "replicate"
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    del meta["config"]["patch_padding"]
    (tmp_path / "config.json").write_text(json.dumps(meta))
    old = VideoTokenizer.from_pretrained(tmp_path)
    assert old.config.patch_padding == "zeros" and old.encoder.correction[2].padding_mode == "zeros"


@pytest.mark.parametrize("padding", ["replicate", "zeros"])
def test_flat_areas_code_alike_up_to_the_frame_edge_with_replicate_padding(padding):
    """With trained (non-zero) corrections, zero padding makes the border latents of a flat clip
    differ from the inside ones; replicate padding keeps every latent, code and decoded pixel equal."""
    torch.manual_seed(0)
    model = VideoTokenizer.from_name("patch", fsq_levels=(8, 5, 5, 5), patch_width=16, patch_padding=padding).eval()
    for p in model.parameters():
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.1)
    flat = torch.tensor([-0.5, -0.2, 0.0]).view(1, 3, 1, 1, 1).expand(1, 3, 9, 16, 16).contiguous()
    with torch.no_grad():
        latent = model.encoder(flat)  # (1, C, 3, 4, 4)
        spread = (latent - latent[..., 1:2, 1:2]).abs().amax()
        decoded = model.decode(model.encode(flat))
    if padding == "replicate":
        assert spread < 1e-5 and model.encode(flat).unique().numel() == 1
        # every patch decodes alike (random maps draw a pattern inside a patch, the same in each)
        assert (decoded[..., 4:, :] - decoded[..., :-4, :]).abs().amax() < 1e-5
        assert (decoded[..., :, 4:] - decoded[..., :, :-4]).abs().amax() < 1e-5
    else:
        assert spread > 1e-3


def test_bad_configs_and_inputs_are_rejected():
    with pytest.raises(ValueError, match="patch_padding must be one of"):
        VideoTokenizerConfig(arch="patch", patch_padding="reflect")
    with pytest.raises(ValueError, match="arch must be one of"):
        VideoTokenizerConfig(arch="vit")
    with pytest.raises(ValueError, match="patch_size"):
        VideoTokenizerConfig(arch="patch", patch_size=0)
    with pytest.raises(ValueError, match="multiples of 4"):
        VideoTokenizer.from_name("patch").encode(_clip(1, 9, 18))


def test_frame_prediction_context_uses_the_tokenizers_spatial_factor(tmp_path, write_test_video):
    """nbp_ext.sample --context reads the clip at the size the tokenizer maps to the generator's grid
    (space /4 for the patch tokenizer) and encodes its first frames into the context tokens."""
    from nbp_ext.data.video_reader import ClipSpec, read_clip
    from nbp_ext.models import Generator
    from nbp_ext.sample import _context_codes

    torch.manual_seed(0)
    tokenizer = VideoTokenizer.from_name("patch", fsq_levels=(8, 5, 5, 5), patch_width=8).eval()
    model = Generator.from_name("tiny", vocab_size=tokenizer.codebook_size, grid=(3, 4, 4), block=(1, 1, 4),
                                     condition="frames", context_frames=1, n_layer=1, d_model=32).eval()
    clip = write_test_video(tmp_path / "c.mp4", 6, 40, 40, 8, "libx264")
    context = _context_codes(model, tokenizer, str(clip), "cpu")
    assert context.shape == (1, 16)
    frames, _ = read_clip(str(clip), ClipSpec(frames=1, size=16, fps=None, position="start"))
    first = torch.from_numpy(frames).permute(3, 0, 1, 2).float()[None] / 127.5 - 1  # (1, 3, 1, 16, 16)
    assert torch.equal(context, tokenizer.encode(first).reshape(1, 16))
