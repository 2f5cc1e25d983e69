"""A tqdm progress bar over training steps showing loss, clips (or tokens) per second and the ETA."""

from __future__ import annotations

import time

from tqdm import tqdm


class StepProgress:
    """``tokens_per_clip``: when given, the bar shows tokens/s instead of clips/s (the generator's
    throughput unit); ``step`` returns clips/s either way."""

    def __init__(self, total_steps: int, start_step: int = 0, desc: str = "train", enabled: bool = True,
                 tokens_per_clip: int | None = None):
        if tokens_per_clip is not None and tokens_per_clip < 1:
            raise ValueError(f"tokens_per_clip must be >= 1, got {tokens_per_clip}")
        self.tokens_per_clip = tokens_per_clip
        self.bar = tqdm(total=total_steps, initial=start_step, desc=desc, unit="step", disable=not enabled,
                        dynamic_ncols=True, mininterval=1.0)
        self._t = time.perf_counter()
        self._clips = 0

    def step(self, clips: int, **metrics: float) -> float:
        """Advance one step of ``clips`` clips; returns the clips/s since ``reset_rate``. ``metrics``
        (host numbers) are shown with the rate; without them the shown numbers stay until ``show``."""
        self._clips += clips
        rate = self.rate()
        if metrics:
            self._show(rate, metrics)
        self.bar.update(1)
        return rate

    def rate(self) -> float:
        """Clips per second since ``reset_rate``."""
        elapsed = time.perf_counter() - self._t
        return self._clips / elapsed if elapsed > 0 else 0.0

    def show(self, **metrics: float) -> None:
        """Show ``metrics`` and the current rate beside the bar."""
        self._show(self.rate(), metrics)

    def _show(self, rate: float, metrics: dict[str, float]) -> None:
        shown = {"clips/s": f"{rate:.2f}"} if self.tokens_per_clip is None else {"tok/s": f"{rate * self.tokens_per_clip:.0f}"}
        self.bar.set_postfix({**{k: f"{v:.4g}" for k, v in metrics.items()}, **shown}, refresh=False)

    def set_total(self, total_steps: int) -> None:
        """A new step count (a time limit's plan)."""
        self.bar.total = total_steps
        self.bar.refresh()

    def reset_rate(self) -> None:
        self._t, self._clips = time.perf_counter(), 0

    def write(self, line: str) -> None:
        self.bar.write(line)

    def close(self) -> None:
        self.bar.close()
