"""Plain statements computed from the summaries: what held of the paper's claims and what did not.

Two shapes are compared on a metric by their means over seeds; the difference counts as clear only
where the seeds' ranges (min to max) do not overlap, and with a single seed no difference counts as
clear. Every sentence is built from the numbers, whichever way they come out.
"""

from __future__ import annotations

from .shapes import BASELINE

# metric -> (label, unit, higher is better, format)
METRIC_INFO = {
    "psnr": ("PSNR", " dB", True, "{:.2f}"),
    "ssim": ("SSIM", "", True, "{:.3f}"),
    "held_out_loss": ("held-out loss", " nats/token", False, "{:.3f}"),
    "frechet": ("Fréchet distance", "", False, "{:.2f}"),
    "accuracy": ("judge accuracy", "", True, "{:.3f}"),
}


def _by_shape(rows: list[dict]) -> dict[str, dict]:
    return {row["shape"]: row for row in rows}


def compare(a: dict, b: dict, metric: str) -> tuple[float, str]:
    """(a's mean - b's mean, "better" / "worse" / "tied" / "ahead" / "behind") for shape a against b:
    better / worse where the seeds' ranges do not overlap, ahead / behind with one seed, tied else."""
    higher = METRIC_INFO[metric][2]
    sa, sb = a[metric], b[metric]
    diff = sa["mean"] - sb["mean"]
    good = diff > 0 if higher else diff < 0
    if diff == 0:
        return diff, "tied"
    if min(sa["n"], sb["n"]) < 2:
        return diff, "ahead" if good else "behind"
    apart = sa["min"] > sb["max"] or sb["min"] > sa["max"]
    if not apart:
        return diff, "tied"
    return diff, "better" if good else "worse"


def _fmt(metric: str, value: float, signed: bool = False) -> str:
    label, unit, _, form = METRIC_INFO[metric]
    text = form.format(value)
    return ("+" + text if signed and value >= 0 else text) + unit


def versus(a: dict, b: dict, metric: str, name_a: str, name_b: str) -> str:
    """One clause: "PSNR 21.30 dB against 21.10 dB (+0.20 dB; within the seeds' ranges)"."""
    diff, verdict = compare(a, b, metric)
    if diff == 0:
        return f"{METRIC_INFO[metric][0]} {_fmt(metric, a[metric]['mean'])} for both"
    words = {"tied": "within the seeds' ranges", "better": f"{name_a} better, the seeds' ranges apart",
             "worse": f"{name_b} better, the seeds' ranges apart", "ahead": f"{name_a} ahead; one seed, spread unknown",
             "behind": f"{name_b} ahead; one seed, spread unknown"}
    return (f"{METRIC_INFO[metric][0]} {_fmt(metric, a[metric]['mean'])} against {_fmt(metric, b[metric]['mean'])} "
            f"({_fmt(metric, diff, signed=True)}; {words[verdict]})")


def _speed(a: dict, b: dict) -> str:
    steps = b["steps_per_video"]["mean"] / a["steps_per_video"]["mean"]
    seconds = b["seconds_per_video"]["mean"] / a["seconds_per_video"]["mean"]
    return f"{steps:.0f}x fewer steps ({b['steps_per_video']['mean']:.0f} -> {a['steps_per_video']['mean']:.0f}) and {seconds:.1f}x less time per video"


def _frames_where(a: dict, b: dict, name_a: str, name_b: str) -> str:
    """Which predicted frames each of a and b wins on PSNR."""
    frames = a["frames"]
    diffs = [pa["mean"] - pb["mean"] for pa, pb in zip(a["psnr_per_frame"], b["psnr_per_frame"])]
    ahead_a = [f for f, d in zip(frames, diffs) if d > 0]
    ahead_b = [f for f, d in zip(frames, diffs) if d < 0]
    parts = []
    for name, won, sign in ((name_a, ahead_a, 1), (name_b, ahead_b, -1)):
        if won:
            most = max(sign * d for d in diffs)
            parts.append(f"{name} ahead on {len(won)} of {len(frames)} predicted frames ({_frame_list(won)}; by up to "
                         f"{most:.2f} dB)")
    return "; ".join(parts) if parts else "equal on every predicted frame"


def _frame_list(frames: list[int]) -> str:
    """[5, 6, 7, 9] -> "frames 5-7, 9"."""
    spans: list[list[int]] = []
    for f in frames:
        if spans and f == spans[-1][1] + 1:
            spans[-1][1] = f
        else:
            spans.append([f, f])
    return ("frame " if len(frames) == 1 else "frames ") + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def frame_task_findings(rows: list[dict], refs: dict) -> list[str]:
    shapes = _by_shape(rows)
    out = []
    base = shapes.get(BASELINE)
    if base is not None:
        for name, row in shapes.items():
            if name == BASELINE:
                continue
            clauses = "; ".join(versus(row, base, m, name, "NTP") for m in ("psnr", "ssim", "held_out_loss", "frechet")
                                if m in row and m in base)
            out.append(f"**{name}** (block of {row['block_len']}) against NTP at {_speed(row, base)}: {clauses}.")
        if "row" in shapes and "psnr_per_frame" in base:
            out.append(f"Frame by frame (PSNR, row block against NTP): "
                       f"{_frames_where(shapes['row'], base, 'the row block', 'NTP')}.")
    ordered = sorted(rows, key=lambda r: r["block_len"])
    if "psnr" in rows[0]:
        best = max(rows, key=lambda r: r["psnr"]["mean"])
        out.append(f"Highest PSNR: **{best['shape']}** ({best['psnr']['mean']:.2f} dB); by block length: "
                   + ", ".join(f"{r['shape']} {r['psnr']['mean']:.2f}" for r in ordered) + " dB.")
        tok, held = refs.get("tokenizer", {}), refs.get("last_frame_held", {})
        if "psnr" in tok and "psnr" in held:
            above = [r["shape"] for r in rows if r["psnr"]["mean"] > held["psnr"]]
            out.append(f"References: the tokenizer's reconstructions reach {tok['psnr']:.2f} dB (the ceiling), holding the "
                       f"last context frame {held['psnr']:.2f} dB (no motion); "
                       + (f"{len(above)} of {len(rows)} shapes beat the no-motion baseline ({', '.join(above)})."
                          if above else "no shape beats the no-motion baseline."))
    if "frechet" in rows[0]:
        best = min(rows, key=lambda r: r["frechet"]["mean"])
        out.append(f"Lowest Fréchet distance: **{best['shape']}** ({best['frechet']['mean']:.2f}); by block length: "
                   + ", ".join(f"{r['shape']} {r['frechet']['mean']:.2f}" for r in ordered) + ".")
    return out


def class_task_findings(rows: list[dict]) -> list[str]:
    shapes = _by_shape(rows)
    base = shapes.get(BASELINE)
    out = []
    if base is None:
        return out
    for name, row in shapes.items():
        if name != BASELINE:
            clauses = "; ".join(versus(row, base, m, name, "NTP") for m in ("accuracy", "frechet", "held_out_loss")
                                if m in row and m in base)
            out.append(f"**{name}** (block of {row['block_len']}) against NTP at {_speed(row, base)}: {clauses}.")
    return out


def _not_worse(a: dict, b: dict, metric: str) -> bool:
    return compare(a, b, metric)[1] not in ("worse", "behind")


def _one_seed(*rows: dict) -> bool:
    return min(r[m]["n"] for r in rows for m in ("psnr", "frechet", "accuracy") if m in r) < 2


def _claim(text: str, held: bool, notes: list[str], *rows: dict) -> str:
    if _one_seed(*rows):
        notes = [*notes, "one seed: no spread to judge the differences by"]
    return f"{text}: **{'held' if held else 'did not hold'}**" + (f" ({'; '.join(notes)})" if notes else "") + "."


def claims(summary: dict[str, list[dict]]) -> list[str]:
    """The paper's claims, each marked held / did not hold on this study's numbers: a row block not
    behind NTP on PSNR and Fréchet distance (frame task) or on accuracy and Fréchet distance (class
    task); every block larger than a row behind the row block on PSNR or Fréchet distance and ahead
    of it on neither."""
    out = []
    frames = _by_shape(summary.get("frames", []))
    if "row" in frames and BASELINE in frames:
        row, base = frames["row"], frames[BASELINE]
        lost = [METRIC_INFO[m][0] for m in ("psnr", "frechet") if m in row and not _not_worse(row, base, m)]
        out.append(_claim("Frame prediction, a row per step as good as or better than a token per step at equal "
                          "training compute (paper: FVD 25.5 against 29.0)", not lost,
                          ([f"NTP ahead on {', '.join(lost)}"] if lost else []) + _loss_note(row, base), row, base))
    larger = [r for r in summary.get("frames", []) if "row" in frames and r["block_len"] > frames["row"]["block_len"]]
    if larger:
        row = frames["row"]
        notes, held = [], True
        for other in larger:
            behind = [METRIC_INFO[m][0] for m in ("psnr", "frechet")
                      if m in other and compare(other, row, m)[1] in ("worse", "behind")]
            ahead = [METRIC_INFO[m][0] for m in ("psnr", "frechet")
                     if m in other and compare(other, row, m)[1] in ("better", "ahead")]
            agrees = bool(behind) and not ahead
            held = held and agrees
            notes.append(("as in the paper, " if agrees else "unlike the paper, ") + f"{other['shape']} "
                         + (f"behind the row block on {', '.join(behind)}" if behind else "not behind the row block")
                         + (f", ahead on {', '.join(ahead)}" if ahead else ""))
        out.append(_claim("Blocks larger than a row lose quality (paper: FVD 32.1, 43.7 and 67.0 for two rows, four "
                          "rows and a frame against 25.5 for a row)", held, notes, row, *larger))
    klass = _by_shape(summary.get("class", []))
    if "row" in klass and BASELINE in klass:
        row, base = klass["row"], klass[BASELINE]
        lost = [METRIC_INFO[m][0] for m in ("accuracy", "frechet") if m in row and not _not_worse(row, base, m)]
        out.append(_claim("Class-conditional generation, a row per step as good as or better than a token per step",
                          not lost, ([f"NTP ahead on {', '.join(lost)}"] if lost else []) + _loss_note(row, base),
                          row, base))
    return out


def _loss_note(row: dict, base: dict) -> list[str]:
    """The held-out loss where NTP has the lower one: not part of the verdict (the paper's claim is
    about the videos), but a reader should see it beside it."""
    if "held_out_loss" not in row or compare(row, base, "held_out_loss")[1] not in ("worse", "behind"):
        return []
    return [f"NTP has the lower held-out loss, {base['held_out_loss']['mean']:.3f} against "
            f"{row['held_out_loss']['mean']:.3f} nats/token"]


def scale_note(summary: dict[str, list[dict]], refs: dict) -> list[str]:
    """How strong the generators are against the references, so the verdicts are read at their scale:
    the best PSNR against holding the last context frame, and the best class-conditional judge
    accuracy against the real clips'."""
    parts = []
    frames, held = summary.get("frames", []), refs.get("last_frame_held", {})
    if frames and "psnr" in frames[0] and "psnr" in held:
        best = max(frames, key=lambda r: r["psnr"]["mean"])
        verb = "stays below" if best["psnr"]["mean"] < held["psnr"] else "passes"
        parts.append(f"the best frame-prediction PSNR ({best['shape']}, {best['psnr']['mean']:.2f} dB) {verb} holding "
                     f"the last context frame ({held['psnr']:.2f} dB)")
    klass, real = summary.get("class", []), refs.get("real", {})
    if klass and "accuracy" in klass[0] and "accuracy" in real:
        best = max(klass, key=lambda r: r["accuracy"]["mean"])
        parts.append(f"the judge recognises the asked class in at most {best['accuracy']['mean']:.2f} of the "
                     f"class-conditional videos ({best['shape']}) against {real['accuracy']:.2f} of real clips")
    if not parts:
        return []
    return ["Scale: " + "; ".join(parts) + ". The verdicts compare generators of this size and training length with "
            "each other; they are not the paper's scale."]
