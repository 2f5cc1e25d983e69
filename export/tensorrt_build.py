"""TensorRT engines from the exported ONNX graphs (TensorRT 10 Python API), where TensorRT imports
and a CUDA GPU is present; otherwise ``why_unavailable()`` says why and nothing is built.

Prefill gets an optimization profile over the prefix length (and batch up to the graph batch); the
step and decoder graphs are static. Precision: fp32, or fp16/bf16 builder flags on the fp32 ONNX
graphs (TensorRT keeps fp32 where a layer needs it); inputs and outputs stay fp32/int64.
"""

from __future__ import annotations

import time
from pathlib import Path


def why_unavailable() -> str | None:
    """None when engines can be built here, else one line saying why not."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        return f"TensorRT engines not built: the tensorrt Python package is not importable ({e}); the ONNX graphs are ready for run_engine's ONNX Runtime backend"
    try:
        import torch

        if not torch.cuda.is_available():
            return "TensorRT engines not built: no CUDA GPU is visible; the ONNX graphs are ready for run_engine's ONNX Runtime backend"
    except ImportError:
        pass
    return None


def build_engine(onnx_path: Path, engine_path: Path, precision: str, profiles: dict | None = None,
                 workspace_gb: float = 4.0) -> float:
    """Builds ``engine_path`` from ``onnx_path``; ``profiles`` maps input name -> (min, opt, max)
    shapes for dynamic inputs. Returns the build time in seconds."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    if profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profiles.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build an engine (see the log above)")
    engine_path.write_bytes(bytes(plan))
    return time.perf_counter() - start


def time_engine(engine_path: Path, shapes: dict, iters: int = 20) -> float:
    """Mean milliseconds per execute_async_v3 of an engine on zero-filled inputs of ``shapes``."""
    import tensorrt as trt
    import torch

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    context = engine.create_execution_context()
    buffers = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            context.set_input_shape(name, shapes[name])
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(context.get_tensor_shape(name))
        dtype = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.BF16: torch.bfloat16,
                 trt.DataType.INT64: torch.int64, trt.DataType.INT32: torch.int32}[engine.get_tensor_dtype(name)]
        buf = torch.zeros(shape, dtype=dtype, device="cuda")
        buffers.append(buf)
        context.set_tensor_address(name, buf.data_ptr())
    stream = torch.cuda.Stream()
    context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return (time.perf_counter() - start) * 1000.0 / iters
