"""The generator runs of a study, in the order they are trained.

Seed 0 of every task and shape comes first, then seed 1, and so on: a study stopped half way already
has every shape once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import StudyConfig


@dataclass(frozen=True)
class RunSpec:
    task: str  # "frames" or "class"
    shape: str  # a name of shapes.SHAPE_NAMES
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name under <out>/runs."""
        return f"{self.task}-{self.shape}-s{self.seed}"


def study_runs(cfg: StudyConfig) -> list[RunSpec]:
    runs = []
    for seed in range(cfg.seeds):
        runs += [RunSpec("frames", shape, seed) for shape in cfg.shapes]
        runs += [RunSpec("class", shape, seed) for shape in cfg.class_shapes]
    return runs
