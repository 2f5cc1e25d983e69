"""The training progress bar: clips/s by default, tokens/s for the generator, and a clear error."""

import re

import pytest

from nbp_ext.train.progress import StepProgress


def test_generator_bar_shows_tokens_per_second(capsys):
    bar = StepProgress(10, desc="generator", tokens_per_clip=432)
    rate = bar.step(16, loss=0.5)
    shown = bar.bar.postfix
    bar.close()
    m = re.search(r"tok/s=(\d+)", shown)
    assert m is not None and "clips/s" not in shown, shown
    assert int(m.group(1)) == round(rate * 432)
    assert "loss=0.5" in shown
    assert "tok/s" in capsys.readouterr().err  # what the user sees on the terminal


def test_default_bar_shows_clips_per_second():
    bar = StepProgress(10, desc="tokenizer")
    rate = bar.step(8, loss=0.25)
    shown = bar.bar.postfix
    bar.close()
    assert re.search(r"clips/s=[\d.]+", shown) and "tok/s" not in shown, shown
    assert rate > 0


def test_tokens_per_clip_must_be_positive():
    with pytest.raises(ValueError, match="tokens_per_clip must be >= 1"):
        StepProgress(10, tokens_per_clip=0)
