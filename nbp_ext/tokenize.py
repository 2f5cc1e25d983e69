"""Token extraction: encode a data set once into memory-mapped token files for generator training.

``python -m nbp_ext.tokenize --tokenizer runs/tokenizer-.../tokenizer`` writes ``<out>/<split>/``
(see ``nbp_ext.data.token_file``). Running it again on the same folder continues an interrupted
extraction; a finished split is left as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import torch

from .data import (BadFileTracker, DataConfig, LoaderOptions, TokenFileWriter, VideoFileDataset, add_data_arguments,
                   add_loader_arguments, build_dataset, build_loader)
from .cli_errors import run_command
from .data.clip_cache import CachedClipDataset
from .models import VideoTokenizer
from .models.pretrained import WEIGHTS_FILE, file_sha256
from .runs import TOKENIZER_DIR, TOKENS_DIR, given_or_newest
from .train.distributed import pick_device
from .train.progress import StepProgress

SPLITS = ("train", "val")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer folder (config.json + model.safetensors); default: the newest runs/tokenizer-*/tokenizer")
    p.add_argument("--out", default=None, help="output folder (default: <tokenizer run>/tokens); one subfolder per split")
    p.add_argument("--splits", default="train,val", help="comma-separated splits to extract (train, val)")
    p.add_argument("--batch-size", type=int, default=8)
    add_loader_arguments(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--overwrite", action="store_true", help="start over instead of continuing an existing output")
    p.add_argument("--max-bad-fraction", type=float, default=0.1, help="stop when more than this share of video files is bad")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many items per split (run again to continue)")
    p.add_argument("--runs-root", default="runs", help="where to look for the newest tokenizer run")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    # Data options default to what the tokenizer was trained on (its run's args.json).
    add_data_arguments(p, **{f.name: None for f in fields(DataConfig)})


def _resolve_tokenizer(args: argparse.Namespace) -> Path:
    return given_or_newest(args.tokenizer, args.runs_root, "tokenizer", TOKENIZER_DIR, WEIGHTS_FILE,
                           f"--tokenizer not given and no trained tokenizer under {args.runs_root}/tokenizer-*; "
                           "train one with python -m nbp_ext.train tokenizer")


def _resolve_data(args: argparse.Namespace, tokenizer_dir: Path) -> DataConfig:
    """Data options given on the command line, else the tokenizer run's, else the defaults."""
    base = asdict(DataConfig())
    run_args = tokenizer_dir.parent / "args.json"
    if run_args.is_file():
        base.update(json.loads(run_args.read_text()).get("data", {}))
    given = {"dataset": args.dataset, "root": args.root, "train_list": args.train_list, "val_list": args.val_list,
             "fold": args.fold, "frames": args.frames, "size": args.size, "fps": args.fps,
             "train_clips": args.train_clips, "val_clips": args.val_clips, "seed": args.data_seed,
             "background": args.background, "palette": args.palette, "object_scale": args.object_scale,
             "clip_cache": args.clip_cache}
    if given["dataset"] is not None and given["dataset"] != base["dataset"]:
        base.update({k: None for k in ("root", "train_list", "val_list")})
    return DataConfig(**{**base, **{k: v for k, v in given.items() if v is not None}})


@torch.no_grad()
def extract_split(model: VideoTokenizer, data_cfg: DataConfig, split: str, out: Path, info: dict, batch_size: int,
                  loader_options: LoaderOptions, device: torch.device, max_bad_fraction: float, stop_after: int | None,
                  progress: bool) -> TokenFileWriter:
    dataset = build_dataset(data_cfg, split, position="center")
    names = [p for p, _ in dataset.files] if isinstance(dataset, (VideoFileDataset, CachedClipDataset)) else [str(i) for i in range(len(dataset))]
    latent = model.config.latent_shape(data_cfg.frames, data_cfg.size, data_cfg.size)
    info = {**info, "split": split, "class_names": list(dataset.class_names)}
    writer = TokenFileWriter(out, len(dataset), latent, model.codebook_size, info=info, video_names=names)
    if writer.complete:
        print(f"{split}: {out} is already complete ({writer.meta['rows']} clips)")
        return writer
    loader = build_loader(dataset, batch_size, shuffle=False, options=loader_options)
    loader.sampler.set_epoch(0, skip=writer.done)
    tracker = BadFileTracker(len(dataset), max_bad_fraction) if isinstance(dataset, (VideoFileDataset, CachedClipDataset)) else None
    total_batches = -(-len(dataset) // batch_size)
    bar = StepProgress(total_batches, writer.done // batch_size, desc=f"tokenize {split}", enabled=progress)
    done = writer.done
    for batch in loader:
        if tracker is not None:
            tracker.update(batch)
        video = batch["video"]
        if video.shape[0]:
            codes = model.encode(video.to(device))  # (B, T', H', W')
            writer.write(codes, batch["video_id"], batch["start"], batch["label"])
        done += video.shape[0] + len(batch["bad_files"])
        writer.commit(done, complete=done >= len(dataset))
        bar.step(video.shape[0])
        if stop_after is not None and done >= stop_after and done < len(dataset):
            bar.close()
            print(f"{split}: stopped after {done} of {len(dataset)} items; run again to continue")
            return writer
    bar.close()
    if tracker is not None and tracker.bad:
        print(f"{split}: {tracker.end_epoch()}")
    print(f"{split}: {writer.meta['rows']} clips of {latent} tokens in {out}")
    return writer


def main(args: argparse.Namespace) -> Path:
    tokenizer_dir = _resolve_tokenizer(args)
    data_cfg = _resolve_data(args, tokenizer_dir)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValueError(f"--splits must be a comma-separated subset of {SPLITS}, got {args.splits!r}")
    loader_options = LoaderOptions(args.num_workers, args.worker_start, args.loader_timeout)
    device = pick_device(args.device)
    model = VideoTokenizer.from_pretrained(tokenizer_dir).to(device).eval()
    model.config.check_clip(data_cfg.frames, data_cfg.size)
    out = Path(args.out) if args.out else tokenizer_dir.parent / TOKENS_DIR
    info = {"tokenizer_sha256": file_sha256(tokenizer_dir / WEIGHTS_FILE), "data": asdict(data_cfg)}
    for split in splits:
        if args.overwrite and (out / split).exists():
            shutil.rmtree(out / split)
        extract_split(model, data_cfg, split, out / split, info, args.batch_size, loader_options, device,
                      args.max_bad_fraction, args.stop_after, args.progress)
    print(f"tokens in {out} (tokenizer {tokenizer_dir})")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nbp_ext.tokenize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


if __name__ == "__main__":
    run_command(lambda: main(build_parser().parse_args()))
