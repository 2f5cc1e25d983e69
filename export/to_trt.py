"""python export/to_trt.py: a trained checkpoint -> one folder run_engine can use.

By default the newest ``runs/generator-*`` run of ``python -m nbp_ext.train`` (its ``generator/``) with the
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

Bad input ends with one line ``error: ...`` naming the option or file and a documented exit code
(nbp_ext/cli_errors.py): 0 done; 1 an error the command names (an option out of range, a missing,
truncated or corrupt checkpoint, a config.json of the wrong shape, a graph failing its check);
2 a command line the parser rejects; 3 an unexpected failure (NBP_DEBUG=1 shows the traceback);
130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: `python export/to_trt.py`
    sys.path.insert(0, str(ROOT))

from export.precision import PRECISIONS  # noqa: E402


def latest_checkpoint(runs: Path) -> Path | None:
    """Newest ``runs/generator-*`` run of ``python -m nbp_ext.train`` that holds a generator."""
    from nbp_ext.runs import latest_run_dir

    return latest_run_dir(runs, "generator", must_contain="generator/config.json")


def find_tokenizer(checkpoint: Path, given: Path | None) -> tuple[Path, str | None]:
    """(tokenizer folder, SHA-256 its weights must have or None): --tokenizer, else the one that the
    run's generator.json records (python -m nbp_ext.train writes it)."""
    from export.generator_adapter import RUN_INFO, recorded_tokenizer

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
    from export.manifest import sha256_file

    if digest:
        weights = tokenizer_dir / "model.safetensors"
        got = sha256_file(weights) if weights.is_file() else None
        if got != digest:
            raise ValueError(f"--tokenizer: {weights} has SHA-256 {got}, but the generator was trained on tokens of a "
                             f"tokenizer with {digest}: give the matching --tokenizer")
    try:
        from nbp_ext.runs import load_tokenizer

        return load_tokenizer(tokenizer_dir, vocab_size, "cpu").float()
    except (OSError, KeyError, RuntimeError) as e:  # ValueErrors already name the file
        raise ValueError(f"--tokenizer: cannot load the VideoTokenizer in {tokenizer_dir}: {e}") from e


# Bounds of the options. The graphs are traced at a fixed batch whose KV caches the export holds in
# memory several times over; 256 videos per run is far above what a single GPU serves at once.
MAX_BATCH = 256
MAX_FPS = 1000  # Y4M stores the rate as a fraction; beyond this it is a typo, not a video


def check_int(flag: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{flag} must be in [{lo}, {hi}], got {value}")


def check_float(flag: str, value: float | None, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> None:
    """A float option: finite (NaN and inf would end up as invalid JSON in the manifest), within bounds."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError(f"{flag} must be a finite number, got {value}")
    low_ok = lo is None or (value > lo if lo_open else value >= lo)
    if not low_ok or (hi is not None and value > hi):
        left = "(" if lo_open else "["
        raise ValueError(f"{flag} must be in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}], "
                         f"got {value}")


def check_options(args: argparse.Namespace) -> None:
    """Ranges of every numeric option, before anything is loaded."""
    check_int("--max-batch", args.max_batch, 1, MAX_BATCH)
    check_int("--fps", args.fps, 1, MAX_FPS)
    check_float("--guidance-scale", args.guidance_scale)
    check_float("--temperature", args.temperature, lo=0.0)
    if args.top_k is not None and args.top_k < 0:
        raise ValueError(f"--top-k must be >= 0 (0: off), got {args.top_k}")
    check_float("--top-p", args.top_p, lo=0.0, hi=1.0, lo_open=True)


def check_sampling(sampling: dict, source: str) -> None:
    """Sampling defaults the run records (generator.json): the same ranges as the options."""
    for key, flag in (("temperature", "--temperature"), ("top_p", "--top-p"), ("guidance_scale", "--guidance-scale")):
        value = sampling.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: sampling {key} must be a number, got {value!r} (or give {flag})")
    top_k = sampling.get("top_k")
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise ValueError(f"{source}: sampling top_k must be an integer, got {top_k!r} (or give --top-k)")
    try:
        check_float("temperature", sampling["temperature"], lo=0.0)
        check_float("top_p", sampling["top_p"], lo=0.0, hi=1.0, lo_open=True)
        check_float("guidance_scale", sampling["guidance_scale"])
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
    except ValueError as e:
        raise ValueError(f"{source}: sampling {e}") from None


def sampling_defaults(recorded: dict, args: argparse.Namespace) -> dict:
    """The run's sampling defaults with those given on the command line over them."""
    given = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
             "guidance_scale": args.guidance_scale}
    return {**recorded, **{k: v for k, v in given.items() if v is not None}}


def prepare_output(out: Path) -> None:
    """The export folder exists (made here) and is a folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output: {out} is a file, expected a folder (or a path to make one)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--output: cannot make the folder {out}: {e.strerror or e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python export/to_trt.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="generator run (runs/generator-*) or generator folder (default: the newest runs/generator-* under --runs)")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder (default: the one the run's generator.json records)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where python -m nbp_ext.train wrote its runs (default: runs/ in the current folder)")
    p.add_argument("--output", type=Path, default=Path("engines"), help="export folder (default: engines/)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="type of the ONNX graphs and so of the strongly typed TensorRT engines; softmax statistics, "
                        "logits and the encoder stay fp32 (default: fp32)")
    p.add_argument("--max-batch", type=int, default=1, help=f"videos per run of the graphs, 1..{MAX_BATCH} (default: 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--unconditional-stream", dest="unconditional_stream", action="store_true", default=None,
                   help="graphs carry the null-class stream that classifier-free guidance needs "
                        "(default: on for class-conditional models, off otherwise)")
    g.add_argument("--no-unconditional-stream", dest="unconditional_stream", action="store_false",
                   help="conditional stream only: run_engine then samples with guidance scale 1 (none)")
    p.add_argument("--guidance-scale", type=float, default=None, help="default guidance scale written to the manifest "
                   "(a finite number; default: the run's)")
    p.add_argument("--temperature", type=float, default=None, help="default temperature written to the manifest, "
                   ">= 0 (default: the run's)")
    p.add_argument("--top-k", type=int, default=None, help="default top-k written to the manifest, >= 0, 0 = off "
                   "(default: the run's)")
    p.add_argument("--top-p", type=float, default=None, help="default top-p written to the manifest, in (0, 1] "
                   "(default: the run's)")
    p.add_argument("--no-engines", action="store_true", help="ONNX only, even where TensorRT is available")
    p.add_argument("--fps", type=int, default=8, help=f"frame rate written into the videos, 1..{MAX_FPS} (default: 8)")
    p.add_argument("--verbose", action="store_true", help="show the exporter's progress")
    return p


def run_export(args: argparse.Namespace) -> Path:
    """The export the options ask for; failures raise errors that name the option or file."""
    from export.generator_adapter import GeneratorUnavailable, generator_folder, load_generator, video_shape
    from export.onnx_check import ParityError
    from export.pipeline import export_folder

    check_options(args)
    checkpoint = args.checkpoint or latest_checkpoint(args.runs)
    if checkpoint is None:
        raise FileNotFoundError(f"--checkpoint: no generator run (generator-*/generator/) under {args.runs}; train one with "
                                "python -m nbp_ext.train or pass --checkpoint")
    if not checkpoint.exists():
        raise FileNotFoundError(f"--checkpoint: {checkpoint} does not exist")
    try:
        model, adapter, spec, sampling = load_generator(checkpoint)
        tokenizer_dir, digest = find_tokenizer(checkpoint, args.tokenizer)
        tokenizer = check_tokenizer(tokenizer_dir, digest, spec.vocab_size)
        sampling = sampling_defaults(sampling, args)
        check_sampling(sampling, f"{generator_folder(checkpoint).parent / 'generator.json'} or the options")
        video = video_shape(spec.latent_grid, tokenizer.config.spatial_factor)
        streams = spec.prefix_kind == "class" if args.unconditional_stream is None else args.unconditional_stream
        prepare_output(args.output)
        print(f"to_trt: generator {checkpoint} ({spec.prefix_kind} prefix, {spec.num_blocks} blocks of {spec.block_len}), "
              f"tokenizer {tokenizer_dir}")
        export_folder(adapter, spec, tokenizer, args.output, video=video, max_batch=args.max_batch,
                      unconditional_stream=streams,
                      precision=args.precision, fps=args.fps, sampling=sampling, verbose=args.verbose,
                      checkpoint={"generator": generator_folder(checkpoint), "tokenizer": tokenizer_dir},
                      build_engines=not args.no_engines)
    except (GeneratorUnavailable, ParityError) as e:  # failures this command names: exit code 1
        raise ValueError(str(e)) from e
    return args.output


def main(argv: list[str] | None = None) -> int:
    """The command, as an exit code (see the module's docstring): the error line is on stderr."""
    from nbp_ext.cli_errors import EXIT_ERROR, run_command

    try:
        args = build_parser().parse_args(argv)
        run_command(lambda: run_export(args))
    except SystemExit as ended:  # run_command and argparse end this way; a message string means code 1
        if isinstance(ended.code, str):
            print(ended.code, file=sys.stderr)
            return EXIT_ERROR
        return int(ended.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
