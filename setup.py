"""Build of nbp: `pip install .` compiles nbp_ext._C with CMake + ninja + pybind11. The op bindings use
PyTorch's stable ABI (TORCH_TARGET in nbp_ext/_ext.py), so the module loads under any torch from that
version on; it is compiled against the installed torch when there is one (build_backend/). Both
`pip install .` and `pip install --no-build-isolation .` work. Environment knobs:

  NBP_CUDA=auto|0|1     build the CUDA kernels (auto: when nvcc and a CUDA build of torch exist)
  NBP_CUDA_ARCHS=80;90  CUDA architectures
  NBP_CPU_NATIVE=1|0    compile CPU kernels for this machine's vector ISA (-march=native)
  NBP_BUILD_JOBS=N      parallel compile jobs
  NBP_BUILD_TORCH=spec  the torch an isolated build installs when the target environment has none
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "build_backend"))
from torch_for_build import find_torch, torch_target  # noqa: E402


def _log(msg: str) -> None:
    print(f"nbp: {msg}", file=sys.stderr, flush=True)


def _cuda_decision(torch: dict) -> tuple[bool, str]:
    want = os.environ.get("NBP_CUDA", "auto").lower()
    if want in ("0", "off", "false", "no"):
        return False, "NBP_CUDA=0"
    nvcc = shutil.which("nvcc") or (
        os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None
    )
    if torch["cuda"] is None:
        reason = f"torch {torch['version']} is a CPU build"
    elif not nvcc or not os.path.exists(nvcc):
        reason = "no CUDA toolkit (nvcc) found"
    else:
        return True, f"torch CUDA {torch['cuda']}, nvcc at {nvcc}"
    if want in ("1", "on", "true", "yes"):
        raise RuntimeError(f"NBP_CUDA=1 but the CUDA kernels cannot be built: {reason}")
    return False, reason


def _check_shared_libstdcxx(module: Path) -> None:
    """Fail the build if the module carries its own libstdc++ instead of loading the shared one: its
    integer formatting would then use locale facets that the process never set up (error messages
    with numbers come out empty, or crash). Skipped where readelf is missing or for non-ELF files."""
    readelf = shutil.which("readelf")
    if readelf is None or not module.exists():
        return
    out = subprocess.run([readelf, "-d", str(module)], capture_output=True, text=True)
    if out.returncode != 0 or "(NEEDED)" not in out.stdout:
        return
    needed = [line for line in out.stdout.splitlines() if "(NEEDED)" in line]
    if not any("libstdc++.so" in line or "libc++.so" in line for line in needed):
        raise RuntimeError(
            f"{module.name} was linked with a static libstdc++ (it needs no libstdc++.so), so its error "
            "messages would be garbled or crash; build with a compiler that links libstdc++ dynamically, "
            "e.g. CXX=/usr/bin/g++, and without -static-libstdc++ in LDFLAGS"
        )


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        try:
            import pybind11
        except ImportError as err:
            raise RuntimeError("building nbp needs pybind11: `pip install pybind11`, or build with `pip install .`") from err
        target = torch_target()
        torch = find_torch()
        if torch is None:
            raise RuntimeError(
                f"building nbp needs torch >= {target} (for its stable-ABI headers): install torch first, or "
                "build with `pip install .`, which installs one into the build environment"
            )
        _log(f"compiling against torch {torch['version']} from {torch['where']} ({torch['dir']}); "
             f"stable-ABI target torch {target}, so the module loads under any torch >= {target}")

        out_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        with_cuda, why = _cuda_decision(torch)
        if with_cuda:
            _log(f"building CUDA kernels for sm_{os.environ.get('NBP_CUDA_ARCHS', '80;90')} ({why})")
        else:
            _log(f"CUDA kernels not built: {why}; the CPU kernels are built")
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_PREFIX_PATH={pybind11.get_cmake_dir()}",
            f"-DNBP_TORCH_DIR={torch['dir']}",
            f"-DNBP_TORCH_TARGET={target}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DNBP_WITH_CUDA={'ON' if with_cuda else 'OFF'}",
            f"-DNBP_CUDA_ARCHS={os.environ.get('NBP_CUDA_ARCHS', '80;90')}",
            f"-DNBP_CPU_NATIVE={'OFF' if os.environ.get('NBP_CPU_NATIVE', '1') == '0' else 'ON'}",
            f"-DNBP_TORCH_VERSION={torch['version']}",
        ]
        # Tools are named explicitly: the CMake cache may hold paths from an earlier build whose
        # (isolated, since deleted) build environment provided them.
        args.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
        if shutil.which("ninja"):
            args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM={shutil.which('ninja')}"]
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = os.environ.get("NBP_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_C", "-j", jobs], check=True)
        _check_shared_libstdcxx(Path(self.get_ext_fullpath(ext.name)).resolve())


setup(
    name="nbp",
    version="0.1.0",
    description="Semi-autoregressive video generation by Next-Block Prediction",
    packages=find_packages(include=["nbp_ext", "nbp_ext.*"]),
    python_requires=">=3.10",
    install_requires=[f"torch>={torch_target()}", "numpy", "av", "safetensors", "tqdm", "matplotlib"],
    extras_require={
        "export": ["onnx", "onnxruntime", "onnxscript"],
        "test": ["pytest", "pytest-timeout", "hypothesis", "scipy", "onnx", "onnxruntime", "onnxscript"],
    },
    ext_modules=[CMakeExtension("nbp_ext._C")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
