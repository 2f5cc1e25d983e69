"""One place that turns data options (command line or config) into datasets and loaders."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields

import torch
from torch.utils.data import DataLoader, Dataset

from .bad_files import collate_clips
from .clip_cache import CachedClipDataset, build_clip_cache, cache_folder
from .folder import VideoFileDataset, list_files, ucf101_files
from .loader import LoaderOptions, make_loader
from .training_order import ResumableSampler
from .synthetic import BACKGROUNDS, SyntheticVideoDataset
from .video_reader import ClipSpec

DATASETS = ("synthetic", "ucf101", "k600")
DEFAULT_FPS = {"ucf101": 8.0, "k600": 16.0}


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str | None = None  # ucf101: folder of class folders; k600: folder the list's paths are relative to
    train_list: str | None = None  # k600: CSV of path,label for training
    val_list: str | None = None  # k600: CSV of path,label for evaluation
    fold: int = 1  # ucf101: which trainlist0N / testlist0N
    frames: int = 17
    size: int = 128
    fps: float | None = None  # None: 8 for ucf101, 16 for k600
    train_clips: int = 2000  # synthetic only
    val_clips: int = 64  # synthetic only
    seed: int = 0
    background: str = "textured"  # synthetic only: textured or plain
    palette: bool = False  # synthetic only: object and background colours from a few fixed ones
    object_scale: float = 1.0  # synthetic only: object size relative to the default set's
    clip_cache: str | None = None  # ucf101 / k600: decode every file once into this folder (clip_cache.py)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.dataset == "ucf101" and not self.root:
            raise ValueError("dataset 'ucf101' needs root (--data-root), the folder with one folder per class")
        if self.dataset == "k600" and not (self.train_list or self.val_list):
            raise ValueError("dataset 'k600' needs train_list and/or val_list (--train-list/--val-list), CSVs of path,label")


def build_dataset(cfg: DataConfig, split: str, position: str | None = None) -> Dataset:
    """``split`` is ``"train"`` or ``"val"``; clips sit at random positions for training and in the
    centre for validation, unless ``position`` (``"random"`` or ``"center"``) says otherwise."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if cfg.dataset == "synthetic":
        n = cfg.train_clips if split == "train" else cfg.val_clips
        return SyntheticVideoDataset(num_clips=n, frames=cfg.frames, size=cfg.size, split=split, seed=cfg.seed,
                                     background=cfg.background, palette=cfg.palette, object_scale=cfg.object_scale)
    spec = ClipSpec(frames=cfg.frames, size=cfg.size, fps=cfg.fps or DEFAULT_FPS[cfg.dataset],
                    position=position or ("random" if split == "train" else "center"))
    if cfg.dataset == "ucf101":
        files, classes = ucf101_files(cfg.root, "train" if split == "train" else "test", fold=cfg.fold)
        if not files:
            name = f"{'train' if split == 'train' else 'test'}list{cfg.fold:02d}.txt"
            raise ValueError(f"--data-root {cfg.root} has no {split} videos: without {name} a tenth of the files, "
                             f"chosen by a hash of their paths, is held out; add videos or write {name} (one path "
                             "relative to the root per line)")
    else:
        list_path = cfg.train_list if split == "train" else cfg.val_list
        if not list_path:
            raise ValueError(f"dataset 'k600' split {split!r} needs --{'train' if split == 'train' else 'val'}-list")
        files, classes = list_files(list_path, cfg.root)
    if cfg.clip_cache:
        folder = build_clip_cache(cache_folder(cfg.clip_cache, split, files, spec), files, spec)
        return CachedClipDataset(folder, spec, classes, seed=cfg.seed)
    return VideoFileDataset(files, spec, classes, seed=cfg.seed)


def default_workers(dataset: Dataset) -> int:
    """Loader worker processes when the user gives none: video files are decoded in workers (all
    cores but one, at most 8); clips rendered or read from memory-mapped files stay in-process."""
    if isinstance(dataset, (VideoFileDataset, CachedClipDataset)):
        return max(1, min(8, (os.cpu_count() or 2) - 1))
    return 0


def worker_count(dataset: Dataset, options: LoaderOptions) -> int:
    return default_workers(dataset) if options.num_workers is None else options.num_workers


def build_loader(dataset: Dataset, batch_size: int, shuffle: bool, options: LoaderOptions | None = None,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Loader over a ``ResumableSampler`` (``loader.sampler.set_epoch(epoch, skip)``); bad files are dropped.
    ``options`` None: no worker processes; ``options.num_workers`` None: ``default_workers``."""
    options = options or LoaderOptions(num_workers=0)
    num_workers = worker_count(dataset, options)
    sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
    return make_loader(dataset, batch_size, sampler, options, num_workers, collate_fn=collate_clips,
                       drop_last=drop_last, persistent_workers=True, pin_memory=torch.cuda.is_available())


def add_data_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """Add ``--dataset``, ``--data-root`` ... ; ``defaults`` override DataConfig's field defaults."""
    d = {**{f.name: f.default for f in fields(DataConfig)}, **defaults}
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default=d["dataset"], help="synthetic: the embedded set (default, no files)")
    g.add_argument("--data-root", dest="root", default=d["root"], help="ucf101: folder of class folders (+ optional trainlist0N.txt); k600: base of the list's relative paths")
    g.add_argument("--train-list", default=d["train_list"], help="k600: CSV of path,label (or the official Kinetics CSV)")
    g.add_argument("--val-list", default=d["val_list"], help="k600: CSV of path,label for evaluation")
    g.add_argument("--fold", type=int, default=d["fold"], help="ucf101 split fold (trainlist0N.txt)")
    g.add_argument("--frames", type=int, default=d["frames"], help="frames per clip (1 + 4k)")
    g.add_argument("--size", type=int, default=d["size"], help="clip height and width (a multiple of the tokenizer's spatial factor: 8 for the CNN, 4 for the patch tokenizer)")
    g.add_argument("--fps", type=float, default=d["fps"], help="resample to this frame rate (default 8 for ucf101, 16 for k600)")
    g.add_argument("--clip-cache", default=d["clip_cache"], metavar="DIR",
                   help="ucf101/k600: decode every video once into DIR (memory-mapped, resumable) and train on it: "
                        "no decoding in later epochs, for disk of about frames x size^2 x 3 bytes per file")
    g.add_argument("--train-clips", type=int, default=d["train_clips"], help="synthetic: clips in the training split")
    g.add_argument("--val-clips", type=int, default=d["val_clips"], help="synthetic: held-out clips")
    g.add_argument("--data-seed", dest="data_seed", type=int, default=d["seed"], help="seed of the synthetic set and clip positions")
    g.add_argument("--background", choices=BACKGROUNDS, default=d["background"],
                   help="synthetic: textured backgrounds (default) or plain ones of the same colours")
    g.add_argument("--palette", action=argparse.BooleanOptionalAction, default=d["palette"],
                   help="synthetic: object and background colours from six fixed ones each (default: any colour)")
    g.add_argument("--object-scale", type=float, default=d["object_scale"],
                   help="synthetic: object size relative to the default set's (0.25 to 2; same positions, motions "
                        "and colours for the same seed)")


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    return DataConfig(dataset=args.dataset, root=args.root, train_list=args.train_list, val_list=args.val_list,
                      fold=args.fold, frames=args.frames, size=args.size, fps=args.fps, train_clips=args.train_clips,
                      val_clips=args.val_clips, seed=args.data_seed, background=args.background,
                      palette=args.palette, object_scale=args.object_scale, clip_cache=args.clip_cache)
