"""A user's own videos: the fast reader against the reference, the clip cache, and the whole
pipeline on a folder of class folders with broken files in it."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nbp_ext.data import ClipSpec, DataConfig, VideoFileDataset, build_dataset
from nbp_ext.data.builder import default_workers
from nbp_ext.data.clip_cache import CachedClipDataset, build_clip_cache, cache_folder
from nbp_ext.data.video_reader import read_all_frames, read_clip, read_clip_reference
from nbp_ext.train.checkpoint import complete_checkpoints
import procs

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("Jump", "Run", "Wave")


@pytest.fixture(scope="module")
def files(tmp_path_factory, write_test_video) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {"mpeg4": write_test_video(root / "a.avi", 60, 160, 120, 25, "mpeg4"),  # UCF-101's codec and container
            "h264": write_test_video(root / "b.mp4", 45, 96, 64, 30, "libx264"),
            "mjpeg": write_test_video(root / "c.avi", 20, 64, 48, 10, "mjpeg", pix_fmt="yuvj420p")}


@pytest.mark.parametrize("kind", ["mpeg4", "h264", "mjpeg"])
@pytest.mark.parametrize("spec", [ClipSpec(9, 32, 8.0, "random"), ClipSpec(9, 32, None, "center"),
                                  ClipSpec(5, 48, 4.0, "start"), ClipSpec(9, 16, 25.0, "random")])
def test_fast_reader_gives_the_reference_frames(files, kind, spec):
    for seed in range(3):
        fast, start = read_clip(files[kind], spec, np.random.default_rng(seed))
        ref, ref_start = read_clip_reference(files[kind], spec, np.random.default_rng(seed))
        assert start == ref_start and fast.shape == (spec.frames, spec.size, spec.size, 3)
        np.testing.assert_array_equal(fast, ref)  # same frames, same conversion: equal to the byte


def test_clip_cache_resumes_and_serves_the_readers_frames(files, tmp_path):
    spec = ClipSpec(5, 32, 8.0, "start")
    listed = [(str(files["mpeg4"]), 0), (str(files["h264"]), 1), (str(tmp_path / "missing.avi"), 1)]
    folder = cache_folder(tmp_path, "train", listed, spec)
    build_clip_cache(folder, listed[:1], spec, progress=False)
    index = json.loads((folder / "index.json").read_text())
    assert len(index["entries"]) == 1
    index["complete"] = False  # as a build stopped after its first file leaves it
    (folder / "index.json").write_text(json.dumps(index))
    build_clip_cache(folder, listed, spec, progress=False)  # continues with the other two
    data = CachedClipDataset(folder, spec, ["a", "b"])
    assert len(data) == 3 and data[2]["video"] is None and data[2]["error"]
    for i in range(2):
        expected, _ = read_clip(listed[i][0], spec)
        got = ((data[i]["video"].permute(1, 2, 3, 0) + 1) * 127.5).round().numpy().astype(np.uint8)
        np.testing.assert_array_equal(got, expected)
    every = read_all_frames(files["mpeg4"], 32, 8.0)
    assert every.shape[0] == int(59 / 25 * 8 + 0.5 / 25 * 8) + 1  # 2.36 s of frames at 8 fps


def _folder(root: Path, write_test_video, broken: int) -> Path:
    """Three class folders of short MPEG-4 AVIs, ``broken`` bad files among the training ones, and
    UCF-101 split lists (one held-out file per class)."""
    train, test = [], []
    for c in CLASSES:
        for i in range(7):
            write_test_video(root / c / f"v_{c}_g{i:02d}.avi", 30 + 4 * i, 80, 60, 25, "mpeg4")
            (test if i == 0 else train).append(f"{c}/v_{c}_g{i:02d}.avi")
    for i in range(broken):
        c = CLASSES[i % 3]
        path = root / c / f"v_{c}_broken{i}.avi"
        path.write_bytes(b"" if i % 2 else b"not a video at all")
        train.append(f"{c}/{path.name}")
    (root / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (root / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def test_loaders_decode_video_files_in_workers(tmp_path, write_test_video):
    root = _folder(tmp_path / "ucf", write_test_video, broken=0)
    data = build_dataset(DataConfig(dataset="ucf101", root=str(root), frames=9, size=32), "train")
    assert isinstance(data, VideoFileDataset) and default_workers(data) >= 1
    assert default_workers(build_dataset(DataConfig(frames=9, size=32, train_clips=4), "train")) == 0


def test_whole_pipeline_on_a_folder_of_videos(tmp_path, write_test_video):
    root = _folder(tmp_path / "ucf", write_test_video, broken=2)
    proc = procs.run([sys.executable, "-m", "nbp_ext.train", "--dataset", "ucf101", "--data-root", str(root),
                           "--time-limit", "1", "--max-bad-fraction", "0.2"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "ucf101 videos: 20 training and 3 held-out files in 3 classes, 2 unreadable" in out
    assert "18 clips per epoch" in out
    assert "2 of 20 video files were bad and skipped" in out
    assert "score its videos: python -m nbp_ext.evaluate --run " in out
    assert proc.stderr.count("warning: skipping bad video file") >= 2  # each named once when first seen
    runs = tmp_path / "runs"
    tokenizer_run = next(runs.glob("tokenizer-*"))
    nbp_run = next(runs.glob("generator-*"))
    assert complete_checkpoints(tokenizer_run) and complete_checkpoints(nbp_run)
    assert list((nbp_run / "samples").glob("*.mp4"))
    info = json.loads((nbp_run / "generator.json").read_text())
    assert info["class_names"] == list(CLASSES)


def test_too_many_bad_files_is_one_line(tmp_path, write_test_video):
    root = _folder(tmp_path / "ucf", write_test_video, broken=6)
    proc = procs.run([sys.executable, "-m", "nbp_ext.train", "--dataset", "ucf101", "--data-root", str(root)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 6 of 27 video files are bad, more than --max-bad")
    assert not (tmp_path / "runs").exists()  # found before any training
    proc = procs.run([sys.executable, "-m", "nbp_ext.train", "tokenizer", "--dataset", "ucf101", "--data-root",
                           str(root), "--frames", "9", "--size", "32", "--batch-size", "4", "--steps", "20",
                           "--no-progress", "--run-dir", str(tmp_path / "run"), "--num-workers", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "video files are bad, more than --max-bad-fraction" in last
    assert "(max_bad_fraction=0.1)" in last
