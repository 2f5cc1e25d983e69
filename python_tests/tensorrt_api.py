"""The part of TensorRT's Python API that export/tensorrt_build.py may touch, for TensorRT 10.x and
11.x, and a fake ``tensorrt`` module of either version built from it, so the builder is checked
without TensorRT's libraries or a GPU.

``API`` gives each member's status in the newest 10.x and in 11.x: "ok", "deprecated" or None
(absent). It was written from the public headers (include/NvInfer.h and NvInferRuntime.h of
TensorRT 10.16.1 and 11.1: the methods and enum values behind these Python names and their
TRT_DEPRECATED markers) and checked against the member names in the Python bindings of the
tensorrt-cu12-bindings 10.16.1.11 and 11.4.0.106 wheels. Besides the members the builder uses it
lists the ones it must not use: the precision flags and the explicit-batch flag.
"""

from __future__ import annotations

import types

API: dict[str, tuple[str | None, str | None]] = {
    # module level
    "Logger": ("ok", "ok"), "Logger.WARNING": ("ok", "ok"),
    "Builder": ("ok", "ok"), "OnnxParser": ("ok", "ok"), "Runtime": ("ok", "ok"),
    # IBuilder
    "Builder.create_network": ("ok", "ok"), "Builder.create_builder_config": ("ok", "ok"),
    "Builder.create_optimization_profile": ("ok", "ok"), "Builder.build_serialized_network": ("ok", "ok"),
    # nvonnxparser::IParser
    "OnnxParser.parse_from_file": ("ok", "ok"), "OnnxParser.num_errors": ("ok", "ok"), "OnnxParser.get_error": ("ok", "ok"),
    # IBuilderConfig, IOptimizationProfile
    "IBuilderConfig.set_memory_pool_limit": ("ok", "ok"), "IBuilderConfig.add_optimization_profile": ("ok", "ok"),
    "IBuilderConfig.set_flag": ("ok", "ok"),
    "IOptimizationProfile.set_shape": ("ok", "ok"),
    "MemoryPoolType.WORKSPACE": ("ok", "ok"),
    # IRuntime, ICudaEngine, IExecutionContext
    "Runtime.deserialize_cuda_engine": ("ok", "ok"),
    "ICudaEngine.create_execution_context": ("ok", "ok"), "ICudaEngine.num_io_tensors": ("ok", "ok"),
    "ICudaEngine.get_tensor_name": ("ok", "ok"), "ICudaEngine.get_tensor_mode": ("ok", "ok"),
    "ICudaEngine.get_tensor_dtype": ("ok", "ok"), "TensorIOMode.INPUT": ("ok", "ok"),
    "IExecutionContext.set_input_shape": ("ok", "ok"), "IExecutionContext.get_tensor_shape": ("ok", "ok"),
    "IExecutionContext.set_tensor_address": ("ok", "ok"), "IExecutionContext.execute_async_v3": ("ok", "ok"),
    "DataType.FLOAT": ("ok", "ok"), "DataType.HALF": ("ok", "ok"), "DataType.BF16": ("ok", "ok"),
    "DataType.INT64": ("ok", "ok"), "DataType.INT32": ("ok", "ok"),
    # network creation: strongly typed is a flag in 10, the only mode in 11 (flag kept, deprecated)
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": ("ok", "deprecated"),
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": ("deprecated", None),
    # weak typing's precision flags: deprecated in 10.x, removed in 11
    "BuilderFlag.FP16": ("deprecated", None), "BuilderFlag.BF16": ("deprecated", None),
    "BuilderFlag.INT8": ("deprecated", None), "BuilderFlag.FP8": ("deprecated", None),
    "BuilderFlag.TF32": ("ok", "ok"),
}

VERSIONS = {10: "10.16.1.11", 11: "11.4.0.106"}

# What an object returned by a member is: the class whose members it has.
_RETURNS = {
    "Logger": "Logger", "Builder": "Builder", "OnnxParser": "OnnxParser", "Runtime": "Runtime",
    "Builder.create_network": "INetworkDefinition", "Builder.create_builder_config": "IBuilderConfig",
    "Builder.create_optimization_profile": "IOptimizationProfile", "Runtime.deserialize_cuda_engine": "ICudaEngine",
    "ICudaEngine.create_execution_context": "IExecutionContext",
}


class _Obj:
    """An instance of fake class ``cls``: members outside ``API`` for this version raise AttributeError;
    every member read is recorded in the module's ``used`` list."""

    def __init__(self, module: "FakeTensorRT", cls: str):
        self._module, self._cls = module, cls

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._module._member(f"{self._cls}.{name}")

    def __call__(self, *args):
        self._module.calls.append((self._cls, args))
        return _Obj(self._module, _RETURNS.get(self._cls, self._cls))


class FakeTensorRT(types.ModuleType):
    """``import tensorrt`` of version ``major`` (10 or 11), recording members read and calls made.
    A parser parses anything, a build returns a few bytes; ``drop`` removes members (a damaged or
    older install)."""

    def __init__(self, major: int, version: str | None = None, drop: tuple = ()):
        super().__init__("tensorrt")
        self.major, self.__version__ = major, version or VERSIONS.get(major, f"{major}.0.0")
        self.used: list[str] = []
        self.calls: list[tuple] = []
        self._drop = set(drop)

    def _status(self, name: str):
        if name in self._drop:
            return None
        pair = API.get(name)
        if pair is None:
            return None
        return pair[0] if self.major <= 10 else pair[1]

    def _member(self, name: str):
        if self._status(name) is None:
            raise AttributeError(f"TensorRT {self.__version__} has no {name}")
        self.used.append(name)
        cls, _, leaf = name.rpartition(".")
        if cls and leaf.isupper():  # an enum value: its position among the class's values
            return [k for k in API if k.startswith(cls + ".")].index(name)
        return _Method(self, name)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._status(name) is not None and "." not in name:
            self.used.append(name)
            return _Class(self, name)
        if self._status(name) is None and any(k.startswith(name + ".") for k in API):
            return _Class(self, name)  # a namespace such as BuilderFlag: its members are checked one by one
        raise AttributeError(f"TensorRT {self.__version__} has no {name}")


class _Class(_Obj):
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._module._member(f"{self._cls}.{name}")


class _Method:
    """A bound method (or property) of a fake object."""

    _RESULTS = {"OnnxParser.parse_from_file": True, "OnnxParser.num_errors": 0,
                "Builder.build_serialized_network": b"fake plan"}

    def __init__(self, module: FakeTensorRT, name: str):
        self._module, self._name = module, name

    def __call__(self, *args):
        self._module.calls.append((self._name, args))
        if self._name in self._RESULTS:
            return self._RESULTS[self._name]
        if self._name in _RETURNS:
            return _Obj(self._module, _RETURNS[self._name])
        return None

    def __index__(self):  # a property read as a number (num_errors)
        return self._RESULTS.get(self._name, 0)
