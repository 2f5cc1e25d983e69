"""Means and spread over seeds: one summary per (task, shape) from its runs' records.

A number is summarised as {"mean", "std", "min", "max", "n"} (std: the sample standard deviation,
0 for one seed); a per-frame list is summarised frame by frame.
"""

from __future__ import annotations

import math

# Record fields summarised: name in the summary -> path in a run's record.
METRICS = {
    "held_out_loss": ("held_out_loss",),
    "psnr": ("psnr",),
    "ssim": ("ssim",),
    "accuracy": ("judge", "accuracy"),
    "shape_accuracy": ("judge", "shape"),
    "motion_accuracy": ("judge", "motion"),
    "frechet": ("judge", "frechet"),
    "steps_per_video": ("steps_per_video",),
    "seconds_per_video": ("seconds_per_video",),
    "seconds_per_video_batched": ("seconds_per_video_batched",),
}
PER_FRAME = ("psnr_per_frame", "ssim_per_frame")


def spread(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": n}


def _get(record: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def summarise(records: list[dict]) -> dict:
    """Records of one (task, shape), one per seed -> the summary."""
    first = records[0]
    out = {"task": first["task"], "shape": first["shape"], "block": first["block"], "block_len": first["block_len"],
           "seeds": sorted(r["seed"] for r in records)}
    for name, path in METRICS.items():
        values = [v for v in (_get(r, path) for r in records) if v is not None]
        if values:
            out[name] = spread([float(v) for v in values])
    for name in PER_FRAME:
        lists = [r[name] for r in records if name in r]
        if lists:
            out["frames"] = first["frames"]
            out[name] = [spread(list(column)) for column in zip(*lists)]
    return out


def summarise_all(records: list[dict], shape_order: tuple[str, ...]) -> dict[str, list[dict]]:
    """{task: [summary per shape, in ``shape_order``]} over every finished run."""
    out: dict[str, list[dict]] = {}
    for task in ("frames", "class"):
        for shape in shape_order:
            group = [r for r in records if r["task"] == task and r["shape"] == shape]
            if group:
                out.setdefault(task, []).append(summarise(group))
    return out
