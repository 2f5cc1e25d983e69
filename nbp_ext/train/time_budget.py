"""Fit a training run into a wall-clock limit (``--time-limit``) by choosing its step count.

The stage trains with the step count it was given as a ceiling. While it runs, ``TimeBudget``
measures how long an optimizer step takes and how long each periodic extra (held-out evaluation,
sample videos, checkpoint) takes, and ``plan()`` returns the largest step count whose remaining
steps, the extras they trigger and the closing evaluation, samples and checkpoint fit in the time
left, less a safety margin. The stage re-plans at every logging interval and points its cosine
schedule at the planned count, so a run on a slow machine takes fewer steps and still ends its
schedule, and one on a fast machine takes up to the ceiling. Without a limit ``plan()`` returns the
ceiling.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import replace

from .distributed import DistInfo, broadcast_int
from .schedule import retarget

MARGIN = 0.04  # share of the limit kept free for what the estimates miss


class TimeBudget:
    """``limit_s``: seconds from construction (None: no limit); ``max_steps``: the ceiling;
    ``guesses``: the seconds an extra of each kind is assumed to take, in units of a training step,
    until one has been timed; ``clock``: seconds, monotonic (tests pass their own)."""

    def __init__(self, limit_s: float | None, max_steps: int, guesses: dict[str, float] | None = None,
                 skip_first: int = 2, clock=time.monotonic):
        if limit_s is not None and limit_s <= 0:
            raise ValueError(f"the time limit must be > 0 seconds, got {limit_s}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.limit_s, self.max_steps = limit_s, max_steps
        self.guesses = dict(guesses or {})
        self.clock = clock
        self.start = self._mark = clock()
        self._skip = skip_first  # the first steps pay for warm-up (allocations, caches) and are not timed
        self._steps: deque[float] = deque(maxlen=50)
        self._extra: dict[str, float] = {}  # kind -> the latest duration

    @property
    def enabled(self) -> bool:
        return self.limit_s is not None

    def elapsed(self) -> float:
        return self.clock() - self.start

    def step_done(self) -> None:
        """Call after every optimizer step: times it (extras in between are timed on their own)."""
        now = self.clock()
        if self._skip > 0:
            self._skip -= 1
        else:
            self._steps.append(now - self._mark)
        self._mark = now

    @contextmanager
    def extra(self, kind: str):
        """Time an evaluation, a sample grid or a checkpoint: ``with budget.extra("eval"): ...``."""
        t = self.clock()
        try:
            yield
        finally:
            now = self.clock()
            self._extra[kind] = now - t
            self._mark = now

    def step_seconds(self) -> float | None:
        """Median seconds of the recent optimizer steps (None before any was timed)."""
        return statistics.median(self._steps) if self._steps else None

    def extra_seconds(self, kind: str) -> float:
        if kind in self._extra:
            return self._extra[kind]
        return self.guesses.get(kind, 0.0) * (self.step_seconds() or 0.0)

    def cost(self, step: int, total: int, every: dict[str, int]) -> float:
        """Seconds from now until a run at ``step`` of ``total`` steps ends, closing extras included."""
        per_step = self.step_seconds() or 0.0
        seconds = (total - step) * per_step
        for kind, n in every.items():
            if n > 0:
                seconds += (total // n - step // n) * self.extra_seconds(kind)
            seconds += self.extra_seconds(kind)  # the closing one (counted even where it coincides)
        return seconds

    def plan(self, step: int, every: dict[str, int]) -> int:
        """The step count to train to: the largest in [step, max_steps] that fits in the time left.
        ``every``: kind -> interval in steps of the periodic extras."""
        if not self.enabled or self.step_seconds() is None:
            return self.max_steps
        left = self.limit_s * (1 - MARGIN) - self.elapsed()
        lo, hi = step, self.max_steps
        if self.cost(step, hi, every) <= left:
            return hi
        while lo < hi:  # cost grows with the total: the largest total with cost <= left
            mid = (lo + hi + 1) // 2
            if self.cost(step, mid, every) <= left:
                lo = mid
            else:
                hi = mid - 1
        return lo


def follow_plan(budget: TimeBudget, step: int, every: dict[str, int], cfg, scheduler, bar, info: DistInfo):
    """Re-plan a stage's step count at ``step`` and make the run follow it: the same count on every
    process, the cosine schedule ending on it, the progress bar's total. Returns the stage config,
    with ``steps`` replaced where the plan changed it (so that checkpoints record the planned count)."""
    planned = broadcast_int(budget.plan(step, every), info)
    if planned != cfg.steps:
        cfg = replace(cfg, steps=planned)
        retarget(scheduler, cfg.warmup, planned)
        bar.set_total(planned)
    return cfg
