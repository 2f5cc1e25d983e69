"""Where the study stands: which run of how many, the time spent and the time left.

The time left is the runs still to do times the mean time of a finished run (training and scoring),
counting runs finished by earlier invocations from their records.
"""

from __future__ import annotations

import time
from typing import Callable


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class StudyProgress:
    def __init__(self, total: int, log: Callable[[str], None], clock=time.monotonic):
        self.total, self.log, self.clock = total, log, clock
        self.start = clock()
        self.durations: list[float] = []  # seconds of each finished run
        self.done = 0

    def skipped(self, index: int, name: str, seconds: float | None) -> None:
        """A run finished before: counted, and its recorded time joins the estimate."""
        self.done += 1
        if seconds:
            self.durations.append(seconds)
        self.log(f"[run {index + 1}/{self.total}] {name}: done before, skipped")

    def begin(self, index: int, name: str, what: str) -> None:
        left = self.total - self.done
        eta = (f"about {minutes(left * sum(self.durations) / len(self.durations))} left for {left} run(s)"
               if self.durations else "time left known after the first run")
        self.log(f"[run {index + 1}/{self.total}] {name}: {what} ({minutes(self.clock() - self.start)} so far; {eta})")

    def finished(self, index: int, name: str, seconds: float, summary: str) -> None:
        self.done += 1
        self.durations.append(seconds)
        self.log(f"[run {index + 1}/{self.total}] {name}: finished in {minutes(seconds)}: {summary}")
