"""Memory plan of a training run: per-GPU bytes under DDP and FSDP, with and without activation
checkpointing, and the largest micro-batch that fits (``python -m nbp_ext.plan --help``).

memory.py          parameters, gradients, optimizer state, FSDP's gathered units; the fit search
flow.py            the dtypes of a step under each precision and strategy
models.py          the models built on the meta device, with their activation estimates
generator_acts.py  the generator's activations by a per-layer formula
meta_run.py        activations from a run on the meta device, with CUDA autocast's casts (tokenizer)
measure.py         the CPU measurement the estimates are checked against (python_tests/test_plan.py)
cli.py             the command: options, table, JSON
"""

from __future__ import annotations

from .flow import Flow, flow_for
from .memory import GIB, ModelCounts, Plan, PlanSpec, Row, make_plan

__all__ = ["Flow", "GIB", "ModelCounts", "Plan", "PlanSpec", "Row", "flow_for", "make_plan"]
