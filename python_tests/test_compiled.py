"""compiled_or_eager: compiled where torch.compile works, eager (and said once) where it raises."""

import torch

from nbp_ext.train import compiled as compiled_mod
from nbp_ext.train.compiled import compiled_or_eager


def affine(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(2.0 * x + 1.0)


def test_disabled_returns_the_function_itself():
    assert compiled_or_eager(affine, enabled=False) is affine


def test_compiled_function_gives_the_eager_result():
    f = compiled_or_eager(affine, enabled=True, warn=lambda m: (_ for _ in ()).throw(AssertionError(m)))
    x = torch.randn(5, 7)
    torch.testing.assert_close(f(x), affine(x))


def test_a_failing_compilation_falls_back_to_eager_and_says_so_once(monkeypatch):
    calls = []

    def broken_compile(fn):
        def run(*args, **kwargs):
            calls.append("compiled")
            raise RuntimeError("no C++ compiler found\nsecond line")
        return run

    monkeypatch.setattr(compiled_mod.torch, "compile", broken_compile)
    messages = []
    f = compiled_or_eager(affine, enabled=True, warn=messages.append)
    x = torch.randn(3)
    torch.testing.assert_close(f(x), affine(x))
    torch.testing.assert_close(f(x), affine(x))
    assert calls == ["compiled"], "after a failure the compiled function must not be tried again"
    assert len(messages) == 1 and "RuntimeError: no C++ compiler found" in messages[0]
    assert "second line" not in messages[0] and "training without it" in messages[0]
