"""TensorRT engines from the exported ONNX graphs (TensorRT 10.x and 11.x Python API), where
TensorRT imports and a CUDA GPU is present; otherwise ``why_unavailable()`` says why, in one line
that names the TensorRT version found and what it lacks, and nothing is built.

Engines are strongly typed: each layer runs in the type its ONNX graph states (export/precision.py
chooses them), and the builder sets no precision flags (TensorRT 11 removed BuilderFlag.FP16, BF16,
INT8 and FP8; TensorRT 10 deprecated them). TensorRT 10 needs the network created with
NetworkDefinitionCreationFlag.STRONGLY_TYPED; TensorRT 11 networks are always strongly typed and the
flag is deprecated there, so it is set only for 10. Prefill gets an optimization profile over the
prefix length (and batch up to the graph batch); the step and decoder graphs are static.
"""

from __future__ import annotations

import time
from pathlib import Path

SUPPORTED_MAJORS = (10, 11)

# Every TensorRT member this module uses, by class (python_tests/tensorrt_api.py holds the 10.x and
# 11.x API they are checked against).
USED_API = (
    "Logger", "Logger.WARNING", "Builder", "Builder.create_network", "Builder.create_builder_config",
    "Builder.create_optimization_profile", "Builder.build_serialized_network", "OnnxParser",
    "OnnxParser.parse_from_file", "OnnxParser.num_errors", "OnnxParser.get_error", "IBuilderConfig.set_memory_pool_limit",
    "IBuilderConfig.add_optimization_profile", "IOptimizationProfile.set_shape", "MemoryPoolType.WORKSPACE", "Runtime",
    "Runtime.deserialize_cuda_engine", "ICudaEngine.create_execution_context", "ICudaEngine.num_io_tensors",
    "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode", "ICudaEngine.get_tensor_dtype", "TensorIOMode.INPUT",
    "IExecutionContext.set_input_shape", "IExecutionContext.get_tensor_shape", "IExecutionContext.set_tensor_address",
    "IExecutionContext.execute_async_v3", "DataType.FLOAT", "DataType.HALF", "DataType.BF16", "DataType.INT64",
    "DataType.INT32",
)
USED_API_10 = ("NetworkDefinitionCreationFlag.STRONGLY_TYPED",)  # TensorRT 10 only (see above)


def major_version(trt) -> int:
    """Major version of an imported tensorrt module (0 where its __version__ is not a version)."""
    head = str(getattr(trt, "__version__", "")).split(".")[0]
    return int(head) if head.isdigit() else 0


def _has(trt, dotted: str) -> bool:
    obj = trt
    for part in dotted.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            return False
    return True


def api_problem(trt) -> str | None:
    """None when the tensorrt module has everything this builder uses; else one line naming the
    version found and what it lacks."""
    version = getattr(trt, "__version__", "of unknown version")
    major = major_version(trt)
    if major not in SUPPORTED_MAJORS:
        return (f"TensorRT engines not built: TensorRT {version} found, but this builder needs TensorRT 10.x or 11.x "
                f"(strongly typed networks); the ONNX graphs are ready for run_engine's ONNX Runtime backend")
    missing = [name for name in USED_API + (USED_API_10 if major == 10 else ()) if not _has(trt, name)]
    if missing:
        return (f"TensorRT engines not built: TensorRT {version} found, but its Python API lacks {', '.join(missing)}; "
                f"the ONNX graphs are ready for run_engine's ONNX Runtime backend")
    return None


def version() -> str:
    """Version of the importable tensorrt module (what the manifest records for the engines)."""
    import tensorrt as trt

    return str(trt.__version__)


def why_unavailable() -> str | None:
    """None when engines can be built here, else one line saying why not."""
    try:
        import tensorrt as trt
    except ImportError as e:
        return f"TensorRT engines not built: the tensorrt Python package is not importable ({e}); the ONNX graphs are ready for run_engine's ONNX Runtime backend"
    problem = api_problem(trt)
    if problem:
        return problem
    try:
        import torch

        if not torch.cuda.is_available():
            return "TensorRT engines not built: no CUDA GPU is visible; the ONNX graphs are ready for run_engine's ONNX Runtime backend"
    except ImportError:
        pass
    return None


def network_flags(trt) -> int:
    """create_network's flags: STRONGLY_TYPED on TensorRT 10, none on 11 (always strongly typed)."""
    if major_version(trt) == 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def build_engine(onnx_path: Path, engine_path: Path, profiles: dict | None = None, workspace_gb: float = 4.0) -> float:
    """Builds a strongly typed ``engine_path`` from ``onnx_path`` (its precision is the graph's);
    ``profiles`` maps input name -> (min, opt, max) shapes for dynamic inputs. Returns the build time
    in seconds."""
    import tensorrt as trt

    problem = api_problem(trt)
    if problem:
        raise RuntimeError(problem)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
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
