"""Build adam_step.pyx against the installed fastoptim: ``python setup.py build_ext --inplace``.

The include directory and the link flags (with an rpath to the package's libfastoptim, so the
module imports without LD_LIBRARY_PATH) come from fastoptim-config; Cython finds
``fastoptim/kernels.pxd`` in the installed package.
"""
import shlex
import subprocess

from Cython.Build import cythonize
from setuptools import Extension, setup


def config(*flags):
    return shlex.split(subprocess.check_output(["fastoptim-config", *flags], text=True))


ext = Extension("adam_step", ["adam_step.pyx"], extra_compile_args=config("--cflags"),
                extra_link_args=config("--libs"))
setup(name="adam-step-example", ext_modules=cythonize([ext]))
