"""``--precision`` of the training stages: what auto picks, what bf16 computes, and bad values."""

import pytest
import torch

from nbp_ext.train.precision import autocast, native_bf16, resolve_precision


def test_auto_follows_the_hardware_and_explicit_choices_stay():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("auto", cpu, cpu_bf16=False) == "fp32"  # the tokenizer's choice on a CPU
    assert resolve_precision("fp32", cpu) == "fp32"
    if native_bf16(cpu):
        assert resolve_precision("bf16", cpu) == "bf16"
    else:
        with pytest.raises(ValueError, match="--precision bf16 needs bf16 instructions"):
            resolve_precision("bf16", cpu)


def test_bf16_on_a_device_without_it_names_the_device_and_the_way_out():
    # the meta device has no bf16 hardware, so the check fails on every machine
    with pytest.raises(ValueError, match=r"--precision bf16 needs bf16 instructions .* which meta lacks; "
                                         r"use --precision fp32"):
        resolve_precision("bf16", torch.device("meta"))


def test_bad_precision_names_the_option():
    with pytest.raises(ValueError, match=r"--precision must be one of \('auto', 'fp32', 'bf16'\), got 'fp16'"):
        resolve_precision("fp16", torch.device("cpu"))


def test_autocast_runs_matmuls_in_the_chosen_type_and_keeps_fp32_weights():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with autocast("bf16", torch.device("cpu")):
        y16 = layer(x)
    with autocast("fp32", torch.device("cpu")):
        y32 = layer(x)
    assert y16.dtype == torch.bfloat16 and y32.dtype == torch.float32
    assert layer.weight.dtype == torch.float32
    torch.testing.assert_close(y16.float(), y32, atol=5e-2, rtol=2e-2)
