"""The memory plan (``python -m nbp_ext.plan``): activation estimates against CPU measurements,
parameter counts against the real model, the command's output and its errors.

Measurement (``nbp_ext.plan.measure``): a dispatch mode counts the bytes of every storage a real
training step creates on the CPU, from its creation until it is freed, through the forward pass,
the loss and the backward pass (checkpointed blocks recomputed included); parameter gradients are
dropped as they arrive, so its peak is the activations and backward temporaries alone, which is
what the plan's activation row estimates.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nbp_ext.models import Generator, VideoTokenizer
from nbp_ext.models.generator_config import generator_config_from_name
from nbp_ext.models.head_loss import CHUNK_ELEMENTS, MIN_CHUNK_ROWS
from nbp_ext.plan import PlanSpec, flow_for, make_plan
from nbp_ext.plan.cli import main
from nbp_ext.plan.generator_acts import GeneratorShape, activation_bytes
from nbp_ext.plan.measure import measure_step
from nbp_ext.plan.memory import ModelCounts, max_batch, peak_bytes, state_bytes
from nbp_ext.plan.meta_run import meta_peak
from nbp_ext.plan.models import build_tokenizer
import procs

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.25
GRID = (3, 8, 8)
VOCAB = 4096  # two chunks of the loss on the CPU for 2 clips: the chunk loop is exercised
BATCH = 2


def measured_generator(size: str, flow, checkpointing: bool, **overrides) -> tuple[int, int]:
    """(measured peak, estimated peak) of a generator step on the CPU (autocast for bf16)."""
    torch.manual_seed(0)
    cfg = generator_config_from_name(size, vocab_size=VOCAB, grid=GRID, block=(1, 1, GRID[2]), num_classes=101, **overrides)
    model = Generator(cfg)
    if flow.param == 2:  # FSDP's bf16 parameters
        model = model.to(torch.bfloat16)
    model.set_activation_checkpointing(checkpointing)
    codes = torch.randint(0, VOCAB, (BATCH, *GRID))
    labels = torch.randint(0, 101, (BATCH,))

    def loss() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=flow.autocast):
            return model.loss(codes, labels)["loss"]

    measured = measure_step(model, loss, [codes, labels])["peak"]
    estimate = activation_bytes(GeneratorShape.from_model(model), flow, BATCH, checkpointing, CHUNK_ELEMENTS,
                                MIN_CHUNK_ROWS)
    return measured, estimate


@pytest.mark.parametrize("checkpointing", [False, True], ids=["full", "ckpt"])
@pytest.mark.parametrize("size,strategy,precision", [("tiny", "ddp", "fp32"), ("small", "ddp", "fp32"),
                                                     ("tiny", "ddp", "bf16"), ("tiny", "fsdp", "bf16")])
def test_generator_activations_match_cpu_measurement(size, strategy, precision, checkpointing):
    """The formula within 25% of the measured peak, in fp32, and in bf16 for DDP's autocast over fp32
    weights and FSDP's bf16 weights (RMSNorm casts by hand, so the CPU follows the GPU's dtypes)."""
    measured, estimate = measured_generator(size, flow_for(strategy, precision), checkpointing)
    assert abs(estimate / measured - 1) <= TOLERANCE, (size, strategy, precision, checkpointing, estimate / measured)


@pytest.mark.parametrize("checkpointing", [False, True], ids=["full", "ckpt"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_generator_activations_gpt2_style(precision, checkpointing):
    """The named large sizes are GPT-2 style (LayerNorm, GELU, learned positions): the same check."""
    measured, estimate = measured_generator("tiny", flow_for("ddp", precision), checkpointing, style="gpt2")
    assert abs(estimate / measured - 1) <= TOLERANCE, (precision, checkpointing, estimate / measured)


@pytest.mark.parametrize("checkpointing", [False, True], ids=["full", "ckpt"])
@pytest.mark.parametrize("size", ["tiny", "patch"])
def test_tokenizer_activations_match_cpu_measurement(size, checkpointing):
    """The plan's meta runs (1 and 2 clips, extended linearly) against a real step on 3 clips."""
    frames, side, batch = 9, 32, 3
    _, _, activations = build_tokenizer(PlanSpec(stage="tokenizer", model=size, frames=frames, size=side))
    estimate = activations(flow_for("ddp", "fp32"), checkpointing)(batch)
    torch.manual_seed(0)
    model = VideoTokenizer.from_name(size)
    model.set_activation_checkpointing(checkpointing)
    video = torch.rand(batch, 3, frames, side, side) * 2 - 1

    def loss() -> torch.Tensor:
        recon, _ = model(video)
        return (recon - video).abs().mean()

    measured = measure_step(model, loss, [video])["peak"]
    assert abs(estimate / measured - 1) <= TOLERANCE, (size, checkpointing, estimate / measured)


@pytest.mark.parametrize("checkpointing", [False, True], ids=["full", "ckpt"])
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
@pytest.mark.parametrize("size", ["small", "3B"])
def test_generator_formula_matches_meta_run_under_cuda_autocast(size, strategy, checkpointing):
    """At full size the CPU cannot measure, and CPU autocast is not CUDA's: the formula against a meta
    run with CUDA autocast's casts (at the CPU's loss chunk, which the meta device gets)."""
    flow = flow_for(strategy, "bf16")
    with torch.device("meta"):
        model = Generator(generator_config_from_name(size, vocab_size=64000, block=(1, 1, 16), num_classes=101))
    if flow.param == 2:
        model = model.to(torch.bfloat16)
    model.set_activation_checkpointing(checkpointing)
    codes = torch.zeros(BATCH, 5, 16, 16, dtype=torch.long, device="meta")
    labels = torch.zeros(BATCH, dtype=torch.long, device="meta")
    meta = meta_peak(model, lambda: model.loss(codes, labels)["loss"], [codes, labels], flow)
    estimate = activation_bytes(GeneratorShape.from_model(model), flow, BATCH, checkpointing, CHUNK_ELEMENTS,
                                MIN_CHUNK_ROWS)
    assert abs(estimate / meta - 1) <= 0.05, (size, strategy, checkpointing, estimate / meta)


def test_param_counts_equal_the_real_model():
    spec = PlanSpec(model="tiny", grid=GRID, vocab=VOCAB)
    plan = make_plan(spec)
    real = Generator(generator_config_from_name("tiny", vocab_size=VOCAB, grid=GRID, block=(1, 1, GRID[2]),
                                               num_classes=101))
    assert plan.counts.params == sum(p.numel() for p in real.parameters())
    assert plan.counts.units == len(real.blocks)
    assert plan.counts.largest_unit == sum(p.numel() for p in real.blocks[0].parameters())
    tok = make_plan(PlanSpec(stage="tokenizer", model="patch", frames=9, size=32))
    assert tok.counts.params == sum(p.numel() for p in VideoTokenizer.from_name("patch").parameters())


def test_fsdp_shards_and_max_batch_is_the_largest_that_fits():
    counts = ModelCounts(params=8_000_000, root=1_000_000, largest_unit=1_000_000, units=7)
    flow = flow_for("fsdp", "bf16")
    fsdp, ddp = state_bytes("fsdp", counts, 8, flow), state_bytes("ddp", counts, 8, flow_for("ddp", "bf16"))
    assert fsdp["params"] * 8 == ddp["params"] and fsdp["optimizer"] * 8 == ddp["optimizer"]
    assert ddp["grads"] == 2 * ddp["params"]  # .grad and the reducer's buckets
    acts = lambda b: 10_000_000 * b  # noqa: E731
    usable = 500_000_000
    best = max_batch(fsdp, acts, usable)
    assert peak_bytes(fsdp, acts(best)) <= usable < peak_bytes(fsdp, acts(best + 1))
    assert max_batch(ddp, acts, 1000) == 0


def run_plan(*args: str) -> subprocess.CompletedProcess:
    return procs.run([sys.executable, "-m", "nbp_ext.plan", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli_3b_on_8_gpus_fits_more_under_fsdp():
    out = run_plan("--model", "3B", "--gpus", "8", "--gpu-memory", "80")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("GiB per GPU")):]
    assert len({len(line) for line in body}) == 1  # aligned columns
    assert body[0].split()[-4:] == ["ddp", "ddp+ckpt", "fsdp", "fsdp+ckpt"]
    assert body[-1].startswith("max micro-batch")
    ddp, ddp_ckpt, fsdp, fsdp_ckpt = (int(v) for v in body[-1].split()[-4:])
    assert fsdp > ddp and fsdp_ckpt > ddp_ckpt and fsdp_ckpt > fsdp > 0


def test_cli_json(capsys):
    assert main(["--model", "3B", "--gpus", "8", "--gpu-memory", "80", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in plan["rows"]}
    assert set(rows) == {"ddp", "ddp+ckpt", "fsdp", "fsdp+ckpt"}
    assert rows["fsdp"]["max_batch"] > rows["ddp"]["max_batch"]
    assert rows["fsdp"]["params"] * 8 >= rows["ddp"]["params"] and rows["ddp"]["gathered"] == 0
    assert plan["counts"]["units"] == 32 and plan["spec"]["gpus"] == 8
    assert all(r["total"] <= plan["usable_bytes"] or r["max_batch"] == 0 for r in rows.values())


BAD_INPUTS = [
    (["--model", "5B"], "--model"),
    (["--model", "3B", "--gpus", "0"], "--gpus"),
    (["--model", "3B", "--gpu-memory", "0"], "--gpu-memory"),
    (["--model", "3B", "--gpu-memory", "-8"], "--gpu-memory"),
    (["--model", "3B", "--grid", "5,16"], "--grid"),
    (["--model", "3B", "--grid", "5,x,16"], "--grid"),
    (["--model", "3B", "--precision", "fp16"], "--precision"),
    (["--stage", "tokenizer", "--model", "paper", "--frames", "16"], "--frames"),
]


@pytest.mark.parametrize("args,option", BAD_INPUTS)
def test_bad_inputs_give_one_line_errors(args, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], out.err
    assert out.out == ""


@pytest.mark.parametrize("args,option", [BAD_INPUTS[0], BAD_INPUTS[1], BAD_INPUTS[4]])
def test_cli_bad_inputs_exit_2_without_traceback(args, option):
    out = run_plan(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], out.stderr
    assert out.stdout == ""
