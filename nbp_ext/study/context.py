"""The report's header facts: machine, date, command line, and the study's setting in words."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..train.precision import resolve_precision
from .config import StudyConfig


def machine() -> str:
    """CPU model (or GPU), cores, torch version, threads, and the load (other work slows the timings)."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    load = f", load average {os.getloadavg()[1]:.1f} over the last 5 minutes" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads{load}"


def sampling_words(records: list[dict]) -> str:
    """How the videos were drawn, from the runs' recorded sampling."""
    by_task = {r["task"]: r.get("sampling", {}) for r in records}
    any_run = next(iter(by_task.values()), {})
    words = (f"temperature {any_run.get('temperature', 1.0):g}, top-k {any_run.get('top_k')}, "
             f"top-p {any_run.get('top_p', 1.0):g}")
    if "class" in by_task:
        words += f", guidance scale {by_task['class'].get('guidance_scale', 1.0):g} for the class-conditional runs"
    return words


def report_context(cfg: StudyConfig, command: str, shared, judge_record: dict, records: list[dict], grid,
                   device: torch.device, seconds: float) -> dict:
    data = shared.data
    scores = shared.scores
    first = records[0] if records else {}
    return {
        "machine": machine(), "date": time.strftime("%Y-%m-%d"), "command": command, "minutes": seconds / 60,
        "settings": cfg.settings(), "grid": list(grid), "out": cfg.out, "videos": cfg.videos,
        "context_pixel_frames": cfg.context_pixel_frames, "seeds": ", ".join(str(s) for s in range(cfg.seeds)),
        "data": (f"{data.frames} frames of {data.size}x{data.size} from the embedded synthetic set "
                 f"({data.background} backgrounds{', six fixed colours' if data.palette else ''}, objects "
                 f"{data.object_scale:g}x; {data.train_clips} training clips, {cfg.videos} held-out clips scored)"),
        "tokenizer": (f"the patch tokenizer, {cfg.tokenizer_steps} steps, held-out PSNR {scores.get('psnr', float('nan')):.2f} dB, "
                      f"SSIM {scores.get('ssim', float('nan')):.3f}"),
        "params": f"{first.get('params', 0) / 1e6:.2f}M parameters" if first else "-",
        "tokens_seen": f"{first.get('tokens_seen', 0):,}" if first else "-",
        "precision": f"{resolve_precision('auto', device)} training",
        "sampling": sampling_words(records),
        "judge": (f"{judge_record.get('steps')} steps on {judge_record.get('train_clips')} real clips, "
                  f"{judge_record.get('held_out_accuracy', float('nan')):.3f} held-out accuracy on real clips"),
        "data_config": asdict(data),
    }
