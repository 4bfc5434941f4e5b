"""Build fastoptim: the C kernels in csrc/ compiled into the Cython modules of fastoptim/_C.

Flags: -O3 -fno-math-errno so that the single-pass loops vectorize; OpenMP when the compiler
has it (probed by compiling a tiny program), a serial build otherwise. No -march=native: a wheel
must run on any x86-64.  The build records what it chose in fastoptim/_build_info.py (read by
fastoptim.show_config()) and copies the public C headers into fastoptim/include/ (returned by
fastoptim.get_include()) so that other numeric code can embed the kernels.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_FLAGS = ["-O3", "-fno-math-errno", "-std=c99", "-Wno-unused-function"]
# Cython's generated code is not C99-clean; the kernels are.  -std=c99 is applied to csrc only.
CYTHON_FLAGS = ["-O3", "-fno-math-errno", "-Wno-unused-function"]


def _probe_openmp():
    """Return True when the C compiler builds and runs a program with -fopenmp."""
    if os.environ.get("FASTOPTIM_NO_OPENMP"):
        return False
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    src = ("#include <omp.h>\nint main(void){int n=0;\n"
           "#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n")
    with tempfile.TemporaryDirectory() as d:
        c_path, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(c_path, "w") as f:
            f.write(src)
        try:
            subprocess.run(cc.split() + ["-fopenmp", c_path, "-o", exe], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([exe], check=True, stdout=subprocess.DEVNULL)
            return True
        except (OSError, subprocess.CalledProcessError):
            return False


HAVE_OPENMP = _probe_openmp()
OMP_FLAGS = ["-fopenmp"] if HAVE_OPENMP else []
C_SOURCES = sorted(glob.glob(os.path.join("csrc", "*.c")))
# Headers and .inc template bodies: listed so that editing one rebuilds the extensions.
C_DEPENDS = sorted(glob.glob(os.path.join("csrc", "*.h"))
                   + glob.glob(os.path.join("csrc", "*.inc")))


def _write_build_info():
    info = os.path.join(HERE, "fastoptim", "_build_info.py")
    with open(info, "w") as f:
        f.write('"""Written by setup.py at build time; read by fastoptim.show_config()."""\n')
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        f.write(f"compiler = {cc!r}\n")
        f.write(f"c_flags = {BASE_FLAGS + OMP_FLAGS!r}\n")
        f.write(f"openmp = {HAVE_OPENMP!r}\n")
        f.write(f"python = {sys.version.split()[0]!r}\n")
        f.write(f"numpy_build = {numpy.__version__!r}\n")
    inc = os.path.join(HERE, "fastoptim", "include")
    os.makedirs(inc, exist_ok=True)
    for h in glob.glob(os.path.join(HERE, "csrc", "*.h")):
        shutil.copy(h, inc)


def _extensions():
    exts = []
    for pyx in sorted(glob.glob(os.path.join("fastoptim", "_C", "*.pyx"))):
        name = pyx[:-4].replace(os.sep, ".")
        exts.append(Extension(
            name,
            sources=[pyx] + C_SOURCES,
            depends=C_DEPENDS + glob.glob(os.path.join("fastoptim", "_C", "*.pxd")),
            include_dirs=["csrc", numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
            + ([("FO_HAVE_OPENMP", "1")] if HAVE_OPENMP else []),
            extra_compile_args=CYTHON_FLAGS + OMP_FLAGS,
            extra_link_args=OMP_FLAGS,
        ))
    return exts


_write_build_info()
setup(
    ext_modules=cythonize(
        _extensions(),
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True,
                             "initializedcheck": False, "embedsignature": True},
    ),
)
