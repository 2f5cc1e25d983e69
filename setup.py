"""Build of nbp: `pip install --no-build-isolation .` compiles nbp_ext._C with CMake + ninja + pybind11
against the torch that is already installed (see README). Environment knobs:

  NBP_CUDA=auto|0|1     build the CUDA kernels (auto: when nvcc and a CUDA build of torch exist)
  NBP_CUDA_ARCHS=80;90  CUDA architectures
  NBP_CPU_NATIVE=1|0    compile CPU kernels for this machine's vector ISA (-march=native)
  NBP_BUILD_JOBS=N      parallel compile jobs
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _log(msg: str) -> None:
    print(f"nbp: {msg}", file=sys.stderr, flush=True)


def _cuda_decision(torch) -> tuple[bool, str]:
    want = os.environ.get("NBP_CUDA", "auto").lower()
    if want in ("0", "off", "false", "no"):
        return False, "NBP_CUDA=0"
    nvcc = shutil.which("nvcc") or (
        os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None
    )
    if torch.version.cuda is None:
        reason = f"torch {torch.__version__} is a CPU build"
    elif not nvcc or not os.path.exists(nvcc):
        reason = "no CUDA toolkit (nvcc) found"
    else:
        return True, f"torch CUDA {torch.version.cuda}, nvcc at {nvcc}"
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
            import torch
        except ImportError as err:
            raise RuntimeError(
                "building nbp needs torch and pybind11 installed first, then "
                "`pip install --no-build-isolation .` (see README)"
            ) from err

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
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path};{pybind11.get_cmake_dir()}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DNBP_WITH_CUDA={'ON' if with_cuda else 'OFF'}",
            f"-DNBP_CUDA_ARCHS={os.environ.get('NBP_CUDA_ARCHS', '80;90')}",
            f"-DNBP_CPU_NATIVE={'OFF' if os.environ.get('NBP_CPU_NATIVE', '1') == '0' else 'ON'}",
            f"-DNBP_TORCH_VERSION={torch.__version__}",
        ]
        if shutil.which("ninja"):
            args.append("-GNinja")
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
    install_requires=["torch>=2.4", "numpy", "av", "safetensors", "tqdm"],
    extras_require={
        "export": ["onnx", "onnxruntime", "onnxscript"],
        "test": ["pytest", "scipy", "onnx", "onnxruntime", "onnxscript"],
    },
    ext_modules=[CMakeExtension("nbp_ext._C")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
