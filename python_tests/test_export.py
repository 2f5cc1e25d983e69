"""export/: a tiny Generator run exported by export/to_trt.py; every graph checked against the
real model in ONNX Runtime: prefill, every step of a whole generation (the KV caches of
nbp_ext.generate as inputs), the tokenizer decoder; class-conditional (with guidance), frame
prediction and unconditional models."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export import onnx_check, to_trt
from export.manifest import sha256_dir, sha256_file
from nbp_ext.generate import make_caches, prefill, decode_block
from nbp_ext.ops import sample_block
from run_engine_helpers import GRID, NUM_CLASSES, exported, make_run


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    return exported(tmp_path_factory.getbasetemp())


def test_manifest_lists_every_file_with_its_hash(cls):
    out, model, _, manifest = cls
    assert manifest["format"] == "nbp-engines" and manifest["format_version"] == 1
    assert set(manifest["files"]) == {"prefill.onnx", "step.onnx", "decoder.onnx"}
    for name, digest in manifest["files"].items():
        assert sha256_file(out / name) == digest
    for name, entry in manifest["checkpoint"].items():  # the newest run and the tokenizer it records
        assert entry["path"].endswith({"generator": "generator-20260101-000000/generator",
                                       "tokenizer": "tokenizer-20260101-000000/tokenizer"}[name])
        assert sha256_dir(entry["path"]) == entry["sha256"]
    m, cfg = manifest["model"], model.config
    assert (m["num_blocks"], m["block_len"], m["graph_batch"], m["max_cache_len"]) == (cfg.num_steps, 8, 4, cfg.max_len)
    assert m["prefix"] == {"kind": "class", "length": 1, "num_classes": NUM_CLASSES, "null_class": NUM_CLASSES}
    assert manifest["sampling"] == {"temperature": 1.0, "top_k": cfg.vocab_size, "top_p": 0.9, "guidance_scale": 2.0}
    assert max(manifest["parity"]["max_abs_diff"].values()) < 1e-4


def test_graphs_use_standard_ops_only(cls):
    out = cls[0]
    for name in ("prefill.onnx", "step.onnx", "decoder.onnx"):
        model = onnx.load(str(out / name))
        onnx.checker.check_model(model, full_check=True)
        assert all(n.domain in ("", "ai.onnx") for n in model.graph.node), name
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]


def test_step_graph_is_static(cls):
    model = onnx.load(str(cls[0] / "step.onnx"))
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), value.name


def feeds_of(cond):
    return {} if cond is None else {"prefix": (cond[:, None] if cond.dim() == 1 else cond).numpy()}


def check_generation(out, model, cond, rows, seed=3, guidance_scale=None):
    """Runs nbp_ext.generate's prefill and decode_block over a whole clip and, at each of them, the
    ONNX graph on the same inputs (caches as generation holds them); returns the largest differences."""
    cfg = model.config
    P, L, K = cfg.prefix_len, cfg.block_len, cfg.num_steps
    pre = onnx_check.ort_session(out / "prefill.onnx")
    step = onnx_check.ort_session(out / "step.onnx")
    caches = make_caches(model, rows)
    logits = prefill(model, cond, rows, caches)
    want = {"logits": logits.numpy(), **{f"key_{i}": c.k[:, :, : P + L].numpy() for i, c in enumerate(caches)},
            **{f"value_{i}": c.v[:, :, : P + L].numpy() for i, c in enumerate(caches)}}
    diffs = [onnx_check.run_and_compare(out / "prefill.onnx", feeds_of(cond), want, session=pre)]
    B = rows // 2 if guidance_scale else rows
    for k in range(K - 1):
        c, u = (logits[:B], logits[B:]) if guidance_scale else (logits, None)
        tokens = sample_block(c, seed, k, 1.0, cfg.vocab_size, 0.9, guidance_scale, u)
        tokens = torch.cat([tokens, tokens]) if guidance_scale else tokens
        pos = P + L + k * L
        feeds = {"tokens": tokens.numpy(), "position": np.array([pos], np.int64)}
        for i, cache in enumerate(caches):  # as the runtime holds them: positions >= pos not yet written
            feeds[f"past_key_{i}"], feeds[f"past_value_{i}"] = cache.k.numpy().copy(), cache.v.numpy().copy()
        logits = decode_block(model, tokens, pos, caches)
        want = {"logits": logits.numpy(), **{f"key_{i}": c.k[:, :, pos : pos + L].numpy() for i, c in enumerate(caches)},
                **{f"value_{i}": c.v[:, :, pos : pos + L].numpy() for i, c in enumerate(caches)}}
        diffs.append(onnx_check.run_and_compare(out / "step.onnx", feeds, want, session=step))
    return diffs


def test_every_step_of_a_guided_generation_matches(cls):
    out, model, _, _ = cls
    cond = torch.tensor([4, 0, NUM_CLASSES, NUM_CLASSES])  # two videos, then the null-class stream
    diffs = check_generation(out, model, cond, 4, guidance_scale=2.0)
    assert len(diffs) == model.config.num_steps and max(diffs) < 1e-4


@pytest.mark.parametrize("condition, style", [("frames", "llama"), ("none", "gpt2")])
def test_frames_and_unconditional_models(tmp_path_factory, condition, style):
    out, model, _, manifest = exported(tmp_path_factory.getbasetemp(), condition, style, max_batch=1)
    assert manifest["model"]["unconditional_stream"] is False  # no unconditional stream without a null class
    if condition == "frames":
        assert manifest["model"]["prefix"] == {"kind": "frames", "length": 64, "context_frames": 1}
        assert "encoder.onnx" in manifest["files"]
        cond = torch.randint(0, model.config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    else:
        assert manifest["model"]["prefix"] == {"kind": "none", "length": 0}
        assert manifest["graphs"]["prefill"]["inputs"] == []
        cond = None
    diffs = check_generation(out, model, cond, 1)
    assert len(diffs) == model.config.num_steps and max(diffs) < 1e-4


def test_exact_gelu_graphs_match(tmp_path_factory):
    """The gpt2 style with exact (erf) GELU, as the official NBP models have: standard ops, and every
    step's logits as PyTorch's."""
    out, model, _, _ = exported(tmp_path_factory.getbasetemp(), "none", "gpt2", max_batch=1, gelu="exact")
    assert model.config.gelu == "exact"
    step = onnx.load(str(out / "step.onnx"))
    assert all(n.domain in ("", "ai.onnx") for n in step.graph.node)
    diffs = check_generation(out, model, None, 1)
    assert len(diffs) == model.config.num_steps and max(diffs) < 1e-4


def test_decoder_parity(cls):
    out, _, tokenizer, _ = cls
    codes = torch.randint(0, tokenizer.codebook_size, (2, *GRID), generator=torch.Generator().manual_seed(3))
    video = tokenizer.decode(codes)
    assert onnx_check.run_and_compare(out / "decoder.onnx", {"codes": codes.numpy()}, {"video": video.numpy()}) < 1e-4


def test_patch_tokenizer_graphs(tmp_path_factory):
    """A run whose tokenizer is the patch tokenizer (space /4) exports: its decoder and encoder match
    PyTorch, codes included, and the manifest records the frames it decodes to."""
    out, model, tokenizer, manifest = exported(tmp_path_factory.getbasetemp(), "frames", "llama", max_batch=1, tokenizer="patch")
    assert tokenizer.config.arch == "patch" and "encoder.onnx" in manifest["files"]
    assert (manifest["video"]["frames"], manifest["video"]["height"], manifest["video"]["width"]) == (9, 32, 32)
    codes = torch.randint(0, tokenizer.codebook_size, (2, *GRID), generator=torch.Generator().manual_seed(3))
    assert onnx_check.run_and_compare(out / "decoder.onnx", {"codes": codes.numpy()},
                                      {"video": tokenizer.decode(codes).numpy()}) < 1e-4
    video = tokenizer.decode(codes).clamp(-1, 1)[:1, :, :1]  # (1, 3, 1, 32, 32): one context latent frame = 1 frame
    session = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    assert np.array_equal(session.run(None, {name: video.numpy()})[0], tokenizer.encode(video).numpy())


def test_hybrid_start_graphs_match_a_full_forward(tmp_path_factory):
    """Hybrid start: the prefill covers the prefix and the start token, and the token step feeds block
    0 one token at a time; their logits in ONNX Runtime equal a full forward pass of the model."""
    out, model, _, manifest = exported(tmp_path_factory.getbasetemp(), "class", "llama", max_batch=1, start="hybrid")
    cfg, V = model.config, model.config.vocab_size
    P, L, rows = cfg.prefix_len, cfg.block_len, 2  # rows: the conditional and the unconditional stream
    assert manifest["model"]["start"] == "hybrid" and "token_step.onnx" in manifest["files"]
    graphs = manifest["graphs"]
    assert [t["shape"] for t in graphs["prefill"]["outputs"][:2]] == [[rows, 1, V], [rows, cfg.n_kv_head, P + 1, cfg.head_dim]]
    assert graphs["token_step"]["inputs"][0]["shape"] == [rows, 1]
    video = torch.randint(0, V, (1, cfg.video_len), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(video, torch.tensor([3]))[0, :L].numpy()  # (L, V): block 0's tokens, teacher-forced
    opts = dict(providers=["CPUExecutionProvider"])
    prefill = ort.InferenceSession(str(out / "prefill.onnx"), **opts)
    step = ort.InferenceSession(str(out / "token_step.onnx"), **opts)
    logits, *kv = prefill.run(None, {"prefix": np.array([[3], [NUM_CLASSES]], dtype=np.int64)})
    caches = [np.zeros((rows, cfg.n_kv_head, manifest["model"]["max_cache_len"], cfg.head_dim), np.float32) for _ in kv]
    for c, t in zip(caches, kv):
        c[:, :, : P + 1] = t
    got = [logits[0, 0]]
    for j in range(L - 1):
        feed = {"tokens": np.repeat(video[:, j : j + 1].numpy(), rows, 0), "position": np.array([P + 1 + j], np.int64)}
        feed.update({f"past_{kind}_{i}": caches[2 * i + (kind == "value")] for i in range(cfg.n_layer) for kind in ("key", "value")})
        logits, *kv = step.run(None, feed)
        for c, t in zip(caches, kv):
            c[:, :, P + 1 + j : P + 2 + j] = t
        got.append(logits[0, 0])
    np.testing.assert_allclose(np.stack(got), want, atol=1e-4, rtol=0)


def test_parity_failure_is_reported():
    with pytest.raises(onnx_check.ParityError, match="differs from PyTorch by"):
        onnx_check.compare("g.onnx", {"y": np.ones(3, np.float32)}, {"y": np.zeros(3, np.float32)})


# ---- to_trt.py errors: before any export -------------------------------------------------------

def test_no_run_is_a_clear_error(tmp_path, capsys):
    assert to_trt.main(["--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "e")]) == 1
    assert "no generator run (generator-*/generator/) under" in capsys.readouterr().err


def test_tokenizer_that_is_not_the_recorded_one(tmp_path, capsys):
    run, _, tokenizer = make_run(tmp_path / "runs")
    info = json.loads((run / "generator.json").read_text())
    (run / "generator.json").write_text(json.dumps({**info, "tokenizer_sha256": "0" * 64}))
    assert to_trt.main(["--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "e")]) == 1
    assert "give the matching --tokenizer" in capsys.readouterr().err
    (run / "generator.json").write_text(json.dumps({**info, "tokenizer": str(tmp_path / "gone")}))
    assert to_trt.main(["--checkpoint", str(run), "--output", str(tmp_path / "e")]) == 1
    assert "does not exist (moved or deleted?)" in capsys.readouterr().err


def test_guidance_needs_a_class_model(tmp_path, capsys):
    run, _, _ = make_run(tmp_path / "runs", condition="none")
    assert to_trt.main(["--checkpoint", str(run / "generator"), "--unconditional-stream", "--output", str(tmp_path / "e")]) == 1
    assert "guidance needs a null class" in capsys.readouterr().err


# ---- low-precision graphs ----------------------------------------------------------------------

@pytest.mark.parametrize("precision, low", [("fp16", "FLOAT16"), ("bf16", "BFLOAT16")])
def test_low_precision_graphs(tmp_path_factory, precision, low):
    """--precision fp16 / bf16: the generator's weights and KV caches in that type, the logits (and
    the head weight that makes them) fp32; each graph matched PyTorch in the same precision within
    export/precision.py's tolerance (bf16 in ONNX Runtime widened to fp32); no engines, so no
    TensorRT version. The decoder is fp16 in an fp16 export and fp32 in a bf16 one (opset 18's Conv)."""
    from export.precision import TOLERANCES

    out, model, _, manifest = exported(tmp_path_factory.getbasetemp(), precision=precision)
    kv = {"fp16": "float16", "bf16": "bfloat16"}[precision]
    assert (manifest["precision"], manifest["onnx_dtype"], manifest["tensorrt_version"]) == (precision, kv, None)
    for name in ("prefill", "step"):
        entry = manifest["graphs"][name]
        types = {t["name"]: t["dtype"] for t in entry["inputs"] + entry["outputs"]}
        assert types["logits"] == "float32" and types["key_0"] == types["value_1"] == kv, types
        graph = onnx.load(str(out / entry["onnx"]))
        declared = {v.name: onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()
                    for v in list(graph.graph.input) + list(graph.graph.output)}
        assert declared == {n: {"float32": "float", "int64": "int64"}.get(t, t) for n, t in types.items()}
        weights = [t for t in graph.graph.initializer if len(t.dims) >= 2]
        wide = [tuple(t.dims) for t in weights if t.data_type == onnx.TensorProto.FLOAT]
        assert all(model.config.vocab_size in dims for dims in wide), wide  # the head only
        assert sum(t.data_type == getattr(onnx.TensorProto, low) for t in weights) >= 4 * model.config.n_layer
    decoder = onnx.load(str(out / "decoder.onnx"))
    want = "FLOAT16" if precision == "fp16" else "FLOAT"
    assert {t.data_type for t in decoder.graph.initializer if len(t.dims) >= 2} == {getattr(onnx.TensorProto, want)}
    atol, rtol = TOLERANCES[precision]
    diffs = manifest["parity"]["max_abs_diff"]
    print(f"{precision}: ONNX Runtime vs PyTorch max |diff| {diffs} (tolerance {atol} + {rtol} * max |torch|)")
    assert max(diffs.values()) <= atol  # the export itself failed above atol + rtol * max |torch|


def test_bf16_widening_is_exact_for_weights():
    """A bf16 graph widened for ONNX Runtime keeps its weights' values (bf16 -> fp32 is exact)."""
    from onnx import helper, numpy_helper

    w = torch.randn(3, 4).to(torch.bfloat16)
    init = helper.make_tensor("w", onnx.TensorProto.BFLOAT16, [3, 4], w.float().flatten().tolist())
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    cast = helper.make_node("Cast", ["y"], ["z"], to=onnx.TensorProto.BFLOAT16)
    graph = helper.make_graph([node, cast], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.BFLOAT16, [2, 3])],
                              [helper.make_tensor_value_info("z", onnx.TensorProto.BFLOAT16, [2, 4])], [init])
    wide = onnx_check.widened_bf16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert not onnx_check.has_bf16(wide)
    np.testing.assert_array_equal(numpy_helper.to_array(wide.graph.initializer[0]), w.float().numpy())
    x = torch.randn(2, 3).to(torch.bfloat16)
    got = ort.InferenceSession(wide.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": onnx_check.to_numpy(x)})[0]
    np.testing.assert_allclose(got, (x.float() @ w.float()).numpy(), rtol=1e-6, atol=1e-6)
