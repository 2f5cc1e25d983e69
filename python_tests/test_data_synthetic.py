import numpy as np
import pytest
import torch

from nbp_ext.data import CLASS_NAMES, DataConfig, SyntheticVideoDataset, build_dataset, build_loader


def test_items_have_the_design_shape_range_and_label():
    ds = SyntheticVideoDataset(num_clips=3)
    item = ds[0]
    assert item["video"].shape == (3, 17, 128, 128) and item["video"].dtype == torch.float32
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert 0 <= item["label"] < len(CLASS_NAMES) and len(CLASS_NAMES) >= 10


@pytest.mark.parametrize("frames,size", [(17, 32), (33, 48), (21, 16)])
def test_any_length_and_smaller_sizes(frames, size):
    video = SyntheticVideoDataset(num_clips=1, frames=frames, size=size)[0]["video"]
    assert video.shape == (3, frames, size, size)


def test_deterministic_from_seed_and_different_across_seeds():
    a = SyntheticVideoDataset(num_clips=4, size=32, seed=5)
    b = SyntheticVideoDataset(num_clips=4, size=32, seed=5)
    c = SyntheticVideoDataset(num_clips=4, size=32, seed=6)
    for i in range(4):
        assert torch.equal(a[i]["video"], b[i]["video"])
        assert not torch.equal(a[i]["video"], c[i]["video"])


def test_all_classes_occur_and_the_content_moves():
    ds = SyntheticVideoDataset(num_clips=200, size=32, frames=9)
    labels = [ds.clip(i)[1] for i in range(200)]
    assert set(labels) == set(range(len(CLASS_NAMES)))
    for i in range(12):
        frames, _ = ds.clip(i)
        assert np.abs(np.diff(frames.astype(int), axis=0)).mean() > 0.5  # something moves


def test_the_first_frames_fix_the_rest():
    # Same seed, longer clip: the common frames agree, so the future follows from the past.
    short = SyntheticVideoDataset(num_clips=2, frames=9, size=32)[1]["video"]
    long = SyntheticVideoDataset(num_clips=2, frames=17, size=32)[1]["video"]
    assert torch.equal(long[:, :9], short)


def test_train_and_val_never_share_a_clip():
    train = SyntheticVideoDataset(num_clips=50, size=16, frames=5, split="train")
    val = SyntheticVideoDataset(num_clips=50, size=16, frames=5, split="val")
    seen = {train.clip(i)[0].tobytes() for i in range(50)}
    assert not any(val.clip(i)[0].tobytes() in seen for i in range(50))


def test_loader_batches_and_bad_arguments():
    ds = build_dataset(DataConfig(size=32, train_clips=6), "train")
    batch = next(iter(build_loader(ds, batch_size=3, shuffle=True)))
    assert batch["video"].shape == (3, 3, 17, 32, 32) and batch["label"].shape == (3,)
    assert batch["bad_files"] == []
    with pytest.raises(ValueError, match="split"):
        SyntheticVideoDataset(split="test")
    with pytest.raises(ValueError, match="dataset"):
        DataConfig(dataset="imagenet")
    with pytest.raises(IndexError):
        SyntheticVideoDataset(num_clips=2)[2]


def test_resumable_sampler_skips_exactly():
    from nbp_ext.data import ResumableSampler
    s = ResumableSampler(10, shuffle=True, seed=3)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, skip=4)
    assert list(s) == full[4:]
    s.set_epoch(3)
    assert sorted(s) == list(range(10)) and list(s) != full
    shares = [list(ResumableSampler(10, shuffle=False, rank=r, world_size=3)) for r in range(3)]
    assert sorted(set(sum(shares, []))) == list(range(10)) and all(len(x) == 4 for x in shares)


def test_plain_background_keeps_the_clip_and_flattens_the_background():
    textured = SyntheticVideoDataset(num_clips=6, frames=9, size=48)
    plain = SyntheticVideoDataset(num_clips=6, frames=9, size=48, background="plain")
    for i in range(6):
        (vt, lt), (vp, lp) = textured.clip(i), plain.clip(i)
        assert lt == lp
        colours, counts = np.unique(vp.reshape(-1, 3), axis=0, return_counts=True)
        background = colours[counts.argmax()]
        is_bg = (vp == background).all(-1)  # (T, H, W)
        assert is_bg.mean() > 0.5 and is_bg.all(axis=0).mean() > 0.3  # one colour, the same in every frame
        same = (vp == vt).all(-1)
        assert (same & ~is_bg).sum() > 0  # the object is where and what it was
        assert len(np.unique(vt[is_bg], axis=0)) >= 2  # the textured clip has a pattern there, plain has not
    cfg = DataConfig(frames=9, size=48, train_clips=2, background="plain")
    assert build_dataset(cfg, "train").config.background == "plain"
    with pytest.raises(ValueError, match="background must be one of"):
        SyntheticVideoDataset(num_clips=1, background="stripes")


def test_palette_moves_colours_to_the_fixed_ones_and_keeps_the_shapes():
    from nbp_ext.data.synthetic import BACKGROUND_PALETTE, OBJECT_PALETTE

    free = SyntheticVideoDataset(num_clips=6, frames=5, size=48, background="plain")
    fixed = SyntheticVideoDataset(num_clips=6, frames=5, size=48, background="plain", palette=True)
    object_colours = {tuple(c) for c in np.round(OBJECT_PALETTE * 255).astype(np.uint8)}
    background_colours = {tuple(c) for c in np.round(BACKGROUND_PALETTE * 255).astype(np.uint8)}
    for i in range(6):
        (vf, lf), (vp, lp) = free.clip(i), fixed.clip(i)
        assert lf == lp
        colours, counts = np.unique(vp.reshape(-1, 3), axis=0, return_counts=True)
        order = np.argsort(-counts)
        assert tuple(colours[order[0]]) in background_colours  # the background
        assert tuple(colours[order[1]]) in object_colours  # the object's inside
        # the object covers the same pixels: where each clip differs from its flat background
        mf, mp = ~(vf == vf[0, 0, 0]).all(-1), ~(vp == vp[0, 0, 0]).all(-1)
        if not (mf[:, 0, 0].any() or mp[:, 0, 0].any()):  # the corner is background in every frame
            assert (mf == mp).mean() > 0.99
    assert not SyntheticVideoDataset(num_clips=1).config.palette  # the default set keeps any colour


def _commonest_colour(video: np.ndarray) -> np.ndarray:
    colours, counts = np.unique(video.reshape(-1, 3), axis=0, return_counts=True)
    return colours[counts.argmax()]


def test_object_scale_grows_the_objects_and_keeps_class_and_colours():
    base = SyntheticVideoDataset(num_clips=12, frames=5, size=48, background="plain", palette=True)
    big = SyntheticVideoDataset(num_clips=12, frames=5, size=48, background="plain", palette=True, object_scale=1.5)
    for i in range(12):
        (vb, lb), (vg, lg) = base.clip(i), big.clip(i)
        assert lb == lg
        background = _commonest_colour(vb)
        assert np.array_equal(_commonest_colour(vg), background)
        # the object: the pixels unlike the flat background; its area grows with the square of the scale
        ratio = (~(vg == background).all(-1)).sum() / (~(vb == background).all(-1)).sum()
        assert 1.6 < ratio < 2.9, ratio  # 2.25 up to anti-aliased edges
    cfg = DataConfig(frames=5, size=32, train_clips=2, background="plain", object_scale=1.5)
    assert build_dataset(cfg, "train").config.object_scale == 1.5
    assert SyntheticVideoDataset(num_clips=1).config.object_scale == 1.0
    for bad in (0.1, 2.5):
        with pytest.raises(ValueError, match=f"object_scale must be in \\[0.25, 2\\], got {bad}"):
            SyntheticVideoDataset(num_clips=1, object_scale=bad)
