"""Every command against bad input, from a table: each case ends with one line ``error: ...`` (or
argparse's usage line) naming the option or file, the documented exit code, and no traceback.

Exit codes (``nbp_ext/cli_errors.py``): 1 an error the command names, 2 a command line the parser
rejects, 3 an unexpected failure (which no case here may reach). The cases run in-process through
the same ``run_command`` the commands' entry points use; the files they need are made here.
"""

import json
from pathlib import Path

import pytest
from conftest import make_generator_run

from nbp_ext.cli_errors import run_command
import procs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small trained run and the damaged files the cases use."""
    root = tmp_path_factory.mktemp("bad-inputs")
    make_generator_run(root)
    f = {"root": root, "run": root / "run", "tokens": root / "tokens", "tokenizer": root / "tokenizer"}
    (root / "empty").mkdir()
    (root / "empty.csv").write_text("")
    (root / "garbage.pth").write_bytes(b"\x00garbage" * 10)
    (root / "text.txt").write_text("hello")
    bad_tok = root / "bad-tokenizer"
    procs.run(["cp", "-r", str(root / "tokenizer"), str(bad_tok)], check=True)
    (bad_tok / "model.safetensors").write_bytes(b"")
    cfg_tok = root / "cfg-tokenizer"
    procs.run(["cp", "-r", str(root / "tokenizer"), str(cfg_tok)], check=True)
    (cfg_tok / "config.json").write_text("[1, 2")
    bad_tokens = root / "bad-tokens"
    procs.run(["cp", "-r", str(root / "tokens"), str(bad_tokens)], check=True)
    (bad_tokens / "train" / "meta.json").write_text("{")
    bad_state = root / "bad-state"
    procs.run(["cp", "-r", str(root / "run"), str(bad_state)], check=True)
    for ckpt in (bad_state / "checkpoints").glob("step_*"):
        (ckpt / "train_state.json").write_text("not json")
        record = json.loads((ckpt / "complete.json").read_text())
        record["files"]["train_state.json"] = len("not json")
        (ckpt / "complete.json").write_text(json.dumps(record))
    bad_info = root / "bad-info"
    procs.run(["cp", "-r", str(root / "run"), str(bad_info)], check=True)
    (bad_info / "generator.json").write_text("{'single': quotes}")
    f.update(empty=root / "empty", empty_csv=root / "empty.csv", garbage=root / "garbage.pth", text=root / "text.txt",
             bad_tok=bad_tok, cfg_tok=cfg_tok, bad_tokens=bad_tokens, bad_state=bad_state, bad_info=bad_info,
             missing=root / "missing")
    return f


def _train(*a):
    from nbp_ext.train.__main__ import main
    return lambda: main(list(a))


def _module(name: str, *a):
    def call():
        import importlib

        module = importlib.import_module(name)
        if name == "nbp_ext.tokenize":
            return module.main(module.build_parser().parse_args(list(a)))
        return module.main(list(a))
    return call


def _plan(*a):
    from nbp_ext.plan.cli import main
    return lambda: main(list(a))


TRAIN_GENERATOR = ["generator", "--no-progress", "--steps", "1"]
TOK = ["tokenizer", "--no-progress", "--steps", "1", "--frames", "9", "--size", "32", "--train-clips", "8"]

# (name, command(files) -> callable, exit code, text the message must hold)
CASES = [
    ("pipeline unknown preset", lambda f: _train("--preset", "huge"), 2, "invalid choice: 'huge'"),
    ("pipeline limit too short", lambda f: _train("--time-limit", "0.2"), 1, "--time-limit must be 0 (none) or at least"),
    ("pipeline ucf101 without root", lambda f: _train("--dataset", "ucf101"), 1, "needs root (--data-root)"),
    ("pipeline ucf101 missing root", lambda f: _train("--dataset", "ucf101", "--data-root", str(f["missing"])), 1, "root must be a folder"),
    ("pipeline ucf101 empty root", lambda f: _train("--dataset", "ucf101", "--data-root", str(f["empty"])), 1, "one folder per class"),
    ("pipeline options before a stage", lambda f: _train("--preset", "long", "generator"), 1, "run the whole pipeline"),
    ("generator missing tokens", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["missing"])), 1, "missing"),
    ("generator corrupt token meta", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["bad_tokens"])), 1, "meta.json"),
    ("generator zero steps", lambda f: _train("generator", "--steps", "0"), 1, "--steps must be >= 1, got 0"),
    ("generator negative batch", lambda f: _train("generator", "--batch-size", "-1"), 1, "--batch-size must be >= 1"),
    ("generator zero accumulation", lambda f: _train("generator", "--grad-accum", "0"), 1, "--grad-accum must be >= 1"),
    ("generator learning rate not a number", lambda f: _train("generator", "--lr", "abc"), 2, "invalid float value: 'abc'"),
    ("generator bad block", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["tokens"]), "--block", "1,2"), 1, "--block must be"),
    ("generator block not dividing the grid", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["tokens"]), "--block", "1,3,3"), 1, "block"),
    ("generator unknown size", lambda f: _train("generator", "--model", "huge"), 2, "invalid choice: 'huge'"),
    ("generator negative time limit", lambda f: _train("generator", "--time-limit", "-1"), 1, "--time-limit must be > 0 minutes"),
    ("generator resume nowhere", lambda f: _train("generator", "--resume", str(f["missing"])), 1, "no such run folder"),
    ("generator resume a folder without checkpoints", lambda f: _train("generator", "--resume", str(f["empty"])), 1, "no finished checkpoint"),
    ("generator resume a corrupt training state", lambda f: _train("generator", "--resume", str(f["bad_state"])), 1, "train_state.json: not a valid"),
    ("generator keep no checkpoints", lambda f: _train("generator", "--keep-checkpoints", "0"), 1, "--keep-checkpoints must be >= 1"),
    ("generator unknown parallelism", lambda f: _train("generator", "--parallel", "mpi"), 2, "invalid choice: 'mpi'"),
    ("generator CUDA on a CPU machine", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["tokens"]), "--device", "cuda"), 1, "needs CUDA"),
    ("generator context frames beyond the grid", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["tokens"]), "--condition", "frames", "--context-frames", "9"), 1, "context_frames must be in"),
    ("generator zero log interval", lambda f: _train("generator", "--log-every", "0"), 1, "--log-every must be >= 1"),
    ("generator run folder under a file", lambda f: _train(*TRAIN_GENERATOR, "--tokens", str(f["tokens"]), "--run-dir", str(f["text"] / "run")), 1, "cannot be made"),
    ("tokenizer unknown loss", lambda f: _train("tokenizer", "--loss", "l3"), 2, "invalid choice: 'l3'"),
    ("tokenizer FSQ levels not numbers", lambda f: _train("tokenizer", "--fsq-levels", "a,b"), 2, "--fsq-levels"),
    ("tokenizer frames not 1 + 4k", lambda f: _train(*TOK[:-4], "--frames", "8", "--size", "32"), 1, "1 + 4k"),
    ("tokenizer size not a multiple", lambda f: _train(*TOK[:-4], "--frames", "9", "--size", "30"), 1, "multiple"),
    ("tokenizer k600 missing list", lambda f: _train(*TOK, "--dataset", "k600", "--train-list", str(f["missing"])), 1, "list file must exist"),
    ("tokenizer k600 empty list", lambda f: _train(*TOK, "--dataset", "k600", "--train-list", str(f["empty_csv"])), 1, "has no entries"),
    ("tokenizer k600 without lists", lambda f: _train(*TOK, "--dataset", "k600"), 1, "needs train_list"),
    ("tokenizer object scale too big", lambda f: _train(*TOK, "--object-scale", "5"), 1, "object_scale"),
    ("tokenizer LPIPS without VGG", lambda f: _train(*TOK, "--lpips-weights", str(f["garbage"])), 1, "--lpips-weights needs --vgg-weights"),
    ("tokenizer VGG weights missing", lambda f: _train(*TOK, "--vgg-weights", str(f["missing"])), 1, "missing"),
    ("tokenizer VGG weights garbage", lambda f: _train(*TOK, "--vgg-weights", str(f["garbage"])), 1, "garbage.pth"),
    ("tokenizer GAN under fsdp", lambda f: _train(*TOK, "--disc-start", "0", "--parallel", "fsdp"), 1, "--disc-start needs --parallel ddp"),
    ("tokenizer bad-file share above one", lambda f: _train(*TOK, "--max-bad-fraction", "2"), 1, "--max-bad-fraction must be in [0, 1]"),
    ("tokenizer zero init clips", lambda f: _train(*TOK, "--init-clips", "0"), 1, "--init-clips must be >= 1"),
    ("tokenize missing tokenizer", lambda f: _module("nbp_ext.tokenize", "--tokenizer", str(f["missing"]), "--out", str(f["root"] / "o1")), 1, "missing"),
    ("tokenize empty weights", lambda f: _module("nbp_ext.tokenize", "--tokenizer", str(f["bad_tok"]), "--out", str(f["root"] / "o2")), 1, "model.safetensors"),
    ("tokenize config not JSON", lambda f: _module("nbp_ext.tokenize", "--tokenizer", str(f["cfg_tok"]), "--out", str(f["root"] / "o3")), 1, "config.json: not valid JSON"),
    ("tokenize unknown split", lambda f: _module("nbp_ext.tokenize", "--tokenizer", str(f["tokenizer"]), "--splits", "test"), 1, "--splits must be"),
    ("tokenize zero batch", lambda f: _module("nbp_ext.tokenize", "--tokenizer", str(f["tokenizer"]), "--batch-size", "0", "--out", str(f["root"] / "o4")), 1, "--batch-size must be >= 1"),
    ("sample missing run", lambda f: _module("nbp_ext.sample", "--run", str(f["missing"])), 1, "--run must be a generator run folder"),
    ("sample class out of range", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "99"), 1, "--class must be in [0, 12)"),
    ("sample class missing", lambda f: _module("nbp_ext.sample", "--run", str(f["run"])), 1, "--class is required"),
    ("sample zero videos", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--num", "0"), 1, "--num must be in [1, 256]"),
    ("sample a trillion videos", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--num", str(10**12)), 1, "--num must be in [1, 256]"),
    ("sample top-p above one", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--top-p", "2"), 1, "--top-p must be in (0, 1], got 2.0"),
    ("sample negative temperature", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--temperature", "-1"), 1, "temperature"),
    ("sample guidance not a number", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--guidance-scale", "nan"), 1, "--guidance-scale"),
    ("sample negative top-k", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--top-k", "-5"), 1, "--top-k must be an int >= 0 (0: no cut), got -5"),
    ("sample negative seed", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--seed", "-1"), 1, "seed"),
    ("sample unknown video format", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--out", str(f["root"] / "v.txt")), 1, ".txt"),
    ("sample negative scale", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--scale", "-1"), 1, "--scale must be an int >= 0"),
    ("sample unknown precision", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--precision", "fp8"), 2, "invalid choice: 'fp8'"),
    ("sample CUDA on a CPU machine", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--device", "cuda"), 1, "CUDA"),
    ("sample missing tokenizer", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--tokenizer", str(f["missing"])), 1, "missing"),
    ("sample run info not JSON", lambda f: _module("nbp_ext.sample", "--run", str(f["bad_info"]), "--class", "1"), 1, "generator.json: not valid JSON"),
    ("sample context for a class model", lambda f: _module("nbp_ext.sample", "--run", str(f["run"]), "--class", "1", "--context", str(f["missing"])), 1, "--context"),
    ("evaluate missing run", lambda f: _module("nbp_ext.evaluate.__main__", "--run", str(f["missing"])), 1, "--run must be a generator run folder"),
    ("evaluate zero videos", lambda f: _module("nbp_ext.evaluate.__main__", "--run", str(f["run"]), "--num", "0"), 1, "--num"),
    ("evaluate missing classifier", lambda f: _module("nbp_ext.evaluate.__main__", "--run", str(f["run"]), "--classifier", str(f["missing"])), 1, "missing"),
    ("evaluate zero classifier steps", lambda f: _module("nbp_ext.evaluate.__main__", "--run", str(f["run"]), "--classifier-steps", "0"), 1, "steps must be >= 1"),
    ("evaluate i3d layout without i3d", lambda f: _module("nbp_ext.evaluate.__main__", "--run", str(f["run"]), "--i3d-layout", "videogpt"), 1, "--i3d-layout describes the --i3d file"),
    ("evaluate zero dist timeout", lambda f: _module("nbp_ext.evaluate.__main__", "--run", str(f["run"]), "--dist-timeout", "0"), 1, "--dist-timeout must be a number of seconds > 0"),
    ("tokenizer zero loader timeout", lambda f: _train("tokenizer", "--loader-timeout", "0"), 1, "--loader-timeout must be a number of seconds > 0"),
    ("plan unknown size", lambda f: _plan("--model", "huge"), 2, "--model"),
    ("plan no GPUs", lambda f: _plan("--model", "3B", "--gpus", "0"), 2, "--gpus"),
    ("plan bad grid", lambda f: _plan("--model", "3B", "--grid", "1,2"), 2, "--grid"),
    ("plan negative memory", lambda f: _plan("--model", "3B", "--gpu-memory", "-8"), 2, "--gpu-memory"),
]


@pytest.mark.parametrize("name,command,code,text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(files, capsys, name, command, code, text):
    with pytest.raises(SystemExit) as ended:
        run_command(command(files))
    err = capsys.readouterr().err
    message = ended.value.code if isinstance(ended.value.code, str) else err.strip().splitlines()[-1] if err.strip() else ""
    exit_code = 1 if isinstance(ended.value.code, str) else ended.value.code
    assert exit_code == code, (exit_code, message)
    assert "Traceback" not in err
    assert text in message, message
    assert "\n" not in message.strip()
