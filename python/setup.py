"""Builds the veil package: libveil.so (CMake, from the repository this folder belongs to) and the cffi
declarations, which are the public headers themselves after the C preprocessor (nothing written twice).

Environment:
  VEIL_SOURCE_DIR  the repository's root (default: this folder's parent)
  VEIL_LIBRARY     an already built libveil.so to ship instead of building one (the test suite's)
  VEIL_BUILD_DIR   CMake's build folder for libveil (default: VEIL_SOURCE_DIR/build/python)
"""
import os
import shutil
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("VEIL_SOURCE_DIR") or os.path.join(HERE, ".."))


def build_libveil():
    """libveil.so built by CMake (Release, the shared library only); its path."""
    build = os.path.abspath(os.environ.get("VEIL_BUILD_DIR") or os.path.join(SOURCE, "build", "python"))
    subprocess.check_call(["cmake", "-S", SOURCE, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call(["cmake", "--build", build, "--target", "veil_shared", "-j", str(os.cpu_count() or 2)])
    return os.path.join(build, "libveil.so")


def write_cdef(path):
    """The public headers through the preprocessor, as cffi reads them: the standard headers replaced by empty
    ones (cffi knows size_t, uint64_t and bool), no compiler macros (so the export pragmas vanish)."""
    include = os.path.join(SOURCE, "include")
    with tempfile.TemporaryDirectory() as fake:
        for name in ("stddef.h", "stdint.h", "stdbool.h"):
            open(os.path.join(fake, name), "w").close()
        text = subprocess.check_output(["cpp", "-P", "-nostdinc", "-undef", "-I", fake, "-I", include,
                                        os.path.join(include, "veil", "veil.h")], text=True)
    with open(path, "w") as f:
        f.write(text)
    # the same declarations parsed once, now: cffi's out-of-line ABI module, which `import veil` loads
    # without running the C parser (a sixth of a second at every import otherwise)
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(text)
    ffi.set_source("veil._ffi", None)
    ffi.emit_python_code(os.path.join(os.path.dirname(path), "_ffi.py"))


class BuildPyWithLibveil(build_py):
    def run(self):
        super().run()
        package = os.path.join(self.build_lib, "veil")
        os.makedirs(package, exist_ok=True)
        library = os.environ.get("VEIL_LIBRARY") or build_libveil()
        shutil.copyfile(os.path.realpath(library), os.path.join(package, "libveil.so"))
        write_cdef(os.path.join(package, "_cdef.h"))


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithLibveil}, distclass=BinaryDistribution)
