"""Score a generator run's videos: ``python -m nbp_ext.evaluate --run runs/nbp-<time>``.

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
The classifier is ours, not I3D: the distances compare runs on the same data set, not FVD
numbers of papers. Results go to ``RUN/eval_samples.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ..cli_errors import run_command
from ..train.distributed import pick_device
from tqdm import tqdm

from ..data.builder import DataConfig
from ..generate import generate
from ..generate.sampling_options import add_sampling_arguments, resolve_sampling
from ..generate.videos import decode
from ..runs import load_run
from .classifier import ClipClassifier
from .frechet import frechet_distance
from .train_classifier import ClassifierTraining, read_clips, split_dataset, to_float, train_classifier

RECORD = "training.json"
RESULT = "eval_samples.json"


def run_data_config(info: dict, tokens: str | None) -> DataConfig:
    """The data set the run's tokens were made from, as recorded in the token folder."""
    folder = Path(tokens or info.get("tokens") or "")
    meta = folder / "train" / "meta.json"
    if not meta.is_file():
        raise FileNotFoundError(f"the run's token folder {folder} has no train/meta.json to say which data set it "
                                "came from: give --tokens")
    data = json.loads(meta.read_text()).get("info", {}).get("data")
    if not data:
        raise ValueError(f"{meta} records no data set (info.data); it was made by an older tokenize")
    return DataConfig(**data)


def classifier_key(data: DataConfig, training: ClassifierTraining) -> str:
    """Names the cache folder: the data set (without its clip counts, which the training sets) and the training."""
    d = {k: v for k, v in asdict(data).items() if k not in ("train_clips", "val_clips")}
    text = json.dumps({"data": d, "training": asdict(training)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_classifier(folder: Path, data: DataConfig, device: torch.device) -> tuple[ClipClassifier, dict]:
    model = ClipClassifier.from_pretrained(folder).to(device).eval()
    record = json.loads((folder / RECORD).read_text()) if (folder / RECORD).is_file() else {}
    c = model.config
    if (c.frames, c.size) != (data.frames, data.size):
        raise ValueError(f"--classifier {folder} was trained on {c.frames}x{c.size}x{c.size} clips, the run's data "
                         f"set has {data.frames}x{data.size}x{data.size}")
    trained_on = record.get("data", {}).get("dataset")
    if trained_on and trained_on != data.dataset:
        raise ValueError(f"--classifier {folder} was trained on the {trained_on} set, the run's is {data.dataset}")
    return model, record


def get_classifier(args, data: DataConfig, device: torch.device) -> tuple[ClipClassifier, dict, Path]:
    if args.classifier:
        folder = Path(args.classifier)
        model, record = load_classifier(folder, data, device)
        return model, record, folder
    training = ClassifierTraining(steps=args.classifier_steps, clips=args.classifier_clips)
    folder = Path(args.runs_root) / f"classifier-{classifier_key(data, training)}"
    if (folder / RECORD).is_file():
        model, record = load_classifier(folder, data, device)
        print(f"classifier: {folder} (held-out accuracy {record['held_out_accuracy']:.3f})")
        return model, record, folder
    model, record = train_classifier(data, training, device, progress=not args.no_progress)
    model.save_pretrained(folder)
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(f"classifier: saved to {folder}")
    return model, record, folder


@torch.no_grad()
def generated_videos(model, tokenizer, cond: torch.Tensor | None, count: int, sampling, seed: int, batch_size: int,
                     progress: bool) -> torch.Tensor:
    """``count`` decoded videos (N, 3, T, H, W) in [-1, 1] on the CPU; video i uses seed + i, whatever the batch."""
    device = next(model.parameters()).device
    out = []
    for i in tqdm(range(0, count, batch_size), desc="generate", unit="batch", disable=not progress):
        n = min(batch_size, count - i)
        if cond is None:
            codes = generate(model, num_videos=n, seed=seed + i, sampling=sampling)
        else:
            codes = generate(model, cond[i : i + n].to(device), seed=seed + i, sampling=sampling)
        out.append(decode(tokenizer, codes).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def reconstructions(model, tokenizer, videos: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real float videos -> (their reconstructions (N, 3, T, H, W), their codes (N, T', H', W'))."""
    device = next(tokenizer.parameters()).device
    recs, codes = [], []
    for i in range(0, videos.shape[0], batch_size):
        c = tokenizer.encode(videos[i : i + batch_size].to(device))
        codes.append(c.cpu())
        recs.append(decode(tokenizer, c).float().cpu())
    return torch.cat(recs), torch.cat(codes)


def part_accuracies(pred: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    """The synthetic set's classes are "shape-motion": the accuracy of the shape and of the motion alone."""
    shapes = [n.split("-")[0] for n in names]
    motions = [n.split("-")[-1] for n in names]
    out = {}
    for key, part in (("shape", shapes), ("motion", motions)):
        ids = torch.tensor([sorted(set(part)).index(p) for p in part])  # (num_classes,) class -> part id
        out[key] = float((ids[pred] == ids[labels]).float().mean())
    return out


def score(classifier: ClipClassifier, videos: torch.Tensor, labels: torch.Tensor | None, reference: torch.Tensor | None,
          names: list[str] | None) -> tuple[dict, torch.Tensor]:
    """One row: accuracy against ``labels`` (with shape and motion where ``names`` is given), and the
    Fréchet distance to the ``reference`` features; returns the row and the videos' features."""
    feats, pred = classifier.predict(videos)
    row: dict = {"videos": int(videos.shape[0])}
    if labels is not None:
        row["accuracy"] = float((pred == labels).float().mean())
        if names:
            row.update(part_accuracies(pred, labels, names))
        row["per_class"] = [float((pred[labels == c] == c).float().mean()) if (labels == c).any() else None
                            for c in range(classifier.config.num_classes)]
    else:
        row["classes_drawn"] = int(pred.unique().numel())
    if reference is not None:
        row["frechet"] = frechet_distance(feats, reference)
    return row, feats


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m nbp_ext.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="generator run folder (runs/nbp-<time>)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the one recorded in the run)")
    ap.add_argument("--tokens", default=None,
                    help="token folder whose meta.json names the data set (default: the one recorded in the run)")
    ap.add_argument("--num", type=int, default=20,
                    help="videos per class: the generated set and each real set hold num x classes videos "
                         "(240 for the synthetic set's 12); frame models predict one video per reference clip")
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
    ap.add_argument("--runs-root", default="runs", help="where classifier folders are kept")
    ap.add_argument("--out", default=None, help=f"result JSON (default: RUN/{RESULT})")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    try:
        for name in ("num", "batch_size", "classifier_steps", "classifier_clips"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        device = pick_device(args.device)
        model, tokenizer, info = load_run(args.run, device, args.tokenizer)
        mcfg = model.config
        sampling = resolve_sampling(args, info, mcfg.condition)
        data = run_data_config(info, args.tokens)
        classifier, record, folder = get_classifier(args, data, device)
        num_classes = classifier.config.num_classes
        if mcfg.condition == "class" and mcfg.num_classes != num_classes:
            raise ValueError(f"the generator has {mcfg.num_classes} classes, the data set {num_classes}")
        names = (info.get("class_names") or record.get("class_names")) if data.dataset == "synthetic" else None
        count = args.num * num_classes
        # the reference and the floor: two disjoint sets of real held-out clips
        real, real_labels = read_clips(split_dataset(data, "val", 2 * count, args.seed))
        if real.shape[0] < 4:
            raise ValueError(f"the data set's validation split has {real.shape[0]} readable clips; at least 4 are needed")
        half = real.shape[0] // 2
        ref, ref_labels = to_float(real[:half]), real_labels[:half]
        floor, floor_labels = to_float(real[half : 2 * half]), real_labels[half : 2 * half]
        rows = {}
        rows["real"], ref_feats = score(classifier, ref, ref_labels, None, names)
        rows["real_floor"], _ = score(classifier, floor, floor_labels, ref_feats, names)
        recon, ref_codes = reconstructions(model, tokenizer, ref, args.batch_size)
        rows["reconstructed"], _ = score(classifier, recon, ref_labels, ref_feats, names)
        progress = not args.no_progress
        if mcfg.condition == "class":
            labels = torch.arange(num_classes).repeat_interleave(args.num)  # (count,) class-major
            videos = generated_videos(model, tokenizer, labels, count, sampling, args.seed, args.batch_size, progress)
        elif mcfg.condition == "frames":
            context, _ = model.split_codes(ref_codes)  # (half, P): each reference clip's first latent frames
            labels = ref_labels
            videos = generated_videos(model, tokenizer, context, half, sampling, args.seed, args.batch_size, progress)
        else:
            labels = None
            videos = generated_videos(model, tokenizer, None, count, sampling, args.seed, args.batch_size, progress)
        rows["generated"], _ = score(classifier, videos, labels, ref_feats, names)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    result = {"run": str(args.run), "condition": mcfg.condition, "sampling": asdict(sampling), "seed": args.seed,
              "classifier": str(folder), "classifier_held_out_accuracy": record.get("held_out_accuracy"),
              "data": asdict(data), "rows": rows}
    out = Path(args.out) if args.out else Path(args.run) / RESULT
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, num_classes, bool(names))
    print(f"results in {out}")
    return result


TITLES = {"real": "real held-out clips (reference)", "real_floor": "other real held-out clips",
          "reconstructed": "tokenizer reconstructions", "generated": "generated videos"}


def print_table(rows: dict, num_classes: int, parts: bool) -> None:
    head = f"{'':34} {'videos':>6} {'accuracy':>9}" + (f" {'shape':>6} {'motion':>6}" if parts else "") + f" {'Fréchet':>8}"
    print(head + f"   (accuracy: chance {1 / num_classes:.3f}; Fréchet distance to the reference, classifier features)")
    for key, row in rows.items():
        acc = f"{row['accuracy']:9.3f}" if "accuracy" in row else f"{row['classes_drawn']:3d} classes"
        line = f"{TITLES[key]:34} {row['videos']:>6} {acc:>9}"
        if parts:
            line += f" {row.get('shape', float('nan')):6.3f} {row.get('motion', float('nan')):6.3f}"
        line += f" {row['frechet']:8.2f}" if "frechet" in row else f" {'-':>8}"
        print(line)


if __name__ == "__main__":
    run_command(main)
