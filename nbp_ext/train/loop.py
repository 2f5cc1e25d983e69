"""The training loop every stage uses: the generator, the tokenizer (with its discriminator) and the
judge classifier.

A stage (``Stage`` below) supplies its model, data, loss and what it evaluates; ``train`` does the
rest: processes and parallelism (``parallel.py``), micro-batches and accumulation, precision,
clipping, the warmup-cosine schedule, the time budget, the progress bar, TensorBoard and
``metrics.jsonl``, evaluation / sample / checkpoint intervals, Ctrl-C that saves, a stalled loader
that saves and names its file, and resume from the latest finished checkpoint (``checkpoint.py``)
on any number of processes.

The hot path does not wait for the device: losses are read on the host only at logging steps.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
import os
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..data.loader import LoaderStalled
from ..data.training_order import TrainingOrder
from .checkpoint import (CheckpointError, Checkpointer, Part, latest_checkpoint, load_parts, read_train_state,
                         remove_unfinished)
from .compiled import compiled_or_eager
from .distributed import DistInfo, all_reduce_mean, barrier, cleanup, setup_distributed, shared_run_dir
from .options import RUNTIME_OPTIONS, LoopOptions
from .parallel import Parallel, parallelize, resolve_parallel
from .precision import autocast, resolve_precision
from .progress import StepProgress
from .schedule import warmup_cosine
from .tensorboard import ScalarWriter
from .time_budget import TimeBudget, follow_plan

METRICS = "metrics.jsonl"


class Stage(ABC):
    """What a training stage supplies. ``model`` is built on the loop's device with the same initial
    weights on every process; ``method`` is the model's method the training step calls."""

    name: str = "train"  # of the run folder (runs/<name>-<time>) and the progress bar
    title: str = "model"  # in the closing line
    method: str = "forward"
    model: nn.Module
    train_size: int  # clips in the training set
    cpu_bf16: bool = True  # may --precision auto pick bf16 on a CPU
    tokens_per_clip: int | None = None  # the progress bar shows tokens/s instead of clips/s
    model_options: tuple[str, ...] = ()  # options a resumed run cannot change
    time_guesses: dict[str, float] = {"eval": 2, "samples": 2, "ckpt": 1}
    step: int = 0  # the optimizer steps taken so far, kept up to date by the loop

    @abstractmethod
    def optimizer(self, model: nn.Module, cfg: LoopOptions) -> torch.optim.Optimizer:
        """The model's optimizer (built after the model is sharded)."""

    @abstractmethod
    def loader(self, order: TrainingOrder) -> Any:
        """An iterable of micro-batches over the clips ``order`` yields (one epoch)."""

    @abstractmethod
    def loss(self, call: Callable, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, scalars to log as tensors) of a micro-batch; ``call`` runs the model's ``method``."""

    def prepare(self, parallel: Parallel, cfg: LoopOptions) -> dict[str, Part]:
        """After the model is prepared: further trained parts (a discriminator), by name."""
        return {}

    def after_step(self, step: int) -> dict[str, torch.Tensor]:
        """After the optimizer step: further updates (the discriminator's); scalars to log."""
        return {}

    def evaluate(self, model: nn.Module, step: int, write: Callable[[str], None]) -> dict[str, float]:
        """Main process: held-out scores (logged as val/<name>)."""
        return {}

    def samples(self, model: nn.Module, step: int, run_dir: Path, write: Callable[[str], None]) -> Path | None:
        """Main process: write sample videos; returns the file written."""
        return None

    def save_model(self, state: dict, run_dir: Path) -> None:
        """Main process: write the plain model folder (config.json + model.safetensors) from ``state``."""

    def new_run(self, run_dir: Path, cfg: LoopOptions) -> None:
        """Main process, new runs only: write the run's own records (args, info files)."""

    def epoch_start(self, epoch: int) -> None:
        """Before an epoch's loader starts (and its worker processes with it)."""

    def epoch_end(self, write: Callable[[str], None]) -> None:
        """After every epoch (e.g. the bad-file summary)."""

    def closing(self, run_dir: Path, last_sample: Path | None) -> None:
        """Main process: lines printed after the closing one (where the model and samples are)."""


def _resume_config(cfg: LoopOptions, saved: dict, model_options: tuple[str, ...], defaults: LoopOptions) -> LoopOptions:
    """The saved run's config, with the command line's runtime options; an option that would change
    the model is an error."""
    def plain(value):  # tuples as the JSON lists a checkpoint holds
        return list(value) if isinstance(value, tuple) else value

    for name in model_options:
        given, was = plain(getattr(cfg, name)), plain(saved.get(name))
        if given != plain(getattr(defaults, name)) and given != was:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"--resume: the run was trained with {flag} {was}; {flag} {given} would change the model "
                             "(start a new run for that)")
    known = {f.name for f in fields(cfg)}
    merged = {k: v for k, v in saved.items() if k in known}
    merged.update({k: getattr(cfg, k) for k in RUNTIME_OPTIONS})
    if cfg.parallel is None:  # the run's own choice unless the command line makes another
        merged["parallel"] = saved.get("parallel")
    return type(cfg)(**merged)


def _split_global_batch(cfg: LoopOptions, saved_state: dict, world_size: int) -> LoopOptions:
    """Keep the resumed run's global batch on ``world_size`` processes: the same clips per micro-batch
    with more or fewer accumulation steps, or else the same accumulation with other micro-batches."""
    global_batch = saved_state["global_batch"]
    if cfg.batch_size * cfg.grad_accum * world_size == global_batch:
        return cfg
    if global_batch % (cfg.batch_size * world_size) == 0:
        return replace(cfg, grad_accum=global_batch // (cfg.batch_size * world_size))
    if global_batch % (cfg.grad_accum * world_size) == 0:
        return replace(cfg, batch_size=global_batch // (cfg.grad_accum * world_size))
    raise ValueError(f"--resume: the run's global batch of {global_batch} clips ({saved_state['world_size']} processes) "
                     f"cannot be split evenly over {world_size} processes; resume on a number of processes that divides it")


def _check_writable(run_dir: Path) -> None:
    if not os.access(run_dir, os.W_OK):
        raise ValueError(f"run folder {run_dir} is not writable")


def _trim_metrics(run_dir: Path, step: int) -> None:
    """Drop the logged rows after ``step`` (a resumed run logs them again)."""
    path = run_dir / METRICS
    if path.is_file():
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except (json.JSONDecodeError, AttributeError):  # a line cut short by a crash
                continue
        path.write_text("".join(line + "\n" for line in keep))


class _Batches:
    """Micro-batches across epochs; knows the data position (epoch, clips consumed over all processes)."""

    def __init__(self, stage: Stage, order: TrainingOrder, epoch: int, consumed: int):
        self.stage, self.order = stage, order
        self.epoch, self.consumed = epoch, consumed
        if order.batches_per_epoch() == 0:
            raise ValueError(f"the training set has {order.size} clips, fewer than one global micro-batch of "
                             f"{order.window} (--batch-size x processes); lower --batch-size")
        self.loader = stage.loader(order)
        self._it: Iterator | None = None
        self.epoch_ended = False

    def next(self) -> Any:
        while True:
            if self._it is None:
                self.order.set_position(self.epoch, self.consumed)
                self.stage.epoch_start(self.epoch)
                self._it = iter(self.loader)
            try:
                batch = next(self._it)
                self.consumed += self.order.window
                return batch
            except StopIteration:
                self._it = None
                self.epoch, self.consumed = self.epoch + 1, 0
                self.epoch_ended = True


def train(cfg: LoopOptions, build_stage: Callable[[LoopOptions, DistInfo], Stage], model_options: tuple[str, ...] = ()) -> Path:
    """Train (or resume) the stage ``build_stage(cfg, info)`` returns; returns the run folder."""
    info = setup_distributed(cfg.device, cfg.dist_timeout)
    try:
        return _train(cfg, build_stage, model_options, info)
    except BaseException:
        cleanup(info, wait=False)
        raise


def _train(cfg: LoopOptions, build_stage, model_options, info: DistInfo) -> Path:
    device = info.device
    resume_from, saved = None, None
    if cfg.resume:
        resume_from = latest_checkpoint(Path(cfg.resume))
        saved = read_train_state(resume_from)
        if not isinstance(saved.get("config"), dict) or "global_batch" not in saved:
            raise CheckpointError(f"{resume_from}: the training state lacks its config")
        cfg = _resume_config(cfg, saved["config"], model_options, type(cfg)())
        cfg = _split_global_batch(cfg, saved, info.world_size)
    mode = resolve_parallel(cfg.parallel, info)

    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    stage = build_stage(cfg, info)
    precision = resolve_precision(cfg.precision, device, cpu_bf16=stage.cpu_bf16)
    budget = TimeBudget(cfg.time_limit * 60 if cfg.time_limit else None, cfg.steps, guesses=stage.time_guesses)
    # made only once the inputs are known to be good, so that a bad option leaves no empty run folder
    run_dir = shared_run_dir(info, cfg.resume or cfg.run_dir, cfg.runs_root, stage.name)
    _check_writable(run_dir)
    if info.is_main:
        removed = remove_unfinished(run_dir)
        if removed:
            print(f"removed {len(removed)} unfinished checkpoint(s): {', '.join(p.name for p in removed)}", flush=True)
        if saved is None:
            stage.new_run(run_dir, cfg)
    barrier(info)

    parallel = parallelize(stage.model, mode, info, stage.method, precision, cfg.activation_checkpointing)
    if info.is_main:
        print(f"{stage.title}: {precision} on {device}, {info.world_size} process(es), {mode}"
              f"{', activation checkpointing' if cfg.activation_checkpointing else ''}", flush=True)
    opt = stage.optimizer(stage.model, cfg)
    parts = {"model": Part(stage.model, opt), **stage.prepare(parallel, cfg)}
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.warmup, cfg.steps, cfg.lr_floor))
    step, epoch, consumed = 0, 0, 0
    if saved is not None:
        load_parts(resume_from, parts, saved, info)
        step, epoch, consumed = saved["step"], saved["epoch"], saved["consumed"]
        sched.load_state_dict(saved["scheduler"])
        if info.is_main:
            _trim_metrics(run_dir, step)
            print(f"resumed from {resume_from} (step {step}, {saved['world_size']} process(es), "
                  f"{saved.get('parallel', 'none')}) on {info.world_size} process(es), {mode}: micro-batches of "
                  f"{cfg.batch_size} clips x {cfg.grad_accum} per step", flush=True)

    order = TrainingOrder(stage.train_size, cfg.batch_size, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    batches = _Batches(stage, order, epoch, consumed)
    ckpt = Checkpointer(run_dir, info, keep=cfg.keep_checkpoints, async_save=cfg.async_checkpoint)
    writer = ScalarWriter(run_dir / "tb") if info.is_main else None
    bar = StepProgress(cfg.steps, step, desc=stage.name, enabled=cfg.progress and info.is_main,
                       tokens_per_clip=stage.tokens_per_clip)
    amp = autocast(precision, device)
    call = compiled_or_eager(parallel.call, cfg.compile, bar.write)
    global_batch = cfg.batch_size * cfg.grad_accum * info.world_size
    stop_at = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
    max_steps = cfg.steps
    best: dict = {}
    last_sample: Path | None = None

    def keep_rng():
        """Evaluation, samples and checkpoints leave the training's random streams as they were, so a
        run's steps do not depend on when they happen (or on whether it was resumed)."""
        return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])

    def log(scalars: dict) -> None:
        if writer is not None:
            writer.add_scalars(step, scalars)
            with open(run_dir / METRICS, "a") as f:
                f.write(json.dumps({"step": step, **scalars}) + "\n")

    def checkpoint(final: bool = False) -> None:
        state = {"epoch": batches.epoch, "consumed": batches.consumed, "global_batch": global_batch,
                 "parallel": mode, "scheduler": sched.state_dict(), "config": asdict(cfg)}
        ckpt.save(step, parts, state)
        if final:
            ckpt.finish()
        full = parallel.full_state()
        if info.is_main:
            stage.save_model(full, run_dir)

    def run_eval() -> None:
        nonlocal best
        model = parallel.plain_model()
        if info.is_main:
            scores = stage.evaluate(model, step, bar.write)
            if scores:
                best = scores
                log({f"val/{k}": v for k, v in scores.items() if isinstance(v, (int, float))})
        barrier(info)

    def run_samples() -> None:
        nonlocal last_sample
        model = parallel.plain_model()
        if info.is_main:
            path = stage.samples(model, step, run_dir, bar.write)
            last_sample = path or last_sample
        barrier(info)

    interrupted, stalled = False, None
    data_seconds, window_start = 0.0, time.perf_counter()
    try:
        while step < stop_at:
            scalars: dict[str, torch.Tensor] = {}
            stage.step = step
            for micro in range(cfg.grad_accum):
                t_wait = time.perf_counter()
                batch = batches.next()
                data_seconds += time.perf_counter() - t_wait
                if batches.epoch_ended:
                    batches.epoch_ended = False
                    stage.epoch_end(bar.write)
                with parallel.grad_sync(micro == cfg.grad_accum - 1), amp:
                    loss, micro_scalars = stage.loss(call, batch)
                (loss / cfg.grad_accum).backward()
                for k, v in micro_scalars.items():  # the step's scalars: means over its micro-batches
                    scalars[k] = scalars.get(k, 0) + v / cfg.grad_accum
            grad_norm = torch.nn.utils.clip_grad_norm_(stage.model.parameters(),
                                                       cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            scalars = {**scalars, **stage.after_step(step)}
            step += 1
            bar.step(global_batch)
            budget.step_done()
            if step % cfg.log_every == 0 or step == stop_at:
                if hasattr(grad_norm, "full_tensor"):  # a DTensor under fsdp
                    grad_norm = grad_norm.full_tensor()
                names = [*scalars, "grad_norm"]
                numbers = torch.stack([torch.as_tensor(v, dtype=torch.float32).reshape(()).to(device)
                                       for v in [*scalars.values(), grad_norm]])
                values = dict(zip(names, numbers.tolist()))  # the only host sync of a step
                grad_norm_value = values.pop("grad_norm")
                first = next(iter(values.values()))
                if not math.isfinite(first):
                    raise FloatingPointError(f"loss became {first} at step {step}; lower --lr or check the data")
                values = all_reduce_mean(values, info)
                rate = bar.rate()
                waited = data_seconds / max(1e-9, time.perf_counter() - window_start)  # share of the time spent waiting for data
                data_seconds, window_start = 0.0, time.perf_counter()
                bar.show(loss=first, **{"data%": 100 * waited})
                extra = {"tokens_per_s": rate * stage.tokens_per_clip} if stage.tokens_per_clip else {"clips_per_s": rate}
                log({**values, "lr": sched.get_last_lr()[0], "grad_norm": grad_norm_value, "data_wait_share": waited,
                     **extra})
                bar.reset_rate()
                if budget.enabled:
                    cfg = follow_plan(budget, step, {"eval": cfg.eval_every, "samples": cfg.sample_every,
                                                     "ckpt": cfg.ckpt_every}, cfg, sched, bar, info)
                    stop_at = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
            if step % cfg.eval_every == 0:
                with budget.extra("eval"), keep_rng():
                    run_eval()
            if step % cfg.sample_every == 0:
                with budget.extra("samples"), keep_rng():
                    run_samples()
            if step % cfg.ckpt_every == 0 and step < stop_at:
                with budget.extra("ckpt"), keep_rng():
                    checkpoint()
    except KeyboardInterrupt:
        interrupted = True
    except LoaderStalled as e:
        stalled = e
    if stalled is not None:
        bar.close()
        if info.enabled:  # the other processes are inside a step: a collective checkpoint would wait on them
            raise LoaderStalled(f"{stalled}; the last periodic checkpoint stands (continue with --resume {run_dir})") from None
        with keep_rng():
            checkpoint(final=True)
        raise LoaderStalled(f"{stalled}; checkpoint saved at step {step}, continue with --resume {run_dir}") from None
    if interrupted:
        with keep_rng():
            checkpoint(final=True)
        bar.close()
        if info.is_main:
            print(f"\ninterrupted at step {step}; checkpoint saved, continue with --resume {run_dir}", flush=True)
        raise KeyboardInterrupt
    with keep_rng():
        if step % cfg.eval_every != 0:
            run_eval()
        checkpoint(final=True)
        if step % cfg.sample_every != 0:
            run_samples()
    bar.close()
    if info.is_main:
        (run_dir / "eval.json").write_text(json.dumps({"step": step, **best}, indent=2) + "\n")
        if writer is not None:
            writer.close()
        done = "finished" if step >= cfg.steps else f"stopped at step {step} of {cfg.steps} (continue with --resume {run_dir})"
        if budget.enabled:
            done += (f" in {budget.elapsed() / 60:.1f} min of the {cfg.time_limit:g}-minute limit: {cfg.steps} steps of "
                     f"{budget.step_seconds():.3f} s (--steps {max_steps})")
        print(f"{stage.title} training {done} ({global_batch} clips per step, {info.world_size} process(es), {mode}); "
              f"results in {run_dir}", flush=True)
        stage.closing(run_dir, last_sample)
    cleanup(info)
    return run_dir
