"""Build facts for bug reports, and where code that embeds fastoptim's kernels finds them.

The installed package carries its C side: ``include/`` (the public headers fastoptim.h and
fastoptim_version.h), ``lib/`` (libfastoptim.so.<ABI>, every kernel defined once, which the
extension modules link too) and ``lib/pkgconfig/fastoptim.pc``.  setup.py's build_ext writes them,
and ``_build_info.py`` with the flags it actually passed; the ``fastoptim-config`` command
(``_configtool.py``) prints compiler and linker flags from the functions here.
"""
import os
import sys

_PKG = os.path.dirname(os.path.abspath(__file__))


def get_include():
    """Directory holding the public C headers, fastoptim.h and fastoptim_version.h: compile C
    code that calls the kernels with ``-I fastoptim.get_include()`` (and Cython code that
    ``cimport fastoptim.kernels`` with it among the extension's include_dirs)."""
    return os.path.join(_PKG, "include")


def get_library_dir():
    """Directory holding the kernels' shared library (``libfastoptim.so.<ABI>``, linked with
    ``-l:`` and its file name) and ``pkgconfig/fastoptim.pc``; see ``fastoptim-config``."""
    return os.path.join(_PKG, "lib")


def _build_info():
    try:
        from fastoptim import _build_info as bi
    except ImportError:  # running from an unbuilt source tree
        return None
    return bi


def _library_path():
    bi = _build_info()
    return os.path.join(get_library_dir(), bi.library) if bi else None


def _loaded_abi_version():
    """The ABI version the library on disk reports at run time (fo_abi_version()), or None."""
    import ctypes
    path = _library_path()
    if path is None or not os.path.exists(path):
        return None
    return ctypes.CDLL(path).fo_abi_version()


def _loaded_simd():
    """The instruction set the dispatched optimizer loops run on (fo_simd(): "avx2" or
    "baseline"), or None."""
    import ctypes
    path = _library_path()
    if path is None or not os.path.exists(path):
        return None
    fn = ctypes.CDLL(path).fo_simd
    fn.restype = ctypes.c_char_p
    return fn().decode()


def _blas_info():
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # numpy < 1.25 has no mode="dicts"
        return "unknown"


def show_config(file=None):
    """Print how this fastoptim was built: the compiler and the flags it was given (for the
    kernels and for the Cython glue), OpenMP, threads, numpy/BLAS, and the C library."""
    import numpy as np

    from fastoptim._C import _tensor  # noqa: F401  (proves the extension imports)
    bi = _build_info()
    threads = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    lines = [
        "fastoptim " + __import__("fastoptim").__version__,
        f"  python:     {sys.version.split()[0]}",
        f"  compiler:   {bi.compiler if bi else 'unknown'}",
        f"  c flags:    {' '.join(bi.c_flags) if bi else 'unknown'} (csrc: libfastoptim)",
        f"  glue flags: {' '.join(bi.glue_flags) if bi else 'unknown'} (Cython modules)",
        f"  openmp:     {'on' if bi and bi.openmp else 'off'}",
        f"  simd:       {_loaded_simd()} (optimizer loops; FASTOPTIM_SIMD=baseline forces)",
        f"  threads:    {threads} (OMP_NUM_THREADS or cpu count)",
        f"  omp wait:   {os.environ.get('OMP_WAIT_POLICY', 'default')} (OMP_WAIT_POLICY)",
        f"  numpy:      {np.__version__} (built against {bi.numpy_build if bi else '?'})",
        f"  blas:       {_blas_info()} (large matmuls go through numpy)",
        f"  include:    {get_include()}",
        f"  library:    {_library_path()} (ABI {_loaded_abi_version()})",
    ]
    print("\n".join(lines), file=file)
