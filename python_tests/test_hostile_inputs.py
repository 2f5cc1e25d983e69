"""Bad input to the ops and the commands: a clear one-line error naming the argument or file, or a
defined result; never a traceback, a crash or a silently wrong answer."""

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_generator_run

from nbp_ext.models import Generator, VideoTokenizer
from nbp_ext.ops import block_causal_attention, block_causal_attention_ref
import procs

REPO = Path(__file__).resolve().parents[1]


def test_attention_bounds_are_errors_or_defined_results():
    q, k, v = torch.randn(2, 6, 17, 1), torch.randn(2, 3, 33, 1), torch.randn(2, 3, 33, 1)
    with pytest.raises(ValueError, match=r"q_offset \+ Nq .* must be <= 2\^62"):
        block_causal_attention(q, k, v, 18, prefix_len=2, q_offset=2**63 - 17)
    big = block_causal_attention(q, k, v, 18, prefix_len=2, q_offset=2**62 - 17)  # the largest allowed
    torch.testing.assert_close(big, block_causal_attention_ref(q, k, v, 18, 2, 2**62 - 17))
    empty = torch.randn(1, 2, 3, 0)
    with pytest.raises(ValueError, match="head size >= 1"):
        block_causal_attention(empty, empty, empty, 1)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        block_causal_attention(q, k, v, 1, scale=float("nan"))
    for shape in ((0, 2, 3, 4), (2, 0, 3, 4), (2, 2, 0, 4)):
        x = torch.randn(*shape, requires_grad=True)
        kv = torch.randn(shape[0], shape[1], 5, 4)
        out = block_causal_attention(x, kv, kv, 1)
        assert out.shape == x.shape
        out.sum().backward()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A generator run (2 steps) on tokens of an untrained tiny tokenizer."""
    return make_generator_run(tmp_path_factory.mktemp("hostile"))


def _sample_error(run: Path, *extra: str, tmp_path: Path) -> str:
    proc = procs.run([sys.executable, "-m", "nbp_ext.sample", "--run", str(run), "--class", "1", "--num", "1",
                           "--out", str(tmp_path / "v.mp4"), *extra], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _copy(run: Path, dest: Path) -> Path:
    procs.run(["cp", "-r", str(run), str(dest)], check=True)
    return dest


WEIGHTS_CASES = {
    "zero bytes": lambda b: b"",
    "truncated": lambda b: b[: len(b) // 2],
    "random bytes": lambda b: bytes(range(256)) * 8,
    "one byte flipped": lambda b: b[:-10] + bytes([b[-10] ^ 0xFF]) + b[-9:],
}


@pytest.mark.parametrize("case", sorted(WEIGHTS_CASES))
def test_damaged_weights_are_refused_before_use(run, tmp_path, case):
    bad = _copy(run, tmp_path / "run")
    weights = bad / "generator" / "model.safetensors"
    weights.write_bytes(WEIGHTS_CASES[case](weights.read_bytes()))
    line = _sample_error(bad, tmp_path=tmp_path)
    assert "model.safetensors" in line and "SHA-256" in line


CONFIG_CASES = {
    "wrong type": ({"n_layer": "4"}, "field 'n_layer' must be"),
    "negative layer count": ({"n_layer": -1}, "n_layer must be >= 1"),
    "wrong vocabulary": ({"vocab_size": 7}, "does not fit the model"),
    "unknown field": ({"colour": 3}, "does not know: ['colour']"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_configs_name_the_field(run, tmp_path, case):
    change, expected = CONFIG_CASES[case]
    bad = _copy(run, tmp_path / "run")
    path = bad / "generator" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"].update(change)
    path.write_text(json.dumps(meta))
    assert expected in _sample_error(bad, tmp_path=tmp_path)


def test_sample_refuses_huge_counts_and_a_foreign_tokenizer(run, tmp_path):
    assert "--num must be in [1, 256]" in _sample_error(run, "--num", str(10**12), tmp_path=tmp_path)
    other = tmp_path / "other-tokenizer"
    torch.manual_seed(1)
    VideoTokenizer.from_name("tiny", fsq_levels=(5, 5, 5, 5)).save_pretrained(other)
    assert "is not the one this generator was trained on" in _sample_error(run, "--tokenizer", str(other),
                                                                          tmp_path=tmp_path)
    (run / "generator.json").read_text()  # untouched
    bad = _copy(run, tmp_path / "run")
    (bad / "generator" / "config.json").write_text("{not json")
    assert "config.json: not valid JSON" in _sample_error(bad, tmp_path=tmp_path)


def test_model_folders_round_trip_with_their_hash(tmp_path):
    model = Generator.from_name("tiny", vocab_size=50, grid=(2, 2, 2), block=(1, 1, 2), num_classes=3)
    model.save_pretrained(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert len(meta["weights_sha256"]) == 64
    again = Generator.from_pretrained(tmp_path / "m")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
