"""The study from start to end: shared tokenizer and judge, every generator run, results, report.

Each step is skipped where its record says it was done (``records.py``), so running the study again
continues it: finished runs are read back, a run cut short continues from its checkpoint, and the
report is written again from every finished run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from ..data import TokenDataset
from ..models import VideoTokenizer
from ..records import read_record, write_record
from ..train.distributed import pick_device
from .aggregate import summarise_all
from .config import StudyConfig
from .context import report_context
from .held_out import held_out, references
from .judge import shared_judge
from .plan import study_runs
from .plots import write_plots
from .progress import StudyProgress, minutes
from .records import check_settings
from .report import FIGURES, write_report
from .score_run import score_run
from .shapes import SHAPE_NAMES
from .stage_run import train_parser
from .tokens import shared_tokens
from .train_run import train_run

RUNS = "runs"  # <out>/runs/<task>-<shape>-s<seed>/: the generator stage's run folder
DONE = "done.json"  # <out>/runs/<name>/done.json: the run's scores; its presence marks the run done
RESULTS = "results.json"  # <out>/results.json: every run's record, the summaries and the references


def _say(line: str) -> None:
    print(line, flush=True)


def _run_summary(record: dict) -> str:
    parts = [f"held-out loss {record['held_out_loss']:.3f}"]
    if "psnr" in record:
        parts.append(f"PSNR {record['psnr']:.2f} dB")
    judge = record.get("judge", {})
    if "accuracy" in judge:
        parts.append(f"judge accuracy {judge['accuracy']:.3f}")
    if "frechet" in judge:
        parts.append(f"Fréchet {judge['frechet']:.2f}")
    parts.append(f"{record['steps_per_video']} steps, {record['seconds_per_video']:.3f} s per video")
    return ", ".join(parts)


def run_study(cfg: StudyConfig, command: str, log: Callable[[str], None] = _say, report_only: bool = False) -> Path:
    """Run (or continue) the study; returns the report's path. ``report_only``: train nothing, write the
    report from the runs finished so far (it names the ones still missing)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, cfg.settings())
    device = pick_device(cfg.device)
    runs = study_runs(cfg)
    log(f"study: {len(runs)} generator runs ({len(cfg.shapes)} shapes for frame prediction, {len(cfg.class_shapes)} "
        f"for class-conditional generation, {cfg.seeds} seed(s) each), {cfg.steps} steps of {cfg.batch_size} clips each; "
        f"runs in {out}, report in {Path(cfg.docs)}")
    parser = train_parser()
    shared = shared_tokens(cfg, parser, log)
    judge, judge_record = shared_judge(cfg, shared.data, device, log)
    tokenizer = VideoTokenizer.from_pretrained(shared.tokenizer).to(device).eval()
    grid = tuple(TokenDataset(shared.tokens / "train").latent_shape)
    held = held_out(shared, cfg.videos)
    refs = references(out, held, tokenizer, judge, cfg.context_pixel_frames)
    reference_features = refs.pop("_reference_features")

    progress = StudyProgress(len(runs), log)
    records, missing = [], []
    for i, spec in enumerate(runs):
        run_dir = out / RUNS / spec.name
        done = read_record(run_dir / DONE)
        if done is not None:
            progress.skipped(i, spec.name, done.get("seconds"))
            records.append(done)
            continue
        if report_only:
            missing.append(spec.name)
            continue
        progress.begin(i, spec.name, f"{spec.task} task, {spec.shape} blocks, seed {spec.seed}")
        trained = train_run(cfg, spec, shared, grid, run_dir, parser, log)
        start = time.monotonic()
        record = score_run(cfg, spec, run_dir, shared.tokens, held, judge, reference_features, device)
        record["train_seconds"] = trained["seconds"]
        record["score_seconds"] = round(time.monotonic() - start, 1)
        record["seconds"] = record["train_seconds"] + record["score_seconds"]
        write_record(run_dir / DONE, record)
        progress.finished(i, spec.name, record["seconds"], _run_summary(record))
        records.append(record)

    summary = summarise_all(records, SHAPE_NAMES)
    seconds = (shared.scores.get("seconds", 0) + shared.scores.get("tokenize_seconds", 0)
               + judge_record.get("seconds", 0) + sum(r["seconds"] for r in records))
    if not records:
        raise ValueError(f"--report-only: no finished run in {out / RUNS} to report")
    if missing:
        log(f"study: reporting {len(records)} of {len(runs)} runs; not run yet: {', '.join(missing)}")
    context = report_context(cfg, command, shared, judge_record, records, grid, device, seconds)
    context["missing"] = missing
    context["continue"] = command
    write_record(out / RESULTS, {"context": context, "references": refs, "summary": summary, "runs": records})
    docs = Path(cfg.docs)
    figures = write_plots(summary, refs, grid, docs / FIGURES)
    report = write_report(docs, summary, refs, context, figures)
    log(f"study finished ({minutes(seconds)} of compute in all): report {report}, figures in {docs / FIGURES}, "
        f"numbers in {out / RESULTS}")
    return report


def load_results(out: str | Path) -> dict:
    """A study's results.json (for tests and later analysis)."""
    return json.loads((Path(out) / RESULTS).read_text())
