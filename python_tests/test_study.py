"""``python -m nbp_ext.study``: the quick study end to end at a small size, continuing a study, its
options, and the numbers behind its findings."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbp_ext.study.aggregate import spread, summarise
from nbp_ext.study.findings import _frame_list, claims, compare, scale_note
from nbp_ext.study.shapes import block_shape, paper_fvd
import procs

REPO = Path(__file__).resolve().parents[1]
# The quick study's shapes and tasks, at sizes that train in seconds: the numbers mean nothing, the
# files, records and report do.
SMALL = ["--quick", "--steps", "12", "--tokenizer-steps", "10", "--judge-steps", "10", "--videos", "12",
         "--train-clips", "48", "--timing-videos", "1", "--no-progress"]
FRAME_SHAPES = ("token", "row", "frame")
CLASS_SHAPES = ("token", "row")


def study(out: Path, docs: Path, *extra: str) -> subprocess.CompletedProcess:
    return procs.run([sys.executable, "-m", "nbp_ext.study", *SMALL, "--out", str(out), "--docs", str(docs), *extra],
                          cwd=REPO, capture_output=True, text=True)


@pytest.fixture(scope="module")
def first_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    out, docs = root / "out", root / "docs"
    result = study(out, docs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, docs, result.stdout


def test_help_says_what_how_long_and_where():
    result = procs.run([sys.executable, "-m", "nbp_ext.study", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in ("next-token prediction", "minutes on 2 idle CPU cores", "--quick", "runs/study", "reproduction.md",
                  "reproduction/*.png", "done.json", "continues"):
        assert words in text, words


def test_quick_study_writes_the_report_figures_and_records(first_study):
    out, docs, log = first_study
    report = (docs / "reproduction.md").read_text()
    assert "## What held and what did not" in report
    frame_part = report.split("## Frame prediction")[1].split("## Class-conditional")[0]
    class_part = report.split("## Class-conditional")[1]
    for shape in FRAME_SHAPES:
        assert f"| {shape}{' (NTP)' if shape == 'token' else ''} |" in frame_part, shape
    for shape in CLASS_SHAPES:
        assert f"| {shape}{' (NTP)' if shape == 'token' else ''} |" in class_part, shape
    assert "held" in report.split("## What held and what did not")[1].split("##")[0]
    for name in ("quality_vs_block.png", "speed_vs_block.png", "psnr_per_frame.png"):
        png = docs / "reproduction" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size < 150_000, name
        assert f"](reproduction/{name})" in report

    results = json.loads((out / "results.json").read_text())
    runs = {(r["task"], r["shape"]): r for r in results["runs"]}
    assert set(runs) == {("frames", s) for s in FRAME_SHAPES} | {("class", s) for s in CLASS_SHAPES}
    # 17 frames -> 5 latent frames of 8 x 8; 2 context latent frames (video frames 0-4) in the frame task
    assert [runs["frames", s]["steps_per_video"] for s in FRAME_SHAPES] == [192, 24, 3]
    assert [runs["class", s]["steps_per_video"] for s in CLASS_SHAPES] == [320, 40]
    for key, run in runs.items():
        assert (out / "runs" / f"{key[0]}-{key[1]}-s0" / "done.json").is_file()
        assert run["tokens_seen"] == runs["frames", "token"]["tokens_seen"] == 12 * 16 * 320  # equal training compute
        assert 0 <= run["judge"]["accuracy"] <= 1 and run["judge"]["frechet"] >= 0 and run["held_out_loss"] > 0
    frames = runs["frames", "row"]
    assert frames["frames"] == list(range(5, 17)) and len(frames["psnr_per_frame"]) == 12
    assert all(0 < s <= 1 for s in frames["ssim_per_frame"])
    assert set(results["references"]) >= {"real", "real_other", "tokenizer", "last_frame_held"}
    assert "[run 5/5]" in log and "tokenizer: training" in log


def test_running_again_skips_finished_runs_and_continues_a_cut_one(first_study):
    out, docs, _ = first_study
    runs = sorted((out / "runs").iterdir())
    before = {p.name: (p / "done.json").stat().st_mtime_ns for p in runs}
    checkpoints = {p.name: sorted(c.name for c in (p / "checkpoints").iterdir()) for p in runs}
    again = study(out, docs)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done before, skipped") == 5
    assert "generator training finished" not in again.stdout and "tokenizer training finished" not in again.stdout
    assert "tokenizer: trained before" in again.stdout and "judge: trained before" in again.stdout
    assert {p.name: (p / "done.json").stat().st_mtime_ns for p in runs} == before
    assert {p.name: sorted(c.name for c in (p / "checkpoints").iterdir()) for p in runs} == checkpoints

    # a run cut short after its last checkpoint: no record of training or scores
    cut = out / "runs" / "frames-row-s0"
    (cut / "done.json").unlink()
    (cut / "trained.json").unlink()
    third = study(out, docs)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("done before, skipped") == 4
    assert f"continuing {cut} from step_00000012" in third.stdout
    assert (cut / "done.json").is_file()


def test_report_only_reports_the_finished_runs_and_names_the_missing(first_study, tmp_path):
    """--report-only trains nothing: a second seed not run yet is named in the report, and the finished
    runs are reported."""
    out, _, _ = first_study
    docs = tmp_path / "docs"
    result = study(out, docs, "--seeds", "2", "--report-only")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generator training finished" not in result.stdout
    report = (docs / "reproduction.md").read_text()
    assert "Not run yet: frames-token-s1, frames-row-s1, frames-frame-s1, class-token-s1, class-row-s1" in report
    assert not (out / "runs" / "frames-token-s1").exists()


def test_other_settings_in_the_same_folder_are_refused(first_study):
    out, docs, _ = first_study
    result = procs.run([sys.executable, "-m", "nbp_ext.study", *SMALL, "--out", str(out), "--docs", str(docs),
                             "--steps", "13"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"error: --out {out} holds a study made with --steps 12 (now 13)" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--shapes", "token,diagonal"], "--shapes must be distinct names from token, half-row, row"),
    (["--frames", "10"], "--frames must be 1 + 4k and at least 9, got 10"),
    (["--context-frames", "5"], "--context-frames must be in [1, 5) for 17 frames"),
    (["--videos", "2"], "--videos must be >= 4"),
    (["--model", "huge"], "--model must be one of"),
])
def test_bad_options_name_the_option(tmp_path, args, message):
    result = procs.run([sys.executable, "-m", "nbp_ext.study", "--out", str(tmp_path / "o"), *args],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


def test_shapes_and_the_papers_blocks_of_the_same_rows():
    grid = (5, 8, 8)
    shapes = [block_shape(n, grid) for n in ("token", "half-row", "row", "two-rows", "half-frame", "frame")]
    assert shapes == [(1, 1, 1), (1, 1, 4), (1, 1, 8), (1, 2, 8), (1, 4, 8), (1, 8, 8)]
    assert [paper_fvd(s, grid) for s in shapes] == [29.0, None, 25.5, 32.1, 43.7, 67.0]


def _row(shape, block_len, **metrics):
    return {"task": "frames", "shape": shape, "block_len": block_len, **{k: spread(v) for k, v in metrics.items()}}


def test_comparisons_count_a_difference_only_where_the_seeds_ranges_are_apart():
    assert spread([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "min": 1.0, "max": 3.0, "n": 2}
    ntp = _row("token", 1, psnr=[20.0, 20.4], frechet=[5.0, 6.0])
    close = _row("row", 8, psnr=[20.3, 20.6], frechet=[4.0, 5.5])
    apart = _row("frame", 64, psnr=[18.0, 18.5], frechet=[9.0, 10.0])
    assert compare(close, ntp, "psnr")[1] == "tied"
    diff, verdict = compare(apart, ntp, "psnr")
    assert verdict == "worse" and diff == pytest.approx(-1.95)
    assert compare(apart, ntp, "frechet")[1] == "worse"  # lower is better
    assert compare(ntp, apart, "frechet")[1] == "better"
    one_seed = {k: {**v, "n": 1} if isinstance(v, dict) else v for k, v in apart.items()}
    assert compare(one_seed, ntp, "psnr")[1] == "behind"
    said = claims({"frames": [ntp, close, apart]})
    assert "as good as or better than a token per step" in said[0] and "**held**" in said[0]
    assert said[1].startswith("Blocks larger than a row lose quality")
    assert "**held** (as in the paper, frame behind the row block on PSNR, Fréchet distance)" in said[1]
    said = claims({"frames": [ntp, apart | {"shape": "row", "block_len": 8}, close | {"shape": "frame", "block_len": 64}]})
    assert "**did not hold** (NTP ahead on PSNR, Fréchet distance)" in said[0]
    assert "**did not hold** (unlike the paper, frame not behind the row block, ahead on PSNR, Fréchet distance)" in said[1]
    lossy = _row("row", 8, psnr=[20.3, 20.6], frechet=[4.0, 5.5], held_out_loss=[2.0, 2.1])
    said = claims({"frames": [ntp | {"held_out_loss": spread([1.5, 1.6])}, lossy]})
    assert "**held** (NTP has the lower held-out loss, 1.550 against 2.050 nats/token)" in said[0]
    note = scale_note({"frames": [ntp, close], "class": [ntp | {"accuracy": spread([0.2, 0.3])}]},
                      {"last_frame_held": {"psnr": 21.0}, "real": {"accuracy": 0.9}})
    assert note == ["Scale: the best frame-prediction PSNR (row, 20.45 dB) stays below holding the last context frame "
                    "(21.00 dB); the judge recognises the asked class in at most 0.25 of the class-conditional videos "
                    "(token) against 0.90 of real clips. The verdicts compare generators of this size and training "
                    "length with each other; they are not the paper's scale."]
    assert _frame_list([5, 6, 7, 9, 11, 12]) == "frames 5-7, 9, 11-12"


def test_summaries_over_seeds_frame_by_frame():
    records = [{"task": "frames", "shape": "row", "seed": s, "block": [1, 1, 8], "block_len": 8, "psnr": p,
                "held_out_loss": 1.0 + s, "judge": {"accuracy": 0.5, "frechet": 2.0}, "frames": [5, 6],
                "psnr_per_frame": [p + 1, p - 1], "ssim_per_frame": [0.5, 0.4]} for s, p in ((0, 20.0), (1, 22.0))]
    row = summarise(records)
    assert row["seeds"] == [0, 1] and row["psnr"]["mean"] == 21.0 and row["held_out_loss"]["max"] == 2.0
    assert [f["mean"] for f in row["psnr_per_frame"]] == [22.0, 20.0] and row["accuracy"]["std"] == 0.0
