"""``python -m nbp_ext.evaluate``: the Fréchet distance, the judge classifier, and the command on a run."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_generator_run
from nbp_ext.data.builder import DataConfig
from nbp_ext.evaluate import ClassifierTraining, ClipClassifier, ClipClassifierConfig, frechet_distance, train_classifier
from nbp_ext.evaluate.__main__ import main as evaluate_main
from nbp_ext.models import Generator
import procs

REPO = Path(__file__).resolve().parents[1]


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def test_frechet_distance_matches_scipy_and_the_one_dimensional_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 6, generator=g) @ torch.randn(6, 6, generator=g)
    b = torch.randn(200, 6, generator=g) @ torch.randn(6, 6, generator=g) + 0.5
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a.double().numpy(), b.double().numpy()), rel=1e-6)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0, 3.0])
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.square().sum()), rel=1e-8)
    # in one dimension d^2 = (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    x, y = torch.randn(500, 1, generator=g), 3 * torch.randn(400, 1, generator=g) + 2
    x, y = x.double(), y.double()
    want = (x.mean() - y.mean()).item() ** 2 + (x.double().std().item() - y.double().std().item()) ** 2
    assert frechet_distance(x, y) == pytest.approx(want, rel=1e-8)


def test_frechet_distance_bad_input():
    with pytest.raises(ValueError, match=r"a must be \(N, F\) features with N >= 2, got \(1, 4\)"):
        frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="a and b must have the same feature width, got 4 and 3"):
        frechet_distance(torch.randn(5, 4), torch.randn(5, 3))


def test_classifier_checks_its_input_and_round_trips(tmp_path):
    model = ClipClassifier(ClipClassifierConfig(num_classes=5, frames=5, size=16, width=8)).eval()
    x = torch.rand(3, 3, 5, 16, 16) * 2 - 1
    assert model(x).shape == (3, 5) and model.features(x).shape == (3, 32)
    with pytest.raises(ValueError, match=r"video must be \(B, 3, 5, 16, 16\) in \[-1, 1\], the clip shape the "
                                         r"classifier was trained on; got \(3, 3, 9, 16, 16\)"):
        model(torch.zeros(3, 3, 9, 16, 16))
    model.save_pretrained(tmp_path / "c")
    again = ClipClassifier.from_pretrained(tmp_path / "c").eval()
    torch.testing.assert_close(again(x), model(x))
    feats, pred = model.predict(x, batch_size=2)
    torch.testing.assert_close(feats, model.features(x))
    assert torch.equal(pred, model(x).argmax(1))
    with pytest.raises(ValueError, match="size must be a multiple of 8"):
        ClipClassifierConfig(size=20)


def test_classifier_learns_the_synthetic_classes():
    # Measured with seed 0 on 2 threads: 0.44 held-out accuracy (chance 1/12) after 400 steps of 16
    # clips from 800 clips of 9x32x32, about 10 s.
    data = DataConfig(frames=9, size=32, background="plain", palette=True)
    training = ClassifierTraining(steps=400, batch_size=16, lr=3e-3, warmup=30, clips=800, val_clips=192)
    model, record = train_classifier(data, training, progress=False, log=lambda line: None)
    assert record["held_out_accuracy"] > 0.25, record
    assert record["train_clips"] == 800 and record["val_clips"] == 192 and record["class_names"][0] == "square-bounce"


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory) -> Path:
    """A generator run (2 training steps) on tokens of an untrained tiny tokenizer, 9x32x32 clips."""
    root = tmp_path_factory.mktemp("eval")
    make_generator_run(root, train_clips=32, val_clips=8, name="generator")
    return root


def test_command_scores_every_set_and_reuses_its_classifier(gen_run, tmp_path, capsys):
    args = ["--run", str(gen_run / "generator"), "--num", "2", "--classifier-steps", "3", "--classifier-clips", "16",
            "--runs-root", str(tmp_path), "--no-progress", "--seed", "1"]
    result = evaluate_main(args)
    printed = capsys.readouterr().out
    folders = list(tmp_path.glob("classifier-*"))
    assert len(folders) == 1 and f"classifier: saved to {folders[0]}" in printed
    rows = result["rows"]
    assert list(rows) == ["real", "real_floor", "reconstructed", "generated"]
    assert all(r["videos"] == 24 for r in rows.values()), rows
    for key in ("real_floor", "reconstructed", "generated"):
        assert rows[key]["frechet"] >= 0 and 0 <= rows[key]["accuracy"] <= 1
        assert 0 <= rows[key]["shape"] <= 1 and 0 <= rows[key]["motion"] <= 1
    assert "frechet" not in rows["real"] and len(rows["generated"]["per_class"]) == 12
    assert json.loads((gen_run / "generator" / "eval_samples.json").read_text())["rows"] == rows
    for title in ("real held-out clips (reference)", "other real held-out clips", "tokenizer reconstructions",
                  "generated videos"):
        assert title in printed
    # the second call loads the classifier it trained, and the same seed gives the same numbers
    again = evaluate_main(args + ["--out", str(tmp_path / "again.json")])
    assert f"classifier: {folders[0]} (held-out accuracy" in capsys.readouterr().out
    assert again["rows"] == rows


def test_command_bad_input(gen_run, tmp_path):
    def fails(*extra: str) -> str:
        r = procs.run([sys.executable, "-m", "nbp_ext.evaluate", "--run", str(gen_run / "generator"),
                            "--runs-root", str(tmp_path), "--no-progress", *extra], cwd=REPO, capture_output=True,
                           text=True)
        assert r.returncode != 0, r.stdout
        return r.stderr

    assert "--num must be >= 1, got 0" in fails("--num", "0")
    other = ClipClassifier(ClipClassifierConfig(frames=9, size=48))
    other.save_pretrained(tmp_path / "c48")
    assert "was trained on 9x48x48 clips, the run's data set has 9x32x32" in fails("--classifier", str(tmp_path / "c48"))
    assert "has no train/meta.json to say which data set it came from: give --tokens" in fails("--tokens", str(tmp_path))
    r = procs.run([sys.executable, "-m", "nbp_ext.evaluate", "--run", str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--run must be a generator run folder" in r.stderr


def test_frame_and_unconditional_models(gen_run, tmp_path):
    common = dict(check=True, cwd=REPO, capture_output=True)
    for condition in ("frames", "none"):
        run = tmp_path / condition
        procs.run([sys.executable, "-m", "nbp_ext.train", "generator", "--tokens", str(gen_run / "tokens"), "--run-dir",
                        str(run), "--model", "tiny", "--condition", condition, "--context-frames", "1", "--steps",
                        "1", "--batch-size", "4", "--eval-every", "100", "--sample-every", "100", "--no-progress"],
                       **common)
        assert Generator.from_pretrained(run / "generator").config.condition == condition
        rows = evaluate_main(["--run", str(run), "--num", "1", "--classifier-steps", "2", "--classifier-clips", "8",
                              "--runs-root", str(tmp_path), "--no-progress"])["rows"]
        generated = rows["generated"]
        assert generated["videos"] == 12 and generated["frechet"] >= 0
        if condition == "frames":  # one prediction per reference clip, judged against that clip's class
            assert 0 <= generated["accuracy"] <= 1
        else:
            assert "accuracy" not in generated and 1 <= generated["classes_drawn"] <= 12
