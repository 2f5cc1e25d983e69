"""``python -m nbp_ext.train generator``: learning, resume, two processes, samples, and the sample command."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_token_run
from nbp_ext.hardware import native_bf16
from nbp_ext.models import Generator, VideoTokenizer
from nbp_ext.train.__main__ import main as train_main
from nbp_ext.train.checkpoint import complete_checkpoints
import procs

REPO = Path(__file__).resolve().parents[1]
FAST = ["--model", "tiny", "--batch-size", "8", "--warmup", "5", "--log-every", "1", "--no-progress",
        "--sample-top-k", "50", "--sample-top-p", "0.9", "--start-block", "learned"]


@pytest.fixture(scope="module")
def token_run(tmp_path_factory) -> Path:
    """A tokenizer run folder (untrained tiny tokenizer, 625 codes) with tokens of 17x32x32 synthetic clips."""
    return make_token_run(tmp_path_factory.mktemp("tokenizer-run"), frames=17, train_clips=96, val_clips=16)


def generator_args(token_run: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["generator", "--tokens", str(token_run / "tokens"), "--tokenizer", str(token_run / "tokenizer"),
            "--run-dir", str(run_dir), *FAST, *extra]


def latest_state(run: Path) -> dict:
    """The training state of a run's latest finished checkpoint."""
    return json.loads((complete_checkpoints(run)[-1] / "train_state.json").read_text())


def weights(run_dir: Path) -> dict:
    return Generator.from_pretrained(run_dir / "generator").state_dict()


def test_learns_beats_uniform_and_writes_samples(token_run, tmp_path, capsys):
    run = tmp_path / "generator"
    train_main(generator_args(token_run, run, "--steps", "60", "--eval-every", "60", "--sample-every", "60",
                        "--ckpt-every", "60", "--lr", "3e-3"))
    printed = capsys.readouterr().out
    assert f"latest sample video: {run / 'samples' / 'step_0000060.mp4'} (left to right, classes 0 square-bounce, " in printed
    assert "11 digit-scale)" in printed
    result = json.loads((run / "eval.json").read_text())
    # Measured with seed 0: held-out 3.70 nats/token after 60 steps (fp32 and bf16 alike) against
    # log(625) = 6.44 for a uniform guess; the codes of this untrained tokenizer are noisy.
    assert result["loss"] < 0.6 * result["uniform"], result
    n = len(result["per_frame"])  # 17 frames -> 5 latent frames
    assert n == 5 and abs(sum(result["per_frame"]) / n - result["loss"]) < 1e-3, result
    assert "per latent frame " in printed
    samples = list((run / "samples").glob("*.mp4"))
    assert samples, "no sample video written"
    import av

    with av.open(str(samples[0])) as f:
        assert f.streams.video[0].width >= 12 * 32  # one video per class, all 12
    assert (run / "tb").is_dir() and complete_checkpoints(run) and (run / "generator.json").is_file()
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("loss_pos/000" in l for l in lines)

    out = tmp_path / "video.mp4"
    procs.run([sys.executable, "-m", "nbp_ext.sample", "--run", str(run), "--class", "3", "--num", "2",
                    "--seed", "1", "--guidance-scale", "2.0", "--top-k", "50", "--out", str(out), "--save-tokens"],
                   check=True, cwd=REPO, capture_output=True)
    with av.open(str(out)) as f:
        frames = [fr for fr in f.decode(video=0)]
    assert len(frames) == 17 and frames[0].width >= 2 * 32
    assert frames[0].height >= 128  # enlarged for viewing by default
    codes = torch.load(out.with_suffix(".pt"))
    assert codes.shape == (2, 5, 4, 4)

    bad = procs.run([sys.executable, "-m", "nbp_ext.sample", "--run", str(run), "--class", "99", "--out",
                          str(tmp_path / "x.mp4")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "--class must be in [0, 12)" in bad.stderr


def test_resume_gives_the_same_weights(token_run, tmp_path):
    straight, resumed = tmp_path / "a", tmp_path / "b"
    common = ["--steps", "6", "--eval-every", "100", "--sample-every", "100", "--ckpt-every", "3"]
    train_main(generator_args(token_run, straight, *common))
    train_main(generator_args(token_run, resumed, *common, "--stop-at", "3"))
    train_main(["generator", "--resume", str(resumed), "--no-progress"])
    a, b = weights(straight), weights(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_time_limit_plans_fewer_steps_and_ends_the_schedule(token_run, tmp_path, capsys):
    """A limit far too short for --steps: the stage plans fewer steps, ends its cosine schedule on them,
    closes with its evaluation, samples and checkpoint, and a resumed run keeps the planned count."""
    run = tmp_path / "limited"
    train_main(generator_args(token_run, run, "--steps", "100000", "--time-limit", "0.5", "--eval-every", "5",
                        "--sample-every", "1000", "--ckpt-every", "5"))
    printed = capsys.readouterr().out
    ckpt = latest_state(run)
    planned = ckpt["config"]["steps"]
    assert 10 <= planned < 100000 and ckpt["step"] == planned, (planned, ckpt["step"])
    assert f"finished in " in printed and f"-minute limit: {planned} steps of " in printed and "(--steps 100000)" in printed
    # the learning rate came down to the schedule's floor (0.1 x peak) at the planned step
    lrs = [json.loads(l)["lr"] for l in (run / "metrics.jsonl").read_text().splitlines() if "lr" in json.loads(l)]
    assert lrs[-1] == pytest.approx(0.1 * 3e-3, rel=0.05) and max(lrs) == pytest.approx(3e-3, rel=0.05)
    assert json.loads((run / "eval.json").read_text())["step"] == planned
    assert list((run / "samples").glob("*.mp4"))
    train_main(["generator", "--resume", str(run), "--no-progress"])  # nothing left to do: the plan stands
    assert latest_state(run)["step"] == planned
    with pytest.raises(SystemExit, match="--time-limit must be > 0 minutes, got 0"):
        train_main(generator_args(token_run, tmp_path / "bad", "--time-limit", "0"))


def test_two_processes_match_one_with_the_same_global_batch(token_run, tmp_path, free_port):
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--steps", "3", "--eval-every", "100", "--sample-every", "100", "--ckpt-every", "100",
              "--cond-dropout", "0", "--precision", "fp32"]  # the tolerances below are fp32 reduction-order noise
    args_one = generator_args(token_run, one, *common)  # with --start-block, which torchrun passes on
    args_one[args_one.index("--batch-size") + 1] = "8"
    train_main(args_one)
    args_two = generator_args(token_run, two, *common)
    args_two[args_two.index("--batch-size") + 1] = "4"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = procs.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port),
                           "-m", "nbp_ext.train", *args_two], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # AdamW can turn reduction-order noise in a near-zero gradient into a step of up to 2 x lr (3e-3) per
    # update; a wrong data split would move most entries, so nearly all must agree to 2e-5.
    a, b = weights(one), weights(two)
    close, total = 0, 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=3 * 2 * 3e-3, rtol=0)
        close += int(torch.isclose(a[k], b[k], atol=2e-5, rtol=1e-4).sum())
        total += a[k].numel()
    assert close / total > 0.99, close / total


def test_bad_options(token_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="block"):
        train_main(generator_args(token_run, tmp_path / "x", "--block", "1,3,4", "--steps", "1"))
    with pytest.raises(SystemExit, match="token folder"):
        train_main(["generator", "--tokens", str(tmp_path), "--steps", "1", "--no-progress"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()  # no empty run folders left behind


def test_sample_command_errors(token_run, tmp_path, write_test_video):
    """Another tokenizer's vocabulary, and a context clip too short for frame prediction."""
    from nbp_ext.runs import RUN_INFO

    run = tmp_path / "frames-run"
    model = Generator.from_name("tiny", vocab_size=625, grid=(5, 4, 4), block=(1, 1, 4), condition="frames",
                                     context_frames=2, n_layer=1, d_model=32)
    model.save_pretrained(run / "generator")
    (run / RUN_INFO).write_text(json.dumps({"tokenizer": str(token_run / "tokenizer")}))

    other = tmp_path / "other-tokenizer"
    VideoTokenizer.from_name("tiny", fsq_levels=(4, 4)).save_pretrained(other)
    short = write_test_video(tmp_path / "short.mp4", 3, 32, 32, 8, "libx264")  # context needs 5 frames
    long = write_test_video(tmp_path / "long.mp4", 8, 32, 32, 8, "libx264")

    def sample(*args):
        return procs.run([sys.executable, "-m", "nbp_ext.sample", "--run", str(run), "--top-k", "50",
                               "--out", str(tmp_path / "out.mp4"), *args], cwd=REPO, capture_output=True, text=True)

    r = sample("--context", str(long), "--tokenizer", str(other))
    assert r.returncode != 0 and "has 16 codes but the generator was trained on 625" in r.stderr
    r = sample("--context", str(short))
    assert r.returncode != 0 and "--context" in r.stderr and "first 5 frames" in r.stderr
    r = sample()
    assert r.returncode != 0 and "--context is required" in r.stderr
    r = sample("--context", str(long), "--guidance-scale", "2")
    assert r.returncode != 0 and "--guidance-scale needs a class-conditional model" in r.stderr
    r = sample("--context", str(long), "--num", "2")
    assert r.returncode == 0, r.stderr


def test_hybrid_start_trains_samples_and_exports(token_run, tmp_path):
    run = tmp_path / "hybrid"
    train_main(generator_args(token_run, run, "--start-block", "hybrid", "--steps", "2", "--eval-every", "2",
                        "--sample-every", "2", "--ckpt-every", "2", "--sample-top-p", "1.0", "--sample-guidance-scale", "3"))
    assert Generator.from_pretrained(run / "generator").config.start == "hybrid"
    assert list((run / "samples").glob("*.mp4"))
    from export import to_trt

    code = to_trt.main(["--checkpoint", str(run), "--output", str(tmp_path / "engines"), "--no-engines"])
    assert code == 0
    manifest = json.loads((tmp_path / "engines" / "manifest.json").read_text())
    assert manifest["model"]["start"] == "hybrid" and "token_step" in manifest["graphs"]
    # the run's sampling settings (those of its sample videos) are the deployed defaults
    assert manifest["sampling"] == {"temperature": 1.0, "top_k": 50, "top_p": 1.0, "guidance_scale": 3.0}


def test_sample_command_defaults_to_the_runs_sampling(token_run, tmp_path):
    from nbp_ext.generate import SamplingConfig, generate

    run = tmp_path / "generator"
    train_main(generator_args(token_run, run, "--steps", "2", "--eval-every", "100", "--sample-every", "100",
                        "--ckpt-every", "2", "--sample-top-k", "7", "--sample-top-p", "1.0"))
    info = json.loads((run / "generator.json").read_text())
    assert info["sampling"] == {"temperature": 1.0, "top_k": 7, "top_p": 1.0, "guidance_scale": 2.0}
    out = tmp_path / "v.mp4"
    procs.run([sys.executable, "-m", "nbp_ext.sample", "--run", str(run), "--class", "2", "--num", "2",
                    "--seed", "4", "--guidance-scale", "2.0", "--out", str(out), "--save-tokens"],
                   check=True, cwd=REPO, capture_output=True)
    model = Generator.from_pretrained(run / "generator").eval()
    codes = torch.load(out.with_suffix(".pt"))
    same = generate(model, torch.full((2,), 2), seed=4, sampling=SamplingConfig(1.0, 7, 1.0, 2.0))
    paper = generate(model, torch.full((2,), 2), seed=4, sampling=SamplingConfig(1.0, 16000, 0.9, 2.0))
    assert torch.equal(codes, same) and not torch.equal(codes, paper)


def test_sample_command_in_bf16(token_run, tmp_path):
    """--precision bf16 generates with the generator cast to bfloat16 (the same tokens as generate() on
    that model); a CPU without bf16 instructions gets an error naming the option."""
    from nbp_ext.generate import SamplingConfig, generate

    run = tmp_path / "generator"
    train_main(generator_args(token_run, run, "--steps", "2", "--eval-every", "100", "--sample-every", "100",
                        "--ckpt-every", "2"))
    out = tmp_path / "v.mp4"
    r = procs.run([sys.executable, "-m", "nbp_ext.sample", "--run", str(run), "--class", "1", "--num", "2",
                        "--seed", "3", "--precision", "bf16", "--device", "cpu", "--out", str(out), "--save-tokens"],
                       cwd=REPO, capture_output=True, text=True)
    if not native_bf16(torch.device("cpu")):
        assert r.returncode != 0 and "--precision bf16 needs bf16 instructions" in r.stderr, r.stderr
        return
    assert r.returncode == 0, r.stderr
    model = Generator.from_pretrained(run / "generator").eval().to(torch.bfloat16)
    recorded = json.loads((run / "generator.json").read_text())["sampling"]
    same = generate(model, torch.full((2,), 1), seed=3, sampling=SamplingConfig(**recorded))
    assert torch.equal(torch.load(out.with_suffix(".pt")), same)
    assert model.head.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_training_matches_eager(token_run, tmp_path, capsys, precision):
    """--compile trains the same model as eager training (same seed, same batches): the first step's
    loss agrees to the precision's rounding, the later ones (after AdamW updates, which turn
    rounding-sized gradient differences into step-sized ones where a gradient is near zero) closely,
    and the run did not fall back to eager. No condition dropout: inductor draws its random numbers
    with its own generator, so the dropped labels would differ. bf16 only where the CPU has it."""
    if precision == "bf16" and not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 instructions")
    common = ["--steps", "4", "--eval-every", "100", "--sample-every", "100", "--ckpt-every", "100",
              "--cond-dropout", "0", "--precision", precision]
    train_main(generator_args(token_run, tmp_path / "eager", *common))
    capsys.readouterr()
    train_main(generator_args(token_run, tmp_path / "compiled", *common, "--compile"))
    assert "torch.compile failed" not in capsys.readouterr().out

    def losses(run):
        rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss/train"] for r in rows if "loss/train" in r]

    eager, compiled = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert len(eager) == len(compiled) == 4
    # fused bf16 kernels round in other places than eager autocast
    assert compiled[0] == pytest.approx(eager[0], rel=1e-5 if precision == "fp32" else 1e-3)
    assert compiled == pytest.approx(eager, rel=1e-2)
    a, b = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    diff = sum(float((a[k] - b[k]).pow(2).sum()) for k in a) ** 0.5
    norm = sum(float(a[k].pow(2).sum()) for k in a) ** 0.5
    assert diff < 1e-2 * norm, (diff, norm)
