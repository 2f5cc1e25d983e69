import json

import pytest
import torch

from nbp_ext.models import TOKENIZER_SIZES, VideoTokenizer, VideoTokenizerConfig


def _clip(b=2, t=17, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, s, s, generator=g) * 2 - 1


def test_default_config_shapes_at_paper_resolution():
    # Shapes only, on the meta device: 17x128x128 -> 5x16x16 without the compute.
    with torch.device("meta"):
        model = VideoTokenizer()
        video = torch.empty(2, 3, 17, 128, 128)
        codes = model.encode(video)
        assert codes.shape == (2, 5, 16, 16) and codes.dtype == torch.int64
        out = model.decode(codes)
        assert out.shape == (2, 3, 17, 128, 128) and out.dtype == torch.float32
    assert model.codebook_size == 64000


@pytest.mark.parametrize("size", ["tiny", "default"])
def test_encode_decode_shapes_and_dtypes(size):
    model = VideoTokenizer.from_name("tiny") if size == "tiny" else VideoTokenizer(VideoTokenizerConfig())
    model.eval()
    codes = model.encode(_clip(2, 17, 32))
    assert codes.shape == (2, 5, 4, 4) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < 64000
    video = model.decode(codes)
    assert video.shape == (2, 3, 17, 32, 32) and video.dtype == torch.float32
    assert model.encode(_clip(1, 1, 16)).shape == (1, 1, 2, 2)  # a single frame is one latent frame


def test_tiny_keeps_the_compression():
    model = VideoTokenizer.from_name("tiny").eval()
    assert model.encode(_clip(1, 17, 64)).shape == (1, 5, 8, 8)
    assert model.config.latent_shape(17, 128, 128) == (5, 16, 16)


def test_every_named_size_builds_with_its_compression():
    for name in TOKENIZER_SIZES:
        with torch.device("meta"):
            model = VideoTokenizer.from_name(name)
            f = 8 if model.config.arch == "cnn" else model.config.patch_size
            assert model.encode(torch.empty(1, 3, 9, 64, 64)).shape == (1, 3, 64 // f, 64 // f)
            assert model.config.latent_shape(9, 64, 64) == (3, 64 // f, 64 // f)
    with torch.device("meta"):
        n = sum(p.numel() for p in VideoTokenizer.from_name("paper").parameters())
    assert 300e6 < n < 450e6


def test_encoding_is_causal_in_time():
    torch.manual_seed(0)
    model = VideoTokenizer.from_name("tiny").eval()
    video = _clip(1, 17, 32)
    codes = model.encode(video)
    for t in range(4):  # latent frame t covers input frames up to 4t
        changed = video.clone()
        changed[:, :, 4 * t + 1:] = _clip(1, 16 - 4 * t, 32, seed=t + 1)
        new = model.encode(changed)
        assert torch.equal(new[:, :t + 1], codes[:, :t + 1]), f"codes at or before latent frame {t} changed"
        assert not torch.equal(new[:, t + 1:], codes[:, t + 1:])
    # the continuous latents are causal too, not just their rounding
    z = model.encoder(video)
    changed = video.clone()
    changed[:, :, 5:] = 0
    assert torch.allclose(model.encoder(changed)[:, :, :2], z[:, :, :2], atol=0, rtol=0)


def test_decoding_is_causal_in_time():
    model = VideoTokenizer.from_name("tiny").eval()
    codes = torch.randint(0, 64000, (1, 5, 2, 2))
    out = model.decode(codes)
    changed = codes.clone()
    changed[:, 3:] = torch.randint(0, 64000, (1, 2, 2, 2))
    assert torch.equal(model.decode(changed)[:, :, :9], out[:, :, :9])  # frames 0..8 come from latents 0..2


def test_save_load_round_trip_gives_identical_codes(tmp_path):
    torch.manual_seed(0)
    model = VideoTokenizer.from_name("tiny", fsq_levels=(8, 5, 5, 5)).eval()
    video = _clip(2, 9, 32)
    model.save_pretrained(tmp_path / "tok")
    meta = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert meta["config"]["fsq_levels"] == [8, 5, 5, 5]
    loaded = VideoTokenizer.from_pretrained(tmp_path / "tok").eval()
    assert loaded.config == model.config
    assert torch.equal(loaded.encode(video), model.encode(video))
    assert torch.equal(loaded.decode(model.encode(video)), model.decode(model.encode(video)))


def test_from_pretrained_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        VideoTokenizer.from_pretrained(tmp_path)


def test_bad_inputs_are_rejected_with_clear_errors():
    model = VideoTokenizer.from_name("tiny")
    with pytest.raises(ValueError, match="T = 1 \\+ 4k"):
        model.encode(_clip(1, 16, 32))
    with pytest.raises(ValueError, match="multiples of 8"):
        model.encode(_clip(1, 17, 30))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model.encode(torch.zeros(3, 17, 32, 32))
    with pytest.raises(ValueError, match="size must be one of"):
        VideoTokenizer.from_name("huge")
    with pytest.raises(ValueError, match="unknown"):
        VideoTokenizer.from_name("tiny", chanels=3)
    with pytest.raises(ValueError, match="temporal_down"):
        VideoTokenizerConfig(temporal_down=(True, True, True))
