"""Real files: short videos written with PyAV, loaded through the UCF-101 and list loaders."""

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nbp_ext.data import (BadFileTracker, ClipSpec, DataConfig, LoaderOptions, TooManyBadFilesError, VideoError,
                          VideoFileDataset, build_dataset, build_loader, collate_clips, list_files, read_clip,
                          ucf101_files, viewing_scale, write_video)


def make_good_videos(root: Path, write_test_video) -> dict[str, Path]:
    """H.264 MP4 and MPEG-4 AVI, several sizes and rates, one portrait, one grayscale."""
    return {
        "h264": write_test_video(root / "Archery" / "v_Archery_g01_c01.mp4", 40, 64, 48, 30, "libx264"),
        "mpeg4": write_test_video(root / "Archery" / "v_Archery_g02_c01.avi", 30, 80, 48, 25, "mpeg4"),
        "portrait": write_test_video(root / "Bowling" / "v_Bowling_g01_c01.mp4", 30, 40, 72, 24, "libx264"),
        "gray": write_test_video(root / "Bowling" / "v_Bowling_g02_c01.avi", 24, 48, 48, 12, "ffv1", "gray", gray=True),
    }


def make_bad_videos(root: Path, good_mp4: Path, good_avi: Path, write_test_video) -> dict[str, Path]:
    """One file of each bad kind: empty, truncated, not a video, unknown codec, too short."""
    d = root / "Bad"
    d.mkdir(parents=True, exist_ok=True)
    (d / "empty.mp4").write_bytes(b"")
    data = good_mp4.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "text.avi").write_text("this is not a video\n" * 50)
    avi = good_avi.read_bytes()
    assert b"FMP4" in avi
    (d / "codec.avi").write_bytes(avi.replace(b"FMP4", b"QQQ9"))
    write_test_video(d / "short.mp4", 5, 32, 32, 25, "libx264")
    return {p.stem: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory, write_test_video):
    root = tmp_path_factory.mktemp("ucf")
    good = make_good_videos(root, write_test_video)
    bad = make_bad_videos(root, good["h264"], good["mpeg4"], write_test_video)
    return root, good, bad


@pytest.mark.parametrize("kind", ["h264", "mpeg4", "portrait", "gray"])
def test_read_clip_resamples_resizes_and_crops(video_tree, kind):
    _, good, _ = video_tree
    clip, start = read_clip(good[kind], ClipSpec(frames=9, size=32, fps=8, position="center"))
    assert clip.shape == (9, 32, 32, 3) and clip.dtype == np.uint8
    means = clip[..., 0].reshape(9, -1).astype(float).mean(1)  # red grows with time
    assert np.all(np.diff(means) > 0), "frames must be in time order"
    if kind == "gray":
        assert np.array_equal(clip[..., 0], clip[..., 1]) and np.array_equal(clip[..., 1], clip[..., 2])
    assert start >= 0


def test_resampling_picks_frames_at_the_target_rate(video_tree):
    _, good, _ = video_tree
    # 30 fps source, 10 fps target: every third frame, so the brightness step is 3x the per-frame step.
    native, _ = read_clip(good["h264"], ClipSpec(frames=9, size=32, fps=None, position="center"))
    slow, _ = read_clip(good["h264"], ClipSpec(frames=9, size=32, fps=10, position="center"))
    step_native = np.diff(native[..., 0].reshape(9, -1).astype(float).mean(1)).mean()
    step_slow = np.diff(slow[..., 0].reshape(9, -1).astype(float).mean(1)).mean()
    assert 2.5 < step_slow / step_native < 3.5


def test_random_positions_vary_centre_position_is_fixed(video_tree):
    _, good, _ = video_tree
    spec = ClipSpec(frames=5, size=16, fps=None, position="random")
    starts = {read_clip(good["h264"], spec, np.random.default_rng(s))[1] for s in range(10)}
    assert len(starts) > 1
    centre = ClipSpec(frames=5, size=16, fps=None, position="center")
    assert read_clip(good["h264"], centre)[1] == read_clip(good["h264"], centre)[1] == (40 - 5) // 2


def test_no_squashing_of_the_aspect_ratio(tmp_path):
    # a wide video with a centred square: after resize + centre crop it stays a square
    path = tmp_path / "wide.mp4"
    with av.open(str(path), mode="w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 128, 64, "yuv420p"
        img = np.zeros((64, 128, 3), np.uint8)
        img[16:48, 48:80] = 255
        for _ in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    clip, _ = read_clip(path, ClipSpec(frames=1, size=32, position="center"))
    mask = clip[0, ..., 0] > 128
    rows, cols = np.where(mask)
    h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert abs(h - w) <= 1 and 14 <= h <= 18


@pytest.mark.parametrize("name,reason", [("empty", "empty"), ("truncated", "cannot decode"), ("text", "cannot decode"),
                                         ("codec", "unsupported codec"),
                                         ("short", "shorter than one clip")])
def test_each_bad_file_raises_video_error_naming_it(video_tree, name, reason):
    _, _, bad = video_tree
    with pytest.raises(VideoError, match=reason) as info:
        read_clip(bad[name], ClipSpec(frames=9, size=32, fps=8))
    assert str(bad[name]) in str(info.value)


def test_ucf_layout_with_and_without_split_files(video_tree, tmp_path):
    root, _, _ = video_tree
    files, classes = ucf101_files(root, "train")
    test_files, _ = ucf101_files(root, "test")
    assert classes == ["Archery", "Bad", "Bowling"]
    assert not set(files) & set(test_files) and len(files) + len(test_files) == 9
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    (split_dir / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.mp4 1\nBowling/v_Bowling_g01_c01.mp4 3\n")
    (split_dir / "testlist01.txt").write_text("Archery/v_Archery_g02_c01.avi\n")
    files, _ = ucf101_files(root, "train", split_dir=split_dir)
    assert [Path(p).name for p, _ in files] == ["v_Archery_g01_c01.mp4", "v_Bowling_g01_c01.mp4"]
    assert [l for _, l in files] == [0, 2]
    files, _ = ucf101_files(root, "test", split_dir=split_dir)
    assert [Path(p).name for p, _ in files] == ["v_Archery_g02_c01.avi"]
    with pytest.raises(FileNotFoundError, match="root"):
        ucf101_files(root / "missing")


def test_list_file_layouts(video_tree, tmp_path, write_test_video):
    root, good, _ = video_tree
    csv = tmp_path / "train.csv"
    csv.write_text(f"path,label\n{good['h264']},archery\n{good['portrait'].relative_to(root)},bowling\n")
    files, classes = list_files(csv, root=root)
    assert classes == ["archery", "bowling"] and [l for _, l in files] == [0, 1]
    assert all(Path(p).is_file() for p, _ in files)
    # official Kinetics CSV: root/<label>/<youtube_id>_<start>_<end>.mp4
    k = tmp_path / "k600"
    write_test_video(k / "abseiling" / "abc123_000010_000020.mp4", 20, 32, 32, 16, "libx264")
    official = tmp_path / "kinetics.csv"
    official.write_text("label,youtube_id,time_start,time_end,split\nabseiling,abc123,10,20,train\n")
    files, classes = list_files(official, root=k)
    assert Path(files[0][0]).is_file() and classes == ["abseiling"]
    bad = tmp_path / "bad.csv"
    bad.write_text("only_a_path.mp4\n")
    with pytest.raises(ValueError, match="path,label"):
        list_files(bad)


def test_loader_with_workers_skips_and_counts_bad_files(video_tree):
    root, _, bad = video_tree
    cfg = DataConfig(dataset="ucf101", root=str(root), frames=9, size=32, fps=8)
    files = [(str(p), 0) for p in sorted(root.rglob("*.*")) if p.is_file()]
    ds = VideoFileDataset(files, ClipSpec(frames=9, size=32, fps=8, position="random"))
    loader = build_loader(ds, batch_size=3, shuffle=True, options=LoaderOptions(num_workers=2))
    messages = []
    class Sink:
        def write(self, s):
            messages.append(s)
        def flush(self):
            pass
    tracker = BadFileTracker(len(ds), max_bad_fraction=0.9, stream=Sink())
    good = 0
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            tracker.update(batch)
            good += batch["video"].shape[0]
            if batch["video"].shape[0]:
                assert batch["video"].shape[1:] == (3, 9, 32, 32)
                assert batch["video"].min() >= -1 and batch["video"].max() <= 1
        summary = tracker.end_epoch()
        assert summary.startswith("5 bad video files skipped this epoch")
    assert good == 2 * 4
    assert set(tracker.bad) == {str(p) for p in bad.values()}
    text = "".join(messages)
    assert all(str(p) in text for p in bad.values()) and text.count("warning") == 5  # once per file
    assert isinstance(build_dataset(cfg, "train"), VideoFileDataset)


def test_too_many_bad_files_stop_with_a_clear_error(video_tree):
    _, _, bad = video_tree
    ds = VideoFileDataset([(str(p), 0) for p in bad.values()], ClipSpec(frames=9, size=32, fps=8))
    tracker = BadFileTracker(len(ds), max_bad_fraction=0.3, stream=open("/dev/null", "w"))
    with pytest.raises(TooManyBadFilesError, match="max_bad_fraction=0.3"):
        for i in range(len(ds)):
            tracker.update(collate_clips([ds[i]]))


def test_write_video_enlarges_whole_pixels(tmp_path):
    """scale repeats each pixel scale x scale times: a one-pixel red dot becomes a red square."""
    assert [viewing_scale(h) for h in (32, 48, 128, 200)] == [4, 3, 1, 1]
    frames = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    frames[:, 5, 9] = (255, 0, 0)
    path = write_video(tmp_path / "dot.mp4", frames, scale=4)
    with av.open(str(path)) as f:
        got = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(got) == 3 and got[0].shape == (64, 64, 3)
    block = got[1][21:23, 37:39].astype(int)  # inside the 4 x 4 square of the dot (rows 20-23, cols 36-39)
    assert (block[..., 0] > 150).all() and (block[..., 1:] < 100).all(), block
    assert got[1][5, 9].max() < 60  # where the dot was before enlarging: black
    with pytest.raises(ValueError, match="scale"):
        write_video(tmp_path / "bad.mp4", frames, scale=0)
