"""A tqdm progress bar over training steps showing loss and clips per second."""

from __future__ import annotations

import time

from tqdm import tqdm


class StepProgress:
    def __init__(self, total_steps: int, start_step: int = 0, desc: str = "train", enabled: bool = True):
        self.bar = tqdm(total=total_steps, initial=start_step, desc=desc, unit="step", disable=not enabled,
                        dynamic_ncols=True, mininterval=1.0)
        self._t = time.perf_counter()
        self._clips = 0

    def step(self, clips: int, **metrics: float) -> float:
        """Advance one step; returns the clips/s since the last call that showed numbers."""
        self._clips += clips
        elapsed = time.perf_counter() - self._t
        rate = self._clips / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix({**{k: f"{v:.4g}" for k, v in metrics.items()}, "clips/s": f"{rate:.2f}"}, refresh=False)
        self.bar.update(1)
        return rate

    def reset_rate(self) -> None:
        self._t, self._clips = time.perf_counter(), 0

    def write(self, line: str) -> None:
        self.bar.write(line)

    def close(self) -> None:
        self.bar.close()
