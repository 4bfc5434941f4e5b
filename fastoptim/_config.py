"""Build facts for bug reports and for code that embeds fastoptim's kernels."""
import os
import sys


def get_include():
    """Directory holding fastoptim.h (and its helper headers): compile C/Cython code that
    calls the kernels with ``-I fastoptim.get_include()``; Cython code cimports
    ``fastoptim._C.kernels``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def _build_info():
    try:
        from fastoptim import _build_info as bi
    except ImportError:  # running from an unbuilt source tree
        return None
    return bi


def _blas_info():
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # numpy < 1.25 has no mode="dicts"
        return "unknown"


def show_config(file=None):
    """Print how this fastoptim was built: compiler flags, OpenMP, threads, numpy/BLAS."""
    import numpy as np

    from fastoptim._C import _tensor  # noqa: F401  (proves the extension imports)
    bi = _build_info()
    threads = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    lines = [
        "fastoptim " + __import__("fastoptim").__version__,
        f"  python:     {sys.version.split()[0]}",
        f"  compiler:   {bi.compiler if bi else 'unknown'}",
        f"  c flags:    {' '.join(bi.c_flags) if bi else 'unknown'}",
        f"  openmp:     {'on' if bi and bi.openmp else 'off'}",
        f"  threads:    {threads} (OMP_NUM_THREADS or cpu count)",
        f"  omp wait:   {os.environ.get('OMP_WAIT_POLICY', 'default')} (OMP_WAIT_POLICY)",
        f"  numpy:      {np.__version__} (built against {bi.numpy_build if bi else '?'})",
        f"  blas:       {_blas_info()} (large matmuls go through numpy)",
        f"  include:    {get_include()}",
    ]
    print("\n".join(lines), file=file)
