"""export/tensorrt_build.py against TensorRT 10.x and 11.x without TensorRT or a GPU: the builder runs
on fake tensorrt modules made from python_tests/tensorrt_api.py and uses nothing that 11 removed or
10.x deprecated, builds strongly typed networks with no precision flags, and says in one line which
TensorRT it found and what it lacks when it cannot build."""

from __future__ import annotations

import ast
import inspect
import sys

import pytest

from export import tensorrt_build
from tensorrt_api import API, FakeTensorRT


@pytest.fixture()
def fake_trt(monkeypatch):
    def install(major: int, **kw) -> FakeTensorRT:
        module = FakeTensorRT(major, **kw)
        monkeypatch.setitem(sys.modules, "tensorrt", module)
        return module

    return install


@pytest.mark.parametrize("major", [10, 11])
def test_builder_uses_only_current_api(fake_trt, tmp_path, major):
    trt = fake_trt(major)
    onnx_path, engine = tmp_path / "g.onnx", tmp_path / "g.engine"
    onnx_path.write_bytes(b"graph")
    tensorrt_build.build_engine(onnx_path, engine, profiles={"prefix": ((1, 1), (2, 1), (4, 1))})
    assert engine.read_bytes() == b"fake plan"
    status = {name: API[name][0 if major == 10 else 1] for name in trt.used}
    assert all(s == "ok" for s in status.values()), {n: s for n, s in status.items() if s != "ok"}
    assert not any(name.endswith("set_flag") for name, _ in trt.calls), "no builder precision flags"
    (flags,) = [args[0] for name, args in trt.calls if name == "Builder.create_network"]
    assert flags == (1 << API_INDEX["NetworkDefinitionCreationFlag.STRONGLY_TYPED"] if major == 10 else 0)


API_INDEX = {name: [k for k in API if k.startswith(name.rsplit(".", 1)[0] + ".")].index(name) for name in API if "." in name}


def test_declared_api_is_current_in_both_versions():
    """USED_API lists what the builder touches; each is present and not deprecated in 10.x and 11.x
    (STRONGLY_TYPED: 10.x only, where it is current)."""
    for name in tensorrt_build.USED_API:
        assert API[name] == ("ok", "ok"), name
    for name in tensorrt_build.USED_API_10:
        assert API[name][0] == "ok", name


# Attribute names in the builder's functions that are not TensorRT's.
NOT_TENSORRT = {"perf_counter", "write_bytes", "read_bytes", "items", "join", "cuda", "Stream", "cuda_stream",
                "synchronize", "data_ptr", "zeros", "append", "float32", "float16", "bfloat16", "int64", "int32"}


def test_every_tensorrt_member_in_the_source_is_declared():
    """Every attribute the builder's functions read is in USED_API (or not TensorRT's), so the checks
    above cover all of them, time_engine's included (it needs a GPU to run)."""
    used = tensorrt_build.USED_API + tensorrt_build.USED_API_10
    leaves = {n.rsplit(".", 1)[-1] for n in used} | {n.split(".")[0] for n in used}
    for fn in (tensorrt_build.build_engine, tensorrt_build.time_engine, tensorrt_build.network_flags):
        tree = ast.parse(inspect.getsource(fn))
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert names - NOT_TENSORRT <= leaves, (fn.__name__, names - NOT_TENSORRT - leaves)
    module = {n.attr for n in ast.walk(ast.parse(inspect.getsource(tensorrt_build))) if isinstance(n, ast.Attribute)}
    assert not module & {"BuilderFlag", "EXPLICIT_BATCH", "set_flag"}


@pytest.mark.parametrize("version, needle", [
    ("8.6.1", "TensorRT 8.6.1 found, but this builder needs TensorRT 10.x or 11.x"),
    ("12.0.0", "TensorRT 12.0.0 found, but this builder needs TensorRT 10.x or 11.x"),
])
def test_unsupported_version_is_one_line(fake_trt, version, needle):
    trt = fake_trt(int(version.split(".")[0]), version=version)
    message = tensorrt_build.why_unavailable()
    assert needle in message and "\n" not in message
    with pytest.raises(RuntimeError, match="needs TensorRT 10.x or 11.x"):
        tensorrt_build.build_engine(None, None)
    assert trt.calls == []


def test_missing_member_is_named(fake_trt):
    fake_trt(10, version="10.0.1", drop=("NetworkDefinitionCreationFlag.STRONGLY_TYPED", "DataType.BF16"))
    message = tensorrt_build.why_unavailable()
    assert message == ("TensorRT engines not built: TensorRT 10.0.1 found, but its Python API lacks DataType.BF16, "
                       "NetworkDefinitionCreationFlag.STRONGLY_TYPED; the ONNX graphs are ready for run_engine's "
                       "ONNX Runtime backend")


def test_precision_flag_is_gone_in_11(fake_trt):
    """The fake is strict where TensorRT 11 is: what the old builder did now fails as it would."""
    trt = fake_trt(11)
    with pytest.raises(AttributeError, match="TensorRT 11.4.0.106 has no BuilderFlag.FP16"):
        trt.BuilderFlag.FP16


def test_export_records_the_tensorrt_version(monkeypatch, tmp_path):
    """An fp16 export where (fake) TensorRT 11 builds: every graph gets an engine, strongly typed with
    no flags, the decoder's dynamic batch a profile up to the max batch, and the manifest the
    TensorRT version; run_engine's ONNX Runtime backend still runs the folder's graphs."""
    import json

    from export import to_trt
    from run_engine_helpers import ensure_built, make_run, run_engine

    trt = FakeTensorRT(11)

    def available():  # as on a machine with a GPU; installed only now, the exporter's tracing inspects modules
        monkeypatch.setitem(sys.modules, "tensorrt", trt)

    monkeypatch.setattr(tensorrt_build, "why_unavailable", available)
    monkeypatch.setattr(tensorrt_build, "time_engine", lambda path, shapes: 1.5)
    make_run(tmp_path / "runs", condition="none", style="gpt2")
    out = tmp_path / "engines"
    assert to_trt.main(["--runs", str(tmp_path / "runs"), "--output", str(out), "--precision", "fp16", "--max-batch", "2"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["tensorrt_version"] == "11.4.0.106" and m["precision"] == "fp16"
    assert {n: g["engine"] for n, g in m["graphs"].items()} == {n: f"{n}.engine" for n in ("prefill", "step", "decoder")}
    assert {"prefill.engine", "step.engine", "decoder.engine"} <= set(m["files"])
    assert [args for name, args in trt.calls if name == "Builder.create_network"] == [(0,)] * 3
    (shape,) = [args for name, args in trt.calls if name == "IOptimizationProfile.set_shape"]
    assert shape[0] == "codes" and (shape[1][0], shape[2][0], shape[3][0]) == (1, 1, 2)
    assert ensure_built() is None
    r = run_engine("--engines", out, "--backend", "onnxruntime", "--num-videos", 1, "--output", tmp_path / "v.y4m", "--quiet")
    assert r.returncode == 0, r.stderr
