"""python export/to_trt.py: a trained checkpoint -> one folder run_engine can use.

By default the newest ``runs/nbp-*`` run of ``python -m nbp_ext.train`` (its ``generator/``) with the
tokenizer that its ``generator.json`` records (checked against the SHA-256 recorded there).
Writes prefill.onnx (prefix + start block; no input for an unconditional model),
step.onnx (one block against per-layer KV caches of a fixed length; fully static), decoder.onnx
(codes -> frames), encoder.onnx for frame prediction, TensorRT engines where TensorRT and a GPU
exist, and manifest.json. --precision fp16 or bf16 exports the graphs in that type (softmax
statistics, logits and the encoder stay fp32; export/precision.py), and TensorRT builds strongly
typed engines from them. Each graph passes onnx.checker and an ONNX Runtime vs PyTorch comparison
in its precision (max |diff| <= atol + rtol * max |torch|: 1e-4 for fp32, 1e-2 for fp16, 5e-2 for
bf16, which ONNX Runtime runs widened to fp32) or the export fails. The attention op is exported through
a custom translation table into standard opset-18 ops (export/onnx_attention.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: `python export/to_trt.py`
    sys.path.insert(0, str(ROOT))

from export.precision import PRECISIONS  # noqa: E402


def latest_checkpoint(runs: Path) -> Path | None:
    """Newest ``runs/nbp-*`` run of ``python -m nbp_ext.train`` that holds a generator."""
    from nbp_ext.train.run_dir import latest_run_dir

    return latest_run_dir(runs, "nbp", must_contain="generator/config.json")


def find_tokenizer(checkpoint: Path, given: Path | None) -> tuple[Path, str | None]:
    """(tokenizer folder, SHA-256 its weights must have or None): --tokenizer, else the one that the
    run's generator.json records (python -m nbp_ext.train writes it)."""
    from export.nbp_adapter import RUN_INFO, recorded_tokenizer

    if given is not None:
        if not (given / "config.json").is_file():
            raise FileNotFoundError(f"--tokenizer: {given} holds no config.json (a saved VideoTokenizer folder)")
        return given, None
    run = checkpoint.parent if (checkpoint / "config.json").is_file() and checkpoint.name == "generator" else checkpoint
    tok, digest = recorded_tokenizer(run)
    if tok is None:
        raise FileNotFoundError(f"--tokenizer: {run / RUN_INFO} records no tokenizer; give --tokenizer")
    if not (tok / "config.json").is_file():
        raise FileNotFoundError(f"--tokenizer: the tokenizer {tok} recorded in {run / RUN_INFO} does not exist "
                                "(moved or deleted?); give --tokenizer")
    return tok, digest


def check_tokenizer(tokenizer_dir: Path, digest: str | None, vocab_size: int):
    """The tokenizer, checked against the hash the run recorded and the generator's vocabulary."""
    from nbp_ext.sample import load_tokenizer
    from export.manifest import sha256_file

    if digest:
        weights = tokenizer_dir / "model.safetensors"
        got = sha256_file(weights) if weights.is_file() else None
        if got != digest:
            raise ValueError(f"--tokenizer: {weights} has SHA-256 {got}, but the generator was trained on tokens of a "
                             f"tokenizer with {digest}: give the matching --tokenizer")
    return load_tokenizer(tokenizer_dir, vocab_size, "cpu").float()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python export/to_trt.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="generator run (runs/nbp-*) or generator folder (default: the newest runs/nbp-* under --runs)")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder (default: the one the run's generator.json records)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where python -m nbp_ext.train wrote its runs (default: runs/ in the current folder)")
    p.add_argument("--output", type=Path, default=Path("engines"), help="export folder (default: engines/)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="type of the ONNX graphs and so of the strongly typed TensorRT engines; softmax statistics, "
                        "logits and the encoder stay fp32 (default: fp32)")
    p.add_argument("--max-batch", type=int, default=1, help="videos per run of the graphs (default: 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--guidance", dest="guidance", action="store_true", default=None,
                   help="graphs carry the null-class stream for classifier-free guidance "
                        "(default: on for class-conditional models, off otherwise)")
    g.add_argument("--no-guidance", dest="guidance", action="store_false", help="conditional stream only")
    p.add_argument("--guidance-scale", type=float, default=None, help="default guidance scale written to the manifest")
    p.add_argument("--no-engines", action="store_true", help="ONNX only, even where TensorRT is available")
    p.add_argument("--fps", type=int, default=8, help="frame rate written into the videos (default: 8)")
    p.add_argument("--verbose", action="store_true", help="show the exporter's progress")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from export.nbp_adapter import GeneratorUnavailable, generator_folder, load_generator, video_shape
        from export.onnx_check import ParityError
        from export.pipeline import export_folder

        if args.max_batch < 1:
            raise ValueError(f"--max-batch must be >= 1, got {args.max_batch}")
        checkpoint = args.checkpoint or latest_checkpoint(args.runs)
        if checkpoint is None:
            raise FileNotFoundError(f"--checkpoint: no generator run (nbp-*/generator/) under {args.runs}; train one with "
                                    "python -m nbp_ext.train or pass --checkpoint")
        if not checkpoint.exists():
            raise FileNotFoundError(f"--checkpoint: {checkpoint} does not exist")
        model, adapter, spec, sampling = load_generator(checkpoint)
        tokenizer_dir, digest = find_tokenizer(checkpoint, args.tokenizer)
        tokenizer = check_tokenizer(tokenizer_dir, digest, spec.vocab_size)
        video = video_shape(spec.latent_grid, tokenizer.config.spatial_factor)
        guidance = spec.prefix_kind == "class" if args.guidance is None else args.guidance
        if args.guidance_scale is not None:
            sampling = {**sampling, "guidance_scale": args.guidance_scale}
        print(f"to_trt: generator {checkpoint} ({spec.prefix_kind} prefix, {spec.num_blocks} blocks of {spec.block_len}), "
              f"tokenizer {tokenizer_dir}")
        export_folder(adapter, spec, tokenizer, args.output, video=video, max_batch=args.max_batch, guidance=guidance,
                      precision=args.precision, fps=args.fps, sampling=sampling, verbose=args.verbose,
                      checkpoint={"generator": generator_folder(checkpoint), "tokenizer": tokenizer_dir},
                      build_engines=not args.no_engines)
    except (FileNotFoundError, ValueError, GeneratorUnavailable, ParityError) as e:
        print(f"to_trt: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
