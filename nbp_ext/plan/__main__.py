"""``python -m nbp_ext.plan --model 3B --gpus 8 --gpu-memory 80``: per-GPU memory of a training run."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
