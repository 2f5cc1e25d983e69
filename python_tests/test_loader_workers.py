"""Loader worker processes: no hang after the parent used FFmpeg, under every start method; a stalled
worker ends the loader (and a training run, with a checkpoint) naming its file; bounded waits
between processes; every training option passes through torchrun's own parser."""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributed.run import get_args_parser

import procs
from conftest import REPO, make_token_run
from loader_datasets import SharedScalerFiles, StuckAt, shared_scaler_frames
from nbp_ext.data import ClipSpec, LoaderOptions, LoaderStalled, TokenDataset, VideoFileDataset, build_loader, read_clip
from nbp_ext.data.loader import (DEFAULT_WORKER_START, WORKER_START_ENV, WORKER_STARTS, make_loader,
                                 resolve_worker_start)
from nbp_ext.train.checkpoint import complete_checkpoints

SPEC = ClipSpec(frames=9, size=32, fps=8, position="center")
BOUND = 120.0  # seconds a batch may take here: far above a batch's cost, far below the test's own limit


@pytest.fixture(scope="module")
def videos(tmp_path_factory, write_test_video) -> list[str]:
    root = tmp_path_factory.mktemp("videos")
    return [str(write_test_video(root / f"v{i}.avi", 30 + 3 * i, 80, 60, 25, "mpeg4")) for i in range(6)]


@pytest.mark.parametrize("start", WORKER_STARTS)
def test_workers_after_decoding_in_the_parent_read_the_same_clips(videos, start):
    """The sequence that deadlocked forked workers: the parent converts frames with PyAV's shared
    scaler at two sizes (its slice threads now run, in the parent only) and reads clips itself; then
    worker processes read clips. Every start method gives the clips the parent reads."""
    shared_scaler_frames(videos[0])
    expected = [read_clip(p, SPEC)[0] for p in videos]
    data = VideoFileDataset([(p, 0) for p in videos], SPEC)
    loader = build_loader(data, batch_size=2, shuffle=False,
                          options=LoaderOptions(num_workers=2, worker_start=start, loader_timeout=BOUND))
    for epoch in range(2):  # persistent workers: the second epoch reuses them
        loader.sampler.set_epoch(epoch)
        got = [clip for batch in loader for clip in batch["video"]]
        assert len(got) == len(videos)
        for clip, want in zip(got, expected):
            as_uint8 = ((clip.permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
            assert np.array_equal(as_uint8, want)


def test_forkserver_isolates_workers_from_what_the_parent_did_with_ffmpeg(videos):
    """Code outside nbp's reader that uses PyAV's shared scaler in the workers too (the pattern that
    deadlocks under fork) works under the default start method, forkserver."""
    assert DEFAULT_WORKER_START == "forkserver"
    shared_scaler_frames(videos[0])
    data = SharedScalerFiles(videos)
    loader = make_loader(data, 3, None, LoaderOptions(worker_start="forkserver", loader_timeout=BOUND), num_workers=2)
    assert sum(batch["video"].shape[0] for batch in loader) == len(videos)


def test_a_stalled_worker_ends_the_loader_naming_its_file():
    loader = make_loader(StuckAt(8, stuck=5), 2, None, LoaderOptions(loader_timeout=3), num_workers=2)
    with pytest.raises(LoaderStalled, match=r"no batch for 3 s \(--loader-timeout\): worker \d has been reading "
                                            r"/data/clip_05.avi for \d+ s"):
        for _ in loader:
            pass


def test_worker_start_method_comes_from_the_option_then_the_environment(monkeypatch):
    monkeypatch.delenv(WORKER_START_ENV, raising=False)
    assert resolve_worker_start() == "forkserver"
    assert resolve_worker_start("spawn") == "spawn"
    monkeypatch.setenv(WORKER_START_ENV, "fork")
    assert resolve_worker_start() == "fork" and resolve_worker_start("spawn") == "spawn"
    monkeypatch.setenv(WORKER_START_ENV, "threads")
    with pytest.raises(ValueError, match=f"{WORKER_START_ENV} must be one of forkserver, spawn, fork, got 'threads'"):
        resolve_worker_start()
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="--loader-timeout must be a number of seconds > 0"):
            LoaderOptions(loader_timeout=bad)
    with pytest.raises(ValueError, match="--num-workers must be >= 0"):
        LoaderOptions(num_workers=-1)


def test_token_files_reach_workers_without_their_arrays(tmp_path):
    tokens = make_token_run(tmp_path, train_clips=8, val_clips=2) / "tokens" / "train"
    data = TokenDataset(tokens)
    assert len(pickle.dumps(data)) < 4096  # the memory maps are opened again, not copied
    loader = make_loader(data, 4, None, LoaderOptions(loader_timeout=BOUND), num_workers=2)
    codes = torch.cat([batch["codes"] for batch in loader])
    assert torch.equal(codes, torch.stack([data[i]["codes"] for i in range(len(data))]))


STALLING_RUN = """
import sys, time
import torch
import nbp_ext.data.folder as folder
real = folder.read_clip
def read_clip(path, spec, rng=None):
    if path.endswith("stuck.avi") and torch.utils.data.get_worker_info() is not None:
        time.sleep(3600)  # a read that never returns, in a worker
    return real(path, spec, rng)
folder.read_clip = read_clip
from nbp_ext.train.__main__ import main
main(sys.argv[1:])
"""


def test_a_training_run_whose_loader_stalls_saves_and_names_the_file(tmp_path, write_test_video):
    root = tmp_path / "ucf"
    train = []
    for c in ("Archery", "Bowling"):
        for i in range(4):
            write_test_video(root / c / f"v_{c}_g{i:02d}.avi", 30, 48, 40, 25, "mpeg4")
            train.append(f"{c}/v_{c}_g{i:02d}.avi")
    stuck = write_test_video(root / "Bowling" / "stuck.avi", 30, 48, 40, 25, "mpeg4")
    (root / "trainlist01.txt").write_text("\n".join([*train[1:], "Bowling/stuck.avi"]) + "\n")
    (root / "testlist01.txt").write_text(train[0] + "\n")
    run_dir = tmp_path / "run"
    # fork, so that the workers run the patched reader; the loader's bound is the same under every start
    proc = procs.run([sys.executable, "-c", STALLING_RUN, "tokenizer", "--dataset", "ucf101", "--data-root", str(root),
                      "--frames", "9", "--size", "32", "--batch-size", "2", "--steps", "50", "--no-progress",
                      "--run-dir", str(run_dir), "--num-workers", "1", "--worker-start", "fork",
                      "--loader-timeout", "5"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[-1].startswith("error: loader workers delivered no batch for 5 s (--loader-timeout): worker 0 has "
                                f"been reading {stuck} for "), lines[-1]
    assert f"checkpoint saved at step " in lines[-1] and f"continue with --resume {run_dir}" in lines[-1]
    step = json.loads((complete_checkpoints(run_dir)[-1] / "train_state.json").read_text())["step"]
    assert f"at step {step}," in lines[-1]


def _dist_env(port: int, rank: int) -> dict:
    return {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}


def test_a_process_that_never_joins_ends_the_start_with_one_line(tmp_path, free_port):
    t0 = time.monotonic()
    proc = procs.run([sys.executable, "-m", "nbp_ext.train", "generator", "--tokens", str(tmp_path / "none"),
                      "--run-dir", str(tmp_path / "run"), "--dist-timeout", "3", "--no-progress"],
                     cwd=REPO, env=_dist_env(free_port, 0), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr[-3000:]
    assert proc.stderr.startswith(f"error: process 0 of 2: the processes did not all join at 127.0.0.1:{free_port} "
                                  "within 3 s (--dist-timeout)"), proc.stderr
    assert time.monotonic() - t0 < 100  # ended by its own bound, not by the test's
    assert not (tmp_path / "run").exists()


PEER = """
import sys, time
from nbp_ext.cli_errors import run_command
from nbp_ext.train.distributed import barrier, setup_distributed
def main():
    info = setup_distributed("cpu", float(sys.argv[1]))
    if info.rank == 1:
        time.sleep(120)  # alive, and never at the barrier
    barrier(info)
run_command(main)
"""


def test_a_stuck_peer_ends_a_collective_with_one_line(free_port):
    import subprocess

    stuck = subprocess.Popen([sys.executable, "-c", PEER, "3"], cwd=REPO, env=_dist_env(free_port, 1),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        main = procs.run([sys.executable, "-c", PEER, "3"], cwd=REPO, env=_dist_env(free_port, 0),
                         capture_output=True, text=True, timeout=100)
    finally:
        procs.kill_tree(stuck)
    assert main.returncode == 1, main.stderr[-3000:]
    assert main.stderr.count("\n") == 1 and main.stderr.startswith("error: between the processes: "), main.stderr


def _options(parser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]


def test_every_option_of_the_torchrun_commands_reaches_them():
    """torchrun's parser reads an option of the command that is an ambiguous prefix of its own (as
    --start was of --start-method) as its own; each option here passes through untouched."""
    from nbp_ext.evaluate.__main__ import build_parser as evaluate_parser
    from nbp_ext.train.__main__ import build_parser as train_parser

    torchrun = get_args_parser()
    sub = next(a for a in train_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = [("nbp_ext.train", [stage], _options(p)) for stage, p in sub.choices.items()]
    # evaluate's --run and --num have the torchrun spellings --run-dir and --videos-per-class
    commands.append(("nbp_ext.evaluate", [], [o for o in _options(evaluate_parser()) if o not in ("--run", "--num")]))
    checked = 0
    for module, head, options in commands:
        for option in options:
            args = [*head, option, "1"]
            parsed = torchrun.parse_args(["--nproc-per-node", "2", "-m", module, *args])
            assert parsed.training_script_args == args, (module, option)
            checked += 1
    assert checked > 100
