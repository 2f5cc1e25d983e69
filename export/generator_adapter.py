"""The generator under the export contract (export/generator_graphs.py), and loading it.

``GeneratorAdapter`` is the model's own explicit-cache methods under the contract's names:
``prefill(prefix)`` is ``Generator.prefill_explicit`` (the prefix as the model takes it: class ids,
context tokens, or nothing) and ``step(tokens, position, past_k, past_v)`` is
``Generator.step_explicit``; the exported graphs therefore trace the model's code.

``load_generator`` reads a run of ``python -m nbp_ext.train`` (or a bare generator folder).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch import nn

from export.generator_graphs import GeneratorSpec

from nbp_ext.generate.sampling_config import NO_GUIDANCE, SamplingConfig
from nbp_ext.runs import GENERATOR_DIR, RUN_INFO, read_run_info


class GeneratorUnavailable(RuntimeError):
    pass


class GeneratorAdapter(nn.Module):
    """The export contract's prefill and step, delegated to the generator's explicit-cache methods."""

    def __init__(self, model):
        super().__init__()
        self.model = model.eval()
        self.cfg = model.config

    def prefill(self, prefix):
        """prefix (R, P) int64 (P = 0 for an unconditional model) -> logits (R, S, V), keys, values (R, Hkv, P + S, D)."""
        cond = {"class": lambda: prefix[:, 0], "frames": lambda: prefix, "none": lambda: None}[self.cfg.condition]()
        return self.model.prefill_explicit(cond, prefix.shape[0])

    def step(self, tokens, position, past_k, past_v):
        """tokens (R, n), position (1,) int64, caches (R, Hkv, N, D) -> logits (R, n, V), keys, values (R, Hkv, n, D)."""
        return self.model.step_explicit(tokens, position, past_k, past_v)


def generator_spec(model) -> GeneratorSpec:
    cfg = model.config
    fields = dict(vocab_size=cfg.vocab_size, num_layers=cfg.n_layer, kv_heads=cfg.n_kv_head, head_dim=cfg.head_dim,
                  latent_grid=tuple(cfg.grid), block_shape=tuple(cfg.block), prefix_kind=cfg.condition,
                  prefix_len=cfg.prefix_len, start=cfg.start)
    if cfg.condition == "class":
        fields.update(num_classes=cfg.num_classes, null_class=cfg.num_classes)
    elif cfg.condition == "frames":
        fields.update(context_frames=cfg.context_frames)
    spec = GeneratorSpec(**fields)
    if spec.num_steps != cfg.num_steps or spec.max_cache_len > cfg.max_len:
        raise GeneratorUnavailable(f"the export contract and the model disagree: {spec.num_steps} steps and a cache "
                                   f"of {spec.max_cache_len} vs {cfg.num_steps} steps and max_len {cfg.max_len}")
    return spec


def video_shape(grid: tuple[int, int, int], spatial_factor: int) -> tuple[int, int, int]:
    """(frames, height, width) that a tokenizer decodes a (T', H', W') grid to (time x4 after the first
    frame, space x its spatial factor: 8 for the causal CNN, the patch size for the patch tokenizer)."""
    t, h, w = grid
    return 1 + 4 * (t - 1), spatial_factor * h, spatial_factor * w


def generator_folder(path: Path) -> Path:
    """A run folder (runs/generator-*) -> its generator/; a generator folder stays as it is."""
    path = Path(path)
    if (path / GENERATOR_DIR / "config.json").is_file():
        return path / GENERATOR_DIR
    if (path / "config.json").is_file():
        return path
    raise FileNotFoundError(f"--checkpoint: {path} is neither a generator run (with {GENERATOR_DIR}/config.json) "
                            f"nor a generator folder (with config.json)")


def run_info(run: Path) -> dict:
    """generator.json of a run folder, or {} where there is none."""
    info = read_run_info(run)
    if not isinstance(info.get("sampling", {}), dict):
        raise ValueError(f"{Path(run) / RUN_INFO}: expected a JSON object with \"sampling\" an object")
    return info


def recorded_tokenizer(run: Path) -> tuple[Path | None, str | None]:
    """(tokenizer folder, SHA-256 of its weights) that generator.json of a run records, or (None, None)."""
    info = run_info(run)
    tok = info.get("tokenizer")
    return (Path(tok) if tok else None), info.get("tokenizer_sha256")


def load_generator(path):
    """(model, adapter, spec, sampling defaults) of a generator run or folder; the defaults are the
    run's (generator.json), else the paper's."""
    from nbp_ext.models import Generator

    folder = generator_folder(Path(path))
    try:
        model = Generator.from_pretrained(folder).float().eval()
    except ValueError as e:  # nbp_ext names the file and what is wrong with it
        raise ValueError(f"--checkpoint: {e}") from e
    except (OSError, KeyError, TypeError, RuntimeError) as e:
        raise GeneratorUnavailable(f"--checkpoint: cannot load the Generator in {folder}: {e}") from e
    spec = generator_spec(model)
    info = run_info(folder.parent) if folder.name == GENERATOR_DIR else {}
    rec = {**asdict(SamplingConfig()), **info.get("sampling", {})}  # checked with the options (export/to_trt.py)
    top_k = rec["top_k"]  # its type is checked with the other defaults (export/to_trt.py)
    sampling = {"temperature": rec["temperature"], "top_p": rec["top_p"],
                "top_k": min(top_k, spec.vocab_size) if isinstance(top_k, int) else top_k,
                "guidance_scale": rec["guidance_scale"] if spec.prefix_kind == "class" else NO_GUIDANCE}
    return model, GeneratorAdapter(model), spec, sampling
