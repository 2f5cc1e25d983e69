"""``reproduction.md``: the study's tables, figures and findings, written from its results.

Cells are "mean ± std" over the seeds (the figures show min to max); the findings are computed
(``findings.py``), never written by hand, so the report says whatever the numbers say.
"""

from __future__ import annotations

from pathlib import Path

from .findings import claims, class_task_findings, frame_task_findings, scale_note
from .shapes import paper_fvd

FIGURES = "reproduction"  # <docs>/reproduction/*.png
REPORT = "reproduction.md"


def cell(stat: dict | None, form: str = "{:.2f}") -> str:
    if not stat:
        return "-"
    text = form.format(stat["mean"])
    return text if stat["n"] < 2 else f"{text} ± {form.format(stat['std'])}"


def _shape_cells(row: dict) -> list[str]:
    block = "x".join(str(x) for x in row["block"])
    return [f"{row['shape']}{' (NTP)' if row['block_len'] == 1 else ''}", block, str(row["block_len"]),
            cell(row.get("steps_per_video"), "{:.0f}"), cell(row.get("seconds_per_video"), "{:.3f}")]


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def frame_table(rows: list[dict], grid: list[int]) -> list[str]:
    head = ["shape", "block", "tokens", "steps/video", "s/video alone", "held-out loss", "PSNR dB", "SSIM", "judge accuracy",
            "Fréchet", "paper FVD (same rows)"]
    body = []
    for r in rows:
        fvd = paper_fvd(tuple(r["block"]), tuple(grid))
        body.append(_shape_cells(r) + [cell(r.get("held_out_loss"), "{:.3f}"), cell(r.get("psnr")),
                                       cell(r.get("ssim"), "{:.3f}"), cell(r.get("accuracy"), "{:.3f}"),
                                       cell(r.get("frechet")), "-" if fvd is None else f"{fvd:.1f}"])
    return table(head, body)


def class_table(rows: list[dict]) -> list[str]:
    head = ["shape", "block", "tokens", "steps/video", "s/video alone", "held-out loss", "judge accuracy", "shape acc.",
            "motion acc.", "Fréchet"]
    body = [_shape_cells(r) + [cell(r.get("held_out_loss"), "{:.3f}"), cell(r.get("accuracy"), "{:.3f}"),
                               cell(r.get("shape_accuracy"), "{:.3f}"), cell(r.get("motion_accuracy"), "{:.3f}"),
                               cell(r.get("frechet"))] for r in rows]
    return table(head, body)


def reference_table(refs: dict, frame_task: bool) -> list[str]:
    names = {"real": "the true held-out clips", "real_other": "other real held-out clips",
             "tokenizer": "the true codes decoded (tokenizer)", "last_frame_held": "last context frame held (no motion)"}
    head = ["reference", "judge accuracy", "Fréchet"] + (["PSNR dB", "SSIM"] if frame_task else [])
    body = []
    for key, title in names.items():
        row = refs.get(key)
        if row is None or (key == "last_frame_held" and not frame_task):
            continue
        cells = [title, f"{row['accuracy']:.3f}" if "accuracy" in row else "-",
                 f"{row['frechet']:.2f}" if "frechet" in row else "0 (the reference)"]
        if frame_task:
            cells += [f"{row['psnr']:.2f}" if "psnr" in row else "-", f"{row['ssim']:.3f}" if "ssim" in row else "-"]
        body.append(cells)
    return table(head, body)


def write_report(docs: Path, summary: dict[str, list[dict]], refs: dict, context: dict, figures: dict[str, Path]) -> Path:
    """``context``: machine, date, command, settings and the shared parts' scores (``study.py``)."""
    docs.mkdir(parents=True, exist_ok=True)
    s = context["settings"]
    grid = context["grid"]
    rel = {k: f"{FIGURES}/{Path(p).name}" for k, p in figures.items()}
    lines = [
        "# Reproduction: next-block against next-token prediction at equal training compute", "",
        f"Machine: {context['machine']}. Date: {context['date']}. Command: `{context['command']}` "
        f"({context['minutes']:.0f} minutes of compute in all).", "",
        *([f"Not run yet: {', '.join(context['missing'])} (`{context['continue']}` trains them and writes this "
           "report again); the shapes that miss a seed show that seed's numbers alone.", ""]
          if context.get("missing") else []),
        "The paper's claim has two halves: generating a block of tokens per step is about 11x faster than a "
        "token per step, and at equal training compute the videos are as good or better (FVD 25.5 against "
        "29.0 on K600 for 700M parameters; blocks of 1, 16, 32, 64 and 256 tokens give FVD 29.0, 25.5, 32.1, "
        "43.7 and 67.0). This study measures the second half on the embedded synthetic set: the same generator "
        "is trained with each block shape for the same steps on the same batches (same size, same tokens seen), "
        "and its videos are scored.", "",
        f"Setting: {context['data']}; one tokenizer for every run ({context['tokenizer']}), codes "
        f"{grid[0]}x{grid[1]}x{grid[2]} per clip; generator `{s['model']}` ({context['params']}), {s['steps']} "
        f"steps of {s['batch_size']} clips ({context['tokens_seen']} tokens seen per run), learning rate "
        f"{s['lr']:g}, {s['start']} start block, {context['precision']}; seeds {context['seeds']}. Generation: "
        f"{context['sampling']}, the same seeds for every run. The judge is the classifier of "
        f"`nbp_ext.evaluate` ({context['judge']}); its Fréchet distance is not the FVD of papers, it compares "
        "the runs of this study with each other.", "",
        "## What held and what did not", "",
        *(f"- {c}" for c in claims(summary) + scale_note(summary, refs)), "",
    ]
    if summary.get("frames"):
        lines += [
            "## Frame prediction (the paper's K600 setting)", "",
            f"Each of {context['videos']} held-out clips gives its first {s['context_frames']} latent frames (video "
            f"frames 0-{context['context_pixel_frames'] - 1}) as the prefix; the generator predicts frames "
            f"{context['context_pixel_frames']}-{s['frames'] - 1}, which are scored against the clip's true frames "
            "(the synthetic motion is deterministic, so the context fixes the continuation). Mean ± std over seeds.", "",
            *frame_table(summary["frames"], grid), "",
            *reference_table(refs, True), "",
            *(f"- {f}" for f in frame_task_findings(summary["frames"], refs)), "",
        ]
        if "per_frame" in rel:
            lines += [f"![PSNR per predicted frame]({rel['per_frame']})", ""]
    if summary.get("class"):
        lines += [
            "## Class-conditional generation (the paper's UCF setting)", "",
            f"{context['videos']} videos per run, the classes in turn, judged against the asked class and against "
            "the true held-out clips' features. Mean ± std over seeds.", "",
            *class_table(summary["class"]), "",
            *(f"- {f}" for f in class_task_findings(summary["class"])), "",
        ]
    lines += [f"![quality against block size]({rel['quality']})", "", f"![speed against block size]({rel['speed']})", "",
              "## Reproducing", "",
              f"`{context['command']}` writes the runs to `{context['out']}` (one folder per run, kept and skipped when "
              "run again; each holds the generator, its training log and a grid of its videos in `samples/`), every "
              "number in `results.json` there, and this page with its figures; `--help` lists the options.", ""]
    path = docs / REPORT
    path.write_text("\n".join(lines))
    return path
