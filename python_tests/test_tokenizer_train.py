"""The tokenizer training command and token extraction, on tiny clips."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nbp_ext.data import SyntheticVideoDataset, TokenDataset
from nbp_ext.models import VideoTokenizer
from nbp_ext.train.__main__ import main as train_main
from nbp_ext.train.perceptual import vgg16_features
from nbp_ext.train.checkpoint import complete_checkpoints
from nbp_ext.train.tensorboard import read_records
from nbp_ext.tokenize import build_parser as tokenize_parser, main as tokenize_main

# the causal CNN on the default textured set (the stage's own default is the pipeline's patch tokenizer)
SMALL = ["--model", "tiny", "--fsq-levels", "8,8,8,5,5,5", "--loss", "l1", "--background", "textured", "--no-palette",
         "--object-scale", "1", "--frames", "9", "--size", "32", "--batch-size", "2", "--train-clips", "8", "--val-clips", "2",
         "--eval-clips", "2", "--no-progress", "--lr", "1e-3", "--warmup", "1"]


def latest_state(run: Path) -> dict:
    """The training state of a run's latest finished checkpoint."""
    return json.loads((complete_checkpoints(run)[-1] / "train_state.json").read_text())


def _train(run_dir: Path, *extra: str) -> Path:
    train_main(["tokenizer", "--run-dir", str(run_dir), *SMALL, *extra])
    return run_dir


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tok"
    return _train(run, "--steps", "4", "--eval-every", "2", "--sample-every", "2", "--ckpt-every", "2", "--log-every", "1")


def test_run_folder_has_model_samples_logs_and_scores(trained_run):
    run = trained_run
    assert [p.name for p in complete_checkpoints(run)] == ["step_00000002", "step_00000004"]
    assert (run / "args.json").is_file()
    model = VideoTokenizer.from_pretrained(run / "tokenizer")
    assert model.config.fsq_levels == (8, 8, 8, 5, 5, 5)
    samples = sorted((run / "samples").glob("*.mp4"))
    assert [p.name for p in samples] == ["step_0000002.mp4", "step_0000004.mp4"]
    with av.open(str(samples[0])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 9 and frames[0].shape == (128, 256, 3)  # original | reconstruction, 4x enlarged
    scores = json.loads((run / "eval.json").read_text())
    assert scores["step"] == 4 and 0 < scores["psnr"] < 60 and -1 <= scores["ssim"] <= 1
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if "loss/rec" in l] == [1, 2, 3, 4]


def test_tensorboard_event_file_is_well_formed(trained_run):
    (events,) = (trained_run / "tb").glob("events.out.tfevents.*")
    records = read_records(events)  # checks both CRCs of every record
    assert b"brain.Event:2" in records[0]
    tags = b"".join(records[1:])
    assert b"loss/rec" in tags and b"val/psnr" in tags and b"clips_per_s" in tags


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    common = ["--steps", "4", "--eval-every", "100", "--sample-every", "100", "--ckpt-every", "100"]
    straight = _train(tmp_path / "a", *common)
    split = _train(tmp_path / "b", *common, "--stop-at", "2")
    assert latest_state(split)["step"] == 2
    train_main(["tokenizer", "--resume", str(split), "--no-progress", *common])
    assert latest_state(split)["step"] == 4
    a, b = load_file(str(straight / "tokenizer/model.safetensors")), load_file(str(split / "tokenizer/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gan_and_perceptual_losses_run_from_local_weights(tmp_path):
    torch.manual_seed(0)
    vgg = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}
    torch.save(vgg, tmp_path / "vgg16.pth")
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate([64, 128, 256, 512, 512])}
    torch.save(lins, tmp_path / "lpips.pth")
    run = _train(tmp_path / "run", "--steps", "3", "--disc-start", "1", "--disc-channels", "8", "--eval-every", "3",
                 "--vgg-weights", str(tmp_path / "vgg16.pth"), "--lpips-weights", str(tmp_path / "lpips.pth"),
                 "--perceptual-frames", "2", "--log-every", "1")
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if "loss/rec" in l]
    assert all(l["loss/perceptual"] > 0 for l in lines)
    assert "loss/gan_d" not in lines[0] and all("loss/gan_d" in l and l["gan/adaptive_weight"] >= 0 for l in lines[1:])
    assert any(name.startswith("disc.") for name in load_file(str(complete_checkpoints(run)[-1] /
                                                                 "model-00001-of-00001.safetensors")))


def test_bad_options_stop_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train_main(["tokenizer", "--run-dir", str(tmp_path / "r"), "--frames", "16", "--no-progress"])
    assert "--frames must be 1 + 4k" in str(e.value)
    with pytest.raises(SystemExit) as e:
        train_main(["tokenizer", "--resume", str(tmp_path / "nothing"), "--no-progress"])
    assert "--resume" in str(e.value)
    with pytest.raises(SystemExit) as e:
        train_main(["tokenizer", "--vgg-weights", str(tmp_path / "missing.pth"), "--run-dir", str(tmp_path / "r2"),
                    *SMALL, "--steps", "1"])
    assert "nothing is downloaded" in str(e.value)
    with pytest.raises(SystemExit) as e:
        train_main(["tokenizer", "--run-dir", str(tmp_path / "r3"), "--dataset", "ucf101", "--data-root",
                    str(tmp_path / "no-such-folder"), "--no-progress"])
    assert "no-such-folder" in str(e.value)
    assert not (tmp_path / "r").exists() and not (tmp_path / "r3").exists()  # no empty run folders left behind


def _tokenize(*argv: str) -> Path:
    return tokenize_main(tokenize_parser().parse_args([*argv, "--no-progress", "--batch-size", "3"]))


def test_extraction_resumes_and_matches_the_model(trained_run, tmp_path):
    tok = str(trained_run / "tokenizer")
    full = _tokenize("--tokenizer", tok, "--out", str(tmp_path / "full"))
    part = _tokenize("--tokenizer", tok, "--out", str(tmp_path / "part"), "--splits", "train", "--stop-after", "3")
    assert json.loads((part / "train/meta.json").read_text())["done"] == 3
    _tokenize("--tokenizer", tok, "--out", str(tmp_path / "part"), "--splits", "train")
    a, b = TokenDataset(full / "train"), TokenDataset(part / "train")
    assert len(a) == len(b) == 8  # the data options came from the tokenizer's run
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.index, b.index)
    assert len(TokenDataset(full / "val")) == 2
    model = VideoTokenizer.from_pretrained(tok).eval()
    clips = SyntheticVideoDataset(num_clips=8, frames=9, size=32, split="train")
    expected = model.encode(torch.stack([clips[i]["video"] for i in range(8)]))
    assert torch.equal(torch.stack([a[i]["codes"] for i in range(8)]), expected)
    assert [a[i]["label"] for i in range(8)] == [clips[i]["label"] for i in range(8)]


def test_extraction_from_files_skips_bad_ones(trained_run, tmp_path, write_test_video):
    good = [write_test_video(tmp_path / "v" / f"{i}.mp4", 20, 48, 40, 16, "libx264") for i in range(3)]
    (tmp_path / "v" / "broken.mp4").write_bytes(b"\x00" * 100)
    listing = tmp_path / "list.csv"
    listing.write_text("".join(f"{p},cls{i % 2}\n" for i, p in enumerate(good)) + f"{tmp_path / 'v' / 'broken.mp4'},cls0\n")
    out = _tokenize("--tokenizer", str(trained_run / "tokenizer"), "--out", str(tmp_path / "tok"), "--splits", "train",
                    "--dataset", "k600", "--train-list", str(listing), "--max-bad-fraction", "0.5")
    ds = TokenDataset(out / "train")
    assert len(ds) == 3 and ds.meta["num_items"] == 4
    assert [ds[i]["video_id"] for i in range(3)] == [0, 1, 2] and ds.class_names == ["cls0", "cls1"]
    assert ds[0]["codes"].shape == (3, 4, 4)


def test_patch_codec_trains_from_its_pca_start_and_resumes(tmp_path, capsys):
    """The stage starts the patch tokenizer from PCA (held-out PSNR well above a random start from the
    first evaluation on), and a resumed run keeps its weights instead of refitting."""
    common = ["--model", "patch", "--fsq-levels", "8,5,5,5", "--size", "16", "--train-clips", "16", "--init-clips", "8",
              "--eval-every", "1", "--sample-every", "100", "--ckpt-every", "1", "--background", "plain"]
    run = _train(tmp_path / "p", *common, "--steps", "2", "--stop-at", "1")
    assert "patch tokenizer started from the PCA of 8 clips" in capsys.readouterr().out
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert first["step"] == 1 and first["val/psnr"] > 17
    train_main(["tokenizer", "--resume", str(run), *SMALL, *common, "--steps", "2"])
    assert "patch tokenizer started" not in capsys.readouterr().out
    model = VideoTokenizer.from_pretrained(run / "tokenizer")
    assert model.config.arch == "patch" and model.config.latent_shape(9, 16, 16) == (3, 4, 4)
    out = _tokenize("--tokenizer", str(run / "tokenizer"), "--out", str(tmp_path / "tok"), "--splits", "val")
    tokens = TokenDataset(out / "val")
    assert tokens[0]["codes"].shape == (3, 4, 4)
    # the extraction drew the clips the tokenizer was trained on: plain backgrounds
    clips = SyntheticVideoDataset(num_clips=2, frames=9, size=16, split="val", background="plain")
    expected = model.eval().encode(torch.stack([clips[i]["video"] for i in range(2)]))
    assert torch.equal(torch.stack([tokens[i]["codes"] for i in range(2)]), expected)


def test_time_limit_plans_the_tokenizer_steps(tmp_path, capsys):
    """A limit far too short for --steps: the codec trains the steps that fit, its schedule ends on them,
    and the checkpoint records the planned count."""
    run = _train(tmp_path / "t", "--model", "patch", "--fsq-levels", "8,5,5,5", "--size", "16", "--train-clips", "16",
                 "--init-clips", "8", "--steps", "1000000", "--time-limit", "0.25", "--eval-every", "20",
                 "--sample-every", "1000", "--ckpt-every", "20", "--log-every", "2")
    printed = capsys.readouterr().out
    ckpt = latest_state(run)
    planned = ckpt["config"]["steps"]
    assert 10 <= planned < 1000000 and ckpt["step"] == planned
    assert f"-minute limit: {planned} steps of " in printed and "(--steps 1000000)" in printed
    lrs = [json.loads(l)["lr"] for l in (run / "metrics.jsonl").read_text().splitlines() if "lr" in json.loads(l)]
    assert lrs[-1] < 0.35 * max(lrs)  # near the cosine's floor (0.1 x peak): re-planned every 2 steps
    assert json.loads((run / "eval.json").read_text())["step"] == planned


def test_default_pipeline_is_tokenizer_then_tokenize_then_generator():
    from nbp_ext.train.__main__ import PIPELINE, PIPELINE_ARGS, build_parser
    assert PIPELINE == ("tokenizer", "tokenize", "generator")
    args = build_parser().parse_args(["tokenize", *PIPELINE_ARGS["tokenize"]({"tokenizer": Path("runs/x")})])
    assert args.tokenizer == str(Path("runs/x/tokenizer")) and args.out == str(Path("runs/x/tokens"))
    results = {"tokenizer": Path("runs/x"), "tokenize": Path("runs/x/tokens")}
    args = build_parser().parse_args(["generator", *PIPELINE_ARGS["generator"](results)])
    assert args.tokens == str(Path("runs/x/tokens")) and args.tokenizer == str(Path("runs/x/tokenizer"))
    args = build_parser().parse_args(["tokenizer"])  # the stage alone trains what the pipeline trains
    assert args.fsq_levels == (8, 5, 5, 5)  # a CPU-sized codebook for the no-argument run
    assert args.model == "patch" and args.size % 4 == 0 and (args.frames - 1) % 4 == 0
    assert args.background == "plain" and args.palette and args.precision == "fp32"
    assert args.object_scale == 1.5 and args.loss == "l2"  # shapes a /4 codec keeps in minutes
    args = build_parser().parse_args(["generator"])
    assert args.start == "hybrid" and args.sample_top_p == 1.0
    help_text = build_parser()._subparsers._group_actions[0].choices["tokenizer"].format_help()
    assert "perceptual loss (off unless --vgg-weights is given; nothing is downloaded)" in help_text


def test_pipeline_presets_override_the_defaults_and_need_no_stage(capsys):
    from nbp_ext.train.__main__ import PIPELINE, PIPELINE_PRESETS, build_parser, main, pipeline_stage_args
    results = {"tokenizer": Path("runs/x"), "tokenize": Path("runs/x/tokens")}

    def parse(preset, minutes_left=None):
        return {name: build_parser().parse_args([name, *pipeline_stage_args(name, preset, results, minutes_left)])
                for name in PIPELINE}

    long = parse("long")
    assert long["tokenizer"].steps == 6000 and long["tokenize"].train_clips == 24000 and long["generator"].steps == 12000
    assert long["tokenizer"].time_limit is None and long["generator"].time_limit is None
    # quick: the stages' --steps are ceilings under the whole run's time limit; the tokenizer gets its
    # share, the generator what is left when it starts
    q = PIPELINE_PRESETS["quick"]
    assert q.minutes is not None and q.minutes <= 14
    quick = parse("quick", q.minutes)
    assert quick["tokenizer"].time_limit == pytest.approx(q.minutes * q.tokenizer_share, abs=1e-3)
    assert quick["tokenize"].train_clips is None
    assert build_parser().parse_args(["generator", *pipeline_stage_args("generator", "quick", results, 9.25)]).time_limit == 9.25
    assert build_parser().parse_args(["generator", *pipeline_stage_args("generator", "quick", results, -1)]).time_limit == 0.5
    assert quick["generator"].steps > 1000 and quick["tokenizer"].steps >= 600
    # everything else, including what the earlier stages hand on, stays as in the default run
    assert long["tokenizer"].fsq_levels == quick["tokenizer"].fsq_levels and long["tokenizer"].palette
    assert long["generator"].tokens == str(Path("runs/x/tokens")) and long["generator"].start == "hybrid"
    with pytest.raises(ValueError, match="preset must be one of"):
        pipeline_stage_args("generator", "huge", results)
    with pytest.raises(SystemExit, match="cannot be combined with the stage|run the whole pipeline"):
        main(["--preset", "long", "generator"])
    with pytest.raises(SystemExit, match="run the whole pipeline; for the stage 'generator' alone"):
        main(["--time-limit", "5", "generator"])
    with pytest.raises(SystemExit, match="--time-limit must be 0 .none. or at least 1 minutes, got 0.2"):
        main(["--time-limit", "0.2"])
    with pytest.raises(SystemExit):
        main(["--preset", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    # a stage's own --time-limit is the stage's, not the pipeline's
    assert build_parser().parse_args(["generator", "--time-limit", "3"]).time_limit == 3.0


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, free_port):
    """torchrun with 2 CPU processes (gloo) x 1 clip equals 1 process x 2 clips."""
    import os
    import procs
    import sys

    common = ["--steps", "2", "--eval-every", "100", "--sample-every", "100", "--ckpt-every", "100",
              "--precision", "fp32"]  # the tolerances below are fp32 reduction-order noise
    one = _train(tmp_path / "one", *common)
    args = ["tokenizer", "--run-dir", str(tmp_path / "two"), *SMALL, *common]
    args[args.index("--batch-size") + 1] = "1"
    repo = Path(__file__).resolve().parents[1]
    proc = procs.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(free_port), "-m", "nbp_ext.train", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(one / "tokenizer" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "tokenizer" / "model.safetensors"))
    # Adam turns reduction-order noise in near-zero gradients into visible steps, so a few entries may
    # differ by up to two learning-rate steps (2 x 2 x 1e-3); a wrong data split would move most of them.
    close, total = 0, 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=4e-3, rtol=0)
        close += int(torch.isclose(a[k], b[k], atol=2e-5, rtol=1e-4).sum())
        total += a[k].numel()
    assert close / total > 0.99, close / total
