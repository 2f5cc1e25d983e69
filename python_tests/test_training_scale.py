"""Training on several processes (gloo on the CPU): ddp and fsdp against one process, resume across
world sizes and parallelisms, a two-node rendezvous, SIGKILLs at random moments, checkpoints that
unpickle nothing, and bad resumes that stop with one line."""

import json
import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import make_token_run
from nbp_ext.models import Generator, VideoTokenizer
from nbp_ext.train.checkpoint import COMPLETE, complete_checkpoints
import procs

REPO = Path(__file__).resolve().parents[1]
# fp32 so that the runs compare to reduction-order noise; no condition dropout, whose draws differ
# between one process and two
COMMON = ["--model", "tiny", "--warmup", "2", "--log-every", "1", "--no-progress", "--precision", "fp32",
          "--cond-dropout", "0", "--sample-every", "1000", "--lr", "3e-3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    """Tokens of 64 synthetic 17x32x32 clips (grid 5x4x4) from an untrained tiny tokenizer."""
    return make_token_run(tmp_path_factory.mktemp("tokens"), frames=17, train_clips=64, val_clips=8) / "tokens"


def launch(args: list[str], nprocs: int = 1, **kw) -> subprocess.Popen:
    """``python -m nbp_ext.train generator ARGS`` in one process or under torchrun with ``nprocs`` processes,
    in a session of its own."""
    if nprocs == 1:
        cmd = [sys.executable, "-m", "nbp_ext.train", "generator", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nprocs), "--master-port",
               str(free_port()), "-m", "nbp_ext.train", "generator", *args]
    return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def finish(proc: subprocess.Popen, timeout: float) -> str:
    """What ``proc`` printed, once it ends within ``timeout`` s; it and every worker it started are
    killed in any case (a timeout, or the test's own time limit, leaves nothing behind)."""
    try:
        return proc.communicate(timeout=timeout)[0]
    finally:
        procs.kill_tree(proc)


def run(args: list[str], nprocs: int = 1) -> str:
    proc = launch(args, nprocs)
    out = finish(proc, 600)
    assert proc.returncode == 0, out[-4000:]
    return out


def losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss/train"] for r in rows if "loss/train" in r]


def held_out(run_dir: Path) -> float:
    return json.loads((run_dir / "eval.json").read_text())["loss"]


def weights(run_dir: Path) -> dict:
    return Generator.from_pretrained(run_dir / "generator").state_dict()


def generator_args(tokens: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--tokens", str(tokens), "--run-dir", str(run_dir), *COMMON, *extra]


@pytest.fixture(scope="module")
def one_process(tokens, tmp_path_factory) -> Path:
    """The reference: one process, 8 clips a step, 8 steps."""
    run_dir = tmp_path_factory.mktemp("one") / "run"
    run(generator_args(tokens, run_dir, "--batch-size", "8", "--steps", "8", "--ckpt-every", "4", "--eval-every", "8"))
    return run_dir


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_follow_the_one_process_curve(tokens, one_process, tmp_path, parallel):
    two = tmp_path / parallel
    out = run(generator_args(tokens, two, "--batch-size", "4", "--steps", "8", "--ckpt-every", "4", "--eval-every", "8",
                  "--parallel", parallel), nprocs=2)
    assert f"2 process(es), {parallel}" in out
    torch.testing.assert_close(losses(two), losses(one_process), rtol=1e-4, atol=1e-5)
    assert held_out(two) == pytest.approx(held_out(one_process), rel=1e-4)
    a, b = weights(one_process), weights(two)
    for k in a:  # AdamW can turn reduction-order noise in a near-zero gradient into a step of up to lr
        torch.testing.assert_close(a[k], b[k], atol=4 * 3e-3, rtol=0)
    # every process wrote its own shard of the checkpoint
    shards = sorted(p.name for p in complete_checkpoints(two)[-1].glob("*.safetensors"))
    assert len(shards) == 2, shards


@pytest.mark.parametrize("first,then", [(("2", "fsdp"), ("1", None)), (("1", None), ("2", "fsdp")),
                                        (("2", "ddp"), ("2", "fsdp"))])
def test_resume_on_another_world_size_continues_the_curve(tokens, one_process, tmp_path, first, then):
    run_dir = tmp_path / "run"
    nprocs, parallel = int(first[0]), first[1]
    batch = str(8 // nprocs)
    args = generator_args(tokens, run_dir, "--batch-size", batch, "--steps", "8", "--ckpt-every", "4", "--eval-every", "8",
               "--stop-at", "4", *(["--parallel", parallel] if parallel else []))
    run(args, nprocs=nprocs)
    nprocs, parallel = int(then[0]), then[1]
    out = run(["--resume", str(run_dir), "--no-progress", *(["--parallel", parallel] if parallel else [])], nprocs=nprocs)
    assert f"resumed from {run_dir / 'checkpoints' / 'step_00000004'} (step 4, {first[0]} process(es)" in out
    torch.testing.assert_close(losses(run_dir), losses(one_process), rtol=1e-4, atol=1e-5)
    assert held_out(run_dir) == pytest.approx(held_out(one_process), rel=1e-4)


def test_two_nodes_rendezvous_on_localhost(tokens, one_process, tmp_path):
    """``torchrun --nnodes 2 --rdzv-backend c10d``: two "machines" of one process each."""
    run_dir, port = tmp_path / "run", free_port()
    args = generator_args(tokens, run_dir, "--batch-size", "4", "--steps", "8", "--ckpt-every", "4", "--eval-every", "8",
               "--parallel", "fsdp")
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nbp-test",
                               "-m", "nbp_ext.train", "generator", *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True) for _ in range(2)]
    try:
        outs = [finish(node, 600) for node in nodes]
    finally:
        for node in nodes:
            procs.kill_tree(node)
    assert all(node.returncode == 0 for node in nodes), "\n".join(o[-2000:] for o in outs)
    torch.testing.assert_close(losses(run_dir), losses(one_process), rtol=1e-4, atol=1e-5)


def test_activation_checkpointing_and_async_checkpoints_keep_the_curve(tokens, one_process, tmp_path):
    run_dir = tmp_path / "run"
    out = run(generator_args(tokens, run_dir, "--batch-size", "4", "--grad-accum", "2", "--steps", "8", "--ckpt-every", "2",
                  "--eval-every", "8", "--activation-checkpointing", "--async-checkpoint", "--keep-checkpoints", "3"))
    assert "activation checkpointing" in out
    torch.testing.assert_close(losses(run_dir), losses(one_process), rtol=1e-4, atol=1e-5)
    assert [p.name for p in complete_checkpoints(run_dir)] == ["step_00000004", "step_00000006", "step_00000008"]


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and all its workers at once, as a machine failure would."""
    procs.kill_tree(proc)
    proc.communicate()


def _unfinished(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    return [p for p in root.glob("step_*") if not (p / COMPLETE).exists()] if root.is_dir() else []


def _logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if "loss/train" in row:
            steps.append(row["step"])
    return steps


def test_sigkill_at_random_moments_loses_at_most_one_interval(tokens, tmp_path):
    """A 2-process fsdp run killed with SIGKILL six times, three of them while a checkpoint is being
    written, and resumed each time, ends where an uninterrupted run ends."""
    steps, every = 80, 4
    args = ["--batch-size", "4", "--steps", str(steps), "--ckpt-every", str(every), "--eval-every", str(steps),
            "--parallel", "fsdp"]
    straight = tmp_path / "straight"
    run(generator_args(tokens, straight, *args), nprocs=2)

    run_dir, rng = tmp_path / "killed", random.Random(0)
    kills_in_save = 0
    for attempt in range(6):
        first = attempt == 0
        proc = launch(generator_args(tokens, run_dir, *args) if first else ["--resume", str(run_dir), "--no-progress"], nprocs=2)
        try:
            logged = len(_logged_steps(run_dir))
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline and (
                    len(_logged_steps(run_dir)) <= logged or not complete_checkpoints(run_dir)):
                time.sleep(0.01)  # until this attempt trains (the first one: until its first checkpoint)
            if attempt % 2:  # kill as soon as a checkpoint folder exists without its completion record
                while proc.poll() is None and time.monotonic() < deadline and not _unfinished(run_dir):
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is not None:
                out = finish(proc, 60)
                pytest.fail(f"attempt {attempt}: the run ended (exit {proc.returncode}) before it could be killed: {out[-3000:]}")
        except BaseException:
            procs.kill_tree(proc)
            raise
        _kill(proc)
        kills_in_save += bool(_unfinished(run_dir))
        finished = complete_checkpoints(run_dir)
        assert finished, "no finished checkpoint"
        record = json.loads((finished[-1] / COMPLETE).read_text())  # the latest finished one is whole
        assert all((finished[-1] / name).stat().st_size == size for name, size in record["files"].items())
        assert max(_logged_steps(run_dir)) - record["step"] <= every, "more than one interval lost"
    assert kills_in_save >= 1, "no kill landed inside a checkpoint write"

    out = run(["--resume", str(run_dir), "--no-progress"], nprocs=2)
    assert "unfinished checkpoint(s)" in out or kills_in_save == 0
    assert not _unfinished(run_dir)
    assert held_out(run_dir) == pytest.approx(held_out(straight), rel=0.01)
    assert _logged_steps(run_dir) == list(range(1, steps + 1)), "metrics.jsonl must hold every step once"


def test_nothing_loaded_on_resume_is_unpickled(tokens, tmp_path):
    """Every file a resume reads replaced by a pickle that would create a file: the resume fails with a
    one-line error and nothing runs."""
    run_dir = tmp_path / "run"
    run(generator_args(tokens, run_dir, "--batch-size", "8", "--steps", "2", "--ckpt-every", "2", "--eval-every", "2"))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = pickle.dumps(Payload())
    folder = complete_checkpoints(run_dir)[-1]
    for path in folder.rglob("*"):
        if path.is_file() and path.name != COMPLETE:  # the record keeps the sizes the files now have
            path.write_bytes(evil)
    record = json.loads((folder / COMPLETE).read_text())
    record["files"] = {name: len(evil) for name in record["files"]}
    (folder / COMPLETE).write_text(json.dumps(record))
    proc = launch(["--resume", str(run_dir), "--no-progress"])
    out = finish(proc, 300)
    assert proc.returncode != 0 and not marker.exists()
    assert out.strip().splitlines()[-1].startswith("error: "), out[-2000:]
    # and a completion record that is itself a pickle
    (folder / COMPLETE).write_bytes(evil)
    proc = launch(["--resume", str(run_dir), "--no-progress"])
    out = finish(proc, 300)
    assert proc.returncode != 0 and not marker.exists()


def _error(args: list[str], nprocs: int = 1) -> str:
    proc = launch(args, nprocs)
    out = finish(proc, 300)
    assert proc.returncode != 0, out[-2000:]
    if nprocs == 1:  # (torchrun adds a report of its own on a process's failure)
        assert "Traceback" not in out, out[-3000:]
    return [line for line in out.splitlines() if line.startswith("error: ")][-1]


def test_bad_resumes_stop_with_one_line_and_touch_nothing(tokens, tmp_path):
    run_dir = tmp_path / "run"
    run(generator_args(tokens, run_dir, "--batch-size", "6", "--steps", "4", "--ckpt-every", "2", "--eval-every", "4"))
    saved = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and "checkpoints" in p.parts}

    assert "--model small would change the model" in _error(["--resume", str(run_dir), "--model", "small"])
    assert "--block frame would change the model" in _error(["--resume", str(run_dir), "--block", "frame"])
    line = _error(["--resume", str(run_dir), "--no-progress"], nprocs=4)
    assert "global batch of 6 clips" in line and "cannot be split evenly over 4 processes" in line
    assert "no such run folder" in _error(["--resume", str(tmp_path / "nowhere")])
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and "checkpoints" in p.parts} == saved

    latest = complete_checkpoints(run_dir)[-1]
    shard = next(latest.glob("*.safetensors"))
    shard.rename(tmp_path / "away")
    assert f"is missing {shard.name}" in _error(["--resume", str(run_dir)])
    (tmp_path / "away").rename(shard)

    old = tmp_path / "old"
    old.mkdir()
    (old / "checkpoint.pt").write_bytes(b"\x80\x04")
    assert "single-file format of earlier versions" in _error(["--resume", str(old)])

    (tmp_path / "a-file").write_text("")
    assert "cannot be made" in _error(generator_args(tokens, tmp_path / "a-file" / "run", "--steps", "1"))

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # (root writes anywhere: then only the case above is checked)
            assert "is not writable" in _error(generator_args(tokens, locked, "--steps", "1"))
    finally:
        locked.chmod(0o700)


def test_ctrl_c_saves_a_checkpoint_that_resumes(tokens, tmp_path):
    run_dir = tmp_path / "run"
    proc = launch(generator_args(tokens, run_dir, "--batch-size", "4", "--steps", "100000", "--ckpt-every", "100000",
                      "--eval-every", "100000"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run_dir / "metrics.jsonl").is_file():
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    out = finish(proc, 120)
    assert "checkpoint saved, continue with --resume" in out, out[-2000:]
    step = json.loads((complete_checkpoints(run_dir)[-1] / "train_state.json").read_text())["step"]
    assert step >= 1
    out = run(["--resume", str(run_dir), "--no-progress", "--stop-at", str(step + 2)])
    assert f"resumed from {run_dir / 'checkpoints' / f'step_{step:08d}'}" in out


def test_tokenizer_trains_under_fsdp_and_resumes_on_one_process(tmp_path):
    run_dir = tmp_path / "tok"
    small = ["--frames", "9", "--size", "32", "--batch-size", "2", "--train-clips", "8", "--val-clips", "2",
             "--eval-clips", "2", "--no-progress", "--lr", "1e-3", "--warmup", "1", "--steps", "4", "--eval-every", "4",
             "--sample-every", "4", "--ckpt-every", "2", "--log-every", "1", "--precision", "fp32"]
    proc = procs.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           str(free_port()), "-m", "nbp_ext.train", "tokenizer", "--run-dir", str(run_dir), *small,
                           "--parallel", "fsdp", "--stop-at", "2"], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(list(complete_checkpoints(run_dir)[-1].glob("*.safetensors"))) == 2
    proc = procs.run([sys.executable, "-m", "nbp_ext.train", "tokenizer", "--resume", str(run_dir), "--no-progress"],
                          cwd=REPO, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "(step 2, 2 process(es), fsdp) on 1 process(es), none: micro-batches of 2 clips x 2 per step" in proc.stdout
    assert VideoTokenizer.from_pretrained(run_dir / "tokenizer").config.fsq_levels == (8, 5, 5, 5)
