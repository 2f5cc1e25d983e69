"""Bad input to ``python export/to_trt.py`` and to ``./run_engine``, from two tables: each case ends with
one line naming the option or file and what was expected, the documented exit code, and no traceback.

to_trt.py (nbp_ext/cli_errors.py): 1 an error the command names, 2 a command line argparse rejects
(its usage line, then one ``error:`` line). The cases run in-process through ``to_trt.main``, which
wraps the export in the same ``run_command`` the package's commands use.
run_engine (its --help, csrc/runtime/status.h): 2 bad option, 3 bad manifest, 4 bad engine or ONNX
file, 7 cannot write the output. The cases run the program on a tiny export made once here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from export import to_trt
from export.manifest import sha256_file
from run_engine_helpers import NUM_CLASSES, ensure_built, exported, make_run, run_engine

USAGE, MANIFEST, ENGINE, OUTPUT = 2, 3, 4, 7  # run_engine's exit codes


# ---- files the cases use -----------------------------------------------------------------------

def _damaged_run(root: Path, run: Path, name: str, damage) -> Path:
    """A copy of the run with ``damage(generator folder)`` applied."""
    copy = root / name
    shutil.copytree(run, copy)
    damage(copy / "generator")
    return copy


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _drop_weights_hash(gen: Path) -> None:
    _edit_json(gen / "config.json", lambda c: c.pop("weights_sha256", None))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny class-conditional run and damaged copies of its generator, run info and tokenizer."""
    root = tmp_path_factory.mktemp("bad-export")
    run, _, _ = make_run(root / "runs")
    tok = root / "runs" / "tokenizer-20260101-000000" / "tokenizer"
    f = {"root": root, "run": run, "empty": root / "empty", "file": root / "file.txt", "missing": root / "missing"}
    f["empty"].mkdir()
    f["file"].write_text("not a folder")

    def weights(fn):
        return lambda gen: fn(gen / "model.safetensors")

    f["zero_weights"] = _damaged_run(root, run, "zero-weights", weights(lambda p: p.write_bytes(b"")))
    f["truncated_hashed"] = _damaged_run(root, run, "truncated-hashed", weights(_truncate))
    f["truncated"] = _damaged_run(root, run, "truncated", lambda g: (_truncate(g / "model.safetensors"), _drop_weights_hash(g)))
    f["random"] = _damaged_run(root, run, "random", lambda g: ((g / "model.safetensors").write_bytes(bytes(range(256)) * 64),
                                                              _drop_weights_hash(g)))
    f["config_text"] = _damaged_run(root, run, "config-text", lambda g: (g / "config.json").write_text("{'n_layer': 2"))
    f["config_type"] = _damaged_run(root, run, "config-type",
                                    lambda g: _edit_json(g / "config.json", lambda c: c["config"].__setitem__("n_layer", "2")))
    f["config_value"] = _damaged_run(root, run, "config-value",
                                     lambda g: _edit_json(g / "config.json", lambda c: c["config"].__setitem__("n_layer", 0)))
    f["config_kind"] = _damaged_run(root, run, "config-kind",
                                    lambda g: _edit_json(g / "config.json", lambda c: c.__setitem__("model_type", "gpt")))
    f["info_text"] = _damaged_run(root, run, "info-text", lambda g: (g.parent / "generator.json").write_text("{tokenizer"))
    for name, sampling in (("info_nan", {"temperature": float("nan")}), ("info_top_k", {"top_k": "many"}),
                           ("info_top_p", {"top_p": 7}), ("info_list", [1, 2])):
        f[name] = _damaged_run(root, run, name.replace("_", "-"), lambda g, s=sampling: _edit_json(
            g.parent / "generator.json", lambda i: i.__setitem__("sampling", s)))
    f["bad_tok"] = root / "bad-tokenizer"
    shutil.copytree(tok, f["bad_tok"])
    (f["bad_tok"] / "model.safetensors").write_bytes(b"")
    return f


def _to_trt(*argv):
    """argv maker: the files' paths filled in, --runs and --output pointing into the fixture's folder."""
    def make(f):
        args = [str(a(f)) if callable(a) else str(a) for a in argv]
        defaults = ["--runs", str(f["root"] / "runs"), "--output", str(f["root"] / "out"), "--no-engines"]
        return defaults + args
    return make


def _ckpt(key):
    return lambda f: f[key]


# (name, argv maker, exit code, text the message must hold)
TO_TRT_CASES = [
    ("guidance scale nan", _to_trt("--guidance-scale", "nan"), 1, "--guidance-scale must be a finite number, got nan"),
    ("guidance scale inf", _to_trt("--guidance-scale", "inf"), 1, "--guidance-scale must be a finite number"),
    ("guidance scale -inf", _to_trt("--guidance-scale=-inf"), 1, "--guidance-scale must be a finite number"),
    ("guidance scale not a number", _to_trt("--guidance-scale", "lots"), 2, "--guidance-scale: invalid float value"),
    ("temperature nan", _to_trt("--temperature", "NaN"), 1, "--temperature must be a finite number"),
    ("temperature negative", _to_trt("--temperature", "-1"), 1, "--temperature must be in [0.0, inf], got -1.0"),
    ("top-p zero", _to_trt("--top-p", "0"), 1, "--top-p must be in (0.0, 1.0], got 0.0"),
    ("top-p above one", _to_trt("--top-p", "1.5"), 1, "--top-p must be in (0.0, 1.0]"),
    ("top-p nan", _to_trt("--top-p", "nan"), 1, "--top-p must be a finite number"),
    ("top-k negative", _to_trt("--top-k", "-1"), 1, "--top-k must be >= 0"),
    ("fps negative", _to_trt("--fps", "-3"), 1, "--fps must be in [1, 1000], got -3"),
    ("fps zero", _to_trt("--fps", "0"), 1, "--fps must be in [1, 1000], got 0"),
    ("fps huge", _to_trt("--fps", "100000"), 1, "--fps must be in [1, 1000]"),
    ("fps not an integer", _to_trt("--fps", "2.5"), 2, "--fps: invalid int value: '2.5'"),
    ("max batch zero", _to_trt("--max-batch", "0"), 1, "--max-batch must be in [1, 256], got 0"),
    ("max batch huge", _to_trt("--max-batch", "100000000000000"), 1, "--max-batch must be in [1, 256]"),
    ("max batch not a number", _to_trt("--max-batch", "x"), 2, "--max-batch: invalid int value"),
    ("unknown precision", _to_trt("--precision", "fp8"), 2, "invalid choice: 'fp8'"),
    ("unknown option", _to_trt("--frobnicate"), 2, "unrecognized arguments: --frobnicate"),
    ("checkpoint missing", _to_trt("--checkpoint", _ckpt("missing")), 1, "does not exist"),
    ("checkpoint a file", _to_trt("--checkpoint", _ckpt("file")), 1, "is neither a generator run"),
    ("checkpoint an empty folder", _to_trt("--checkpoint", _ckpt("empty")), 1, "is neither a generator run"),
    ("no run under --runs", lambda f: ["--runs", str(f["empty"]), "--output", str(f["root"] / "o")], 1, "no generator run"),
    ("zero-byte weights", _to_trt("--checkpoint", _ckpt("zero_weights")), 1, "does not match the SHA-256 recorded in"),
    ("truncated weights with a hash", _to_trt("--checkpoint", _ckpt("truncated_hashed")), 1, "model.safetensors does not match"),
    ("truncated weights", _to_trt("--checkpoint", _ckpt("truncated")), 1, "model.safetensors: not a readable safetensors file"),
    ("random weights", _to_trt("--checkpoint", _ckpt("random")), 1, "model.safetensors: not a readable safetensors file"),
    ("config not JSON", _to_trt("--checkpoint", _ckpt("config_text")), 1, "config.json: not valid JSON"),
    ("config field of a wrong type", _to_trt("--checkpoint", _ckpt("config_type")), 1, "config.json: field 'n_layer' must be"),
    ("config field of a wrong value", _to_trt("--checkpoint", _ckpt("config_value")), 1, "n_layer must be >= 1, got 0"),
    ("config of another model", _to_trt("--checkpoint", _ckpt("config_kind")), 1, "describes model_type 'gpt'"),
    ("run info not JSON", _to_trt("--checkpoint", _ckpt("info_text")), 1, "generator.json: not valid JSON"),
    ("run info not an object", _to_trt("--checkpoint", _ckpt("info_list")), 1, "generator.json: expected a JSON object"),
    ("recorded temperature nan", _to_trt("--checkpoint", _ckpt("info_nan")), 1, "sampling temperature must be a finite number"),
    ("recorded top-k a word", _to_trt("--checkpoint", _ckpt("info_top_k")), 1, "sampling top_k must be an integer, got 'many'"),
    ("recorded top-p above one", _to_trt("--checkpoint", _ckpt("info_top_p")), 1, "sampling top_p must be in (0.0, 1.0]"),
    ("tokenizer without config", _to_trt("--tokenizer", _ckpt("empty")), 1, "empty holds no config.json"),
    ("tokenizer with zero-byte weights", _to_trt("--tokenizer", _ckpt("bad_tok")), 1, "bad-tokenizer/model.safetensors"),
    ("output is a file", lambda f: ["--runs", str(f["root"] / "runs"), "--output", str(f["file"])], 1,
     "file.txt is a file, expected a folder"),
]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


@pytest.mark.parametrize("name,argv,code,text", TO_TRT_CASES, ids=[c[0] for c in TO_TRT_CASES])
def test_to_trt_bad_input_is_one_line(runs, capsys, name, argv, code, text):
    assert to_trt.main(argv(runs)) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = _error_lines(err)
    assert len(lines) == 1, err
    assert text in lines[0], lines[0]
    if code == 1:
        assert err.strip() == lines[0] and lines[0].startswith("error: "), err
    else:  # argparse: its usage line, then the error line
        assert err.startswith("usage: python export/to_trt.py"), err


def test_manifest_writer_refuses_non_finite_numbers(tmp_path):
    from export.manifest import write_manifest

    with pytest.raises(ValueError, match="manifest.json: a value of the manifest is not a finite number"):
        write_manifest(tmp_path, {"graphs": {}, "sampling": {"guidance_scale": float("nan")}})
    assert not (tmp_path / "manifest.json").exists()


# ---- run_engine ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, Path]:
    """A tiny export (class-conditional, guidance, batch 2) and damaged copies of it."""
    reason = ensure_built()
    if reason:
        pytest.fail(reason)
    root = tmp_path_factory.mktemp("bad-engines")
    good = exported(tmp_path_factory.getbasetemp())[0]
    f = {"good": good, "root": root, "file": root / "file.txt"}
    f["file"].write_text("not a folder")

    def damaged(name, damage):
        copy = root / name
        shutil.copytree(good, copy)
        damage(copy)
        f[name] = copy

    def manifest(edit):
        return lambda d: _edit_json(d / "manifest.json", edit)

    damaged("not_json", lambda d: (d / "manifest.json").write_text('{"format": "nbp-engines",'))
    damaged("empty_manifest", lambda d: (d / "manifest.json").write_bytes(b""))
    damaged("nan", lambda d: (d / "manifest.json").write_text(
        (d / "manifest.json").read_text().replace('"guidance_scale": 2.0', '"guidance_scale": NaN')))
    damaged("no_layers", manifest(lambda m: m["model"].pop("num_layers")))
    damaged("fps_text", manifest(lambda m: m["video"].__setitem__("fps", "8")))
    damaged("temperature", manifest(lambda m: m["sampling"].__setitem__("temperature", -1)))
    damaged("top_p", manifest(lambda m: m["sampling"].__setitem__("top_p", 2)))
    damaged("graphs_list", manifest(lambda m: m.__setitem__("graphs", [])))
    damaged("no_step", lambda d: (d / "step.onnx").unlink())
    damaged("truncated", lambda d: _truncate(d / "decoder.onnx"))
    damaged("wrong_hash", manifest(lambda m: m["files"].__setitem__("prefill.onnx", "ab" * 32)))
    damaged("zero_graph", lambda d: ((d / "step.onnx").write_bytes(b""),
                                     _edit_json(d / "manifest.json", lambda m: m["files"].__setitem__(
                                         "step.onnx", sha256_file(d / "step.onnx")))))
    return f


def _engine(folder: str, *extra):
    """argv maker: --engines (a fixture's folder) and --output into a fresh place, then ``extra``."""
    def make(f, out: Path):
        args = [a(f, out) if callable(a) else a for a in extra]
        return ["--engines", f[folder], "--output", out / "v.y4m", "--quiet", *args]
    return make


def _at(f, out, *parts):
    return out.joinpath(*parts)


# (name, argv maker, exit code, text the message must hold)
RUN_ENGINE_CASES = [
    ("a hundred trillion videos", _engine("good", "--num-videos", "100000000000000"), USAGE,
     "--num-videos: expected an integer >= 1 and <= 1000000, got '100000000000000'"),
    ("zero videos", _engine("good", "--num-videos", "0"), USAGE, "--num-videos: expected an integer >= 1"),
    ("videos not a number", _engine("good", "--num-videos", "ten"), USAGE, "--num-videos: expected an integer"),
    ("empty video count", _engine("good", "--num-videos", ""), USAGE, "--num-videos: expected a value"),
    ("negative seed", _engine("good", "--seed", "-1"), USAGE, "--seed: expected an integer >= 0"),
    ("seed beyond 64 bits", _engine("good", "--seed", str(2**64)), USAGE, "--seed: expected an integer >= 0 and <= 4611686018427387904"),
    ("temperature nan", _engine("good", "--temperature", "nan"), USAGE, "--temperature: expected a finite number, got 'nan'"),
    ("temperature negative", _engine("good", "--temperature", "-1"), USAGE, "--temperature: expected a number >= 0"),
    ("top-p above one", _engine("good", "--top-p", "1.5"), USAGE, "--top-p: expected a number in (0, 1]"),
    ("top-k negative", _engine("good", "--top-k", "-3"), USAGE, "--top-k: expected an integer >= 0"),
    ("guidance inf", _engine("good", "--guidance-scale", "inf"), USAGE, "--guidance-scale: expected a finite number, got 'inf'"),
    ("batch zero", _engine("good", "--batch", "0"), USAGE, "--batch: expected an integer >= 1"),
    ("batch above the export's", _engine("good", "--batch", "3"), USAGE, "--batch: expected 1..2"),
    ("threads huge", _engine("good", "--threads", "100000"), USAGE, "--threads: expected an integer >= 0 and <= 1024"),
    ("class out of range", _engine("good", "--class", "99"), USAGE, f"--class: expected a class id in [0, {NUM_CLASSES})"),
    ("unknown backend", _engine("good", "--backend", "gpu"), USAGE, "--backend: expected auto, onnxruntime"),
    ("option without its value", lambda f, out: ["--engines"], USAGE, "--engines: unknown option or missing value"),
    ("context for a class export", _engine("good", "--context", "x.y4m"), USAGE, "--context: this export is class-conditional"),
    ("engines folder missing", lambda f, out: ["--engines", out / "nowhere"], MANIFEST, "nowhere/manifest.json: cannot open"),
    ("engines a file", lambda f, out: ["--engines", f["file"]], MANIFEST, "file.txt/manifest.json: cannot open"),
    ("manifest not JSON", _engine("not_json"), MANIFEST, "manifest.json: not valid JSON"),
    ("manifest empty", _engine("empty_manifest"), MANIFEST, "manifest.json: not valid JSON"),
    ("manifest with NaN", _engine("nan"), MANIFEST, "manifest.json: not valid JSON"),
    ("manifest lacks a field", _engine("no_layers"), MANIFEST, "manifest.json: missing key 'model.num_layers'"),
    ("manifest field of a wrong type", _engine("fps_text"), MANIFEST, "manifest.json: key 'video.fps': expected a number"),
    ("manifest negative temperature", _engine("temperature"), MANIFEST,
     "manifest.json: key 'sampling.temperature': expected a finite number >= 0"),
    ("manifest top-p above one", _engine("top_p"), MANIFEST, "manifest.json: key 'sampling.top_p': expected a finite number > 0"),
    ("manifest graphs a list", _engine("graphs_list"), MANIFEST, "manifest.json: key 'graphs': expected an object"),
    ("graph file missing", _engine("no_step"), ENGINE, "step.onnx: cannot open"),
    ("graph file truncated", _engine("truncated"), ENGINE, "decoder.onnx: SHA-256"),
    ("graph file of another hash", _engine("wrong_hash"), ENGINE, "prefill.onnx: SHA-256"),
    ("graph file empty with its hash", _engine("zero_graph"), ENGINE, "step.onnx"),
    ("output in a missing folder", lambda f, out: ["--engines", f["good"], "--quiet", "--output", out / "no" / "v.y4m"],
     OUTPUT, "v.y4m: cannot open for writing"),
    ("output is a folder", lambda f, out: ["--engines", f["good"], "--quiet", "--output", out], OUTPUT, "cannot open for writing"),
    ("tokens in a missing folder", _engine("good", "--tokens-out", lambda f, out: _at(f, out, "no", "t.bin")), OUTPUT,
     "t.bin: cannot open for writing (--tokens-out)"),
]


@pytest.mark.parametrize("name,argv,code,text", RUN_ENGINE_CASES, ids=[c[0] for c in RUN_ENGINE_CASES])
def test_run_engine_bad_input_is_one_line(engines, tmp_path, name, argv, code, text):
    r = run_engine(*argv(engines, tmp_path), timeout=120)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_engine: error: "), r.stderr
    assert text in lines[0], lines[0]


def test_run_engine_refuses_more_videos_than_the_disk_holds(engines, tmp_path):
    """A million videos with their PNGs need about 160 GB: refused before the first file where the disk
    holds less."""
    need = 10**6 * 9 * (64 * 64 * 4.5 + 1030)
    if shutil.disk_usage(tmp_path).free > need:
        pytest.skip("this disk holds a million videos")
    r = run_engine("--engines", engines["good"], "--output", tmp_path / "v.y4m", "--num-videos", 10**6, "--png", "--quiet")
    assert r.returncode == OUTPUT, r.stderr
    assert r.stderr.startswith("run_engine: error: --num-videos 1000000: the videos need about"), r.stderr
    assert "MiB free" in r.stderr and not list(tmp_path.iterdir())


def test_help_documents_the_exit_codes(engines):
    r = run_engine("--help")
    assert r.returncode == 0
    for line in ("  2 bad option", "  3 bad manifest.json", "  4 bad engine or ONNX file", "  5 bad context video",
                 "  6 failure while running", "  7 cannot write the output"):
        assert line in r.stdout, r.stdout
