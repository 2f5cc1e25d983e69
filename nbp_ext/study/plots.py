"""The report's figures (matplotlib, Agg): quality and speed against block size, PSNR per predicted frame.

Points are means over seeds; bars and bands span the seeds' min to max. Block sizes are in tokens
per block on a log axis, next-token prediction at 1.
"""

from __future__ import annotations

from pathlib import Path

from .shapes import paper_fvd

DPI = 90
TASK_STYLE = {"frames": dict(marker="o", color="tab:blue", label="frame prediction"),
              "class": dict(marker="s", color="tab:orange", label="class-conditional")}


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("the study's figures need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _points(rows: list[dict], metric: str):
    rows = [r for r in rows if metric in r]
    x = [r["block_len"] for r in rows]
    mean = [r[metric]["mean"] for r in rows]
    low = [r[metric]["mean"] - r[metric]["min"] for r in rows]
    high = [r[metric]["max"] - r[metric]["mean"] for r in rows]
    return x, mean, [low, high]


def _block_axis(ax, rows: list[dict]) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted({r["block_len"] for r in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("tokens per block (1 = next-token prediction)")
    ax.grid(alpha=0.3)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def quality_plot(summary: dict[str, list[dict]], refs: dict, grid: tuple[int, int, int], path: Path) -> Path:
    """PSNR, held-out loss and Fréchet distance against block size, and the paper's FVD of the block of
    the same rows beside them."""
    panels = [("psnr", "PSNR of predicted frames (dB)", ("frames",)),
              ("held_out_loss", "held-out loss (nats/token)", ("frames", "class")),
              ("frechet", "Fréchet distance (judge features)", ("frames", "class"))]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(15, 3.6))
    everything = [r for rows in summary.values() for r in rows]
    for ax, (metric, title, tasks) in zip(axes, panels):
        for task in tasks:
            x, y, err = _points(summary.get(task, []), metric)
            if x:
                ax.errorbar(x, y, yerr=err, capsize=3, **TASK_STYLE[task])
        if metric == "psnr":
            for key, label, style in (("tokenizer", "tokenizer (ceiling)", "--"), ("last_frame_held", "last frame held", ":")):
                if "psnr" in refs.get(key, {}):
                    ax.axhline(refs[key]["psnr"], color="gray", linestyle=style, label=label)
        if metric == "frechet" and "frechet" in refs.get("real_other", {}):
            ax.axhline(refs["real_other"]["frechet"], color="gray", linestyle=":", label="other real clips")
        ax.set_title(title, fontsize=10)
        _block_axis(ax, everything)
        ax.legend(fontsize=7)
    ax = axes[-1]
    paper = [(r["block_len"], paper_fvd(tuple(r["block"]), grid)) for r in summary.get("frames", [])]
    paper = [(x, y) for x, y in paper if y is not None]
    if paper:
        ax.plot(*zip(*paper), marker="o", color="tab:gray", label="paper, K600 (block of the same rows)")
    ax.set_title("paper's FVD (Fig. 7), lower is better", fontsize=10)
    _block_axis(ax, everything)
    ax.legend(fontsize=7)
    return _save(fig, path)


def speed_plot(summary: dict[str, list[dict]], path: Path) -> Path:
    fig, axes = _pyplot().subplots(1, 2, figsize=(9, 3.4))
    everything = [r for rows in summary.values() for r in rows]
    for ax, (metric, title) in zip(axes, (("steps_per_video", "generation steps per video"),
                                          ("seconds_per_video", "seconds per video (one at a time)"))):
        for task, rows in summary.items():
            x, y, err = _points(rows, metric)
            if x:
                ax.errorbar(x, y, yerr=err, capsize=3, **TASK_STYLE[task])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        _block_axis(ax, everything)
        ax.legend(fontsize=7)
    return _save(fig, path)


def per_frame_plot(rows: list[dict], refs: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    rows = [r for r in rows if "psnr_per_frame" in r]
    for i, row in enumerate(sorted(rows, key=lambda r: r["block_len"])):
        frames = row["frames"]
        mean = [s["mean"] for s in row["psnr_per_frame"]]
        color = "black" if row["block_len"] == 1 else f"C{i}"
        ax.plot(frames, mean, marker=".", color=color, label=f"{row['shape']} ({row['block_len']})")
        ax.fill_between(frames, [s["min"] for s in row["psnr_per_frame"]], [s["max"] for s in row["psnr_per_frame"]],
                        color=color, alpha=0.15)
    for key, label, style in (("tokenizer", "tokenizer (ceiling)", "--"), ("last_frame_held", "last frame held", ":")):
        if "psnr_per_frame" in refs.get(key, {}):
            ax.plot(refs[key]["frames"], refs[key]["psnr_per_frame"], color="gray", linestyle=style, label=label)
    ax.set_xlabel("predicted frame (the frames before it are the context)")
    ax.set_ylabel("PSNR against the true frame (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    return _save(fig, path)


def write_plots(summary: dict[str, list[dict]], refs: dict, grid: tuple[int, int, int], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"quality": quality_plot(summary, refs, grid, folder / "quality_vs_block.png"),
           "speed": speed_plot(summary, folder / "speed_vs_block.png")}
    if summary.get("frames"):
        out["per_frame"] = per_frame_plot(summary["frames"], refs, folder / "psnr_per_frame.png")
    return out
