"""Embedding fastoptim's kernels from the installed package, as a user would.

Why it exists: the C library, its config tool, the public ``.pxd`` and the wheel's contents are
a product of their own (README "Embedding the kernels"), and only a real build proves them.
These tests compile a C program with ``fastoptim-config --cflags --libs`` and a Cython extension
that cimports ``fastoptim.kernels``, run an Adam and an SGD step in each and compare with
fastoptim's own result bit for bit (the same library does the arithmetic); they check the
versions the library reports; and they build a wheel with ``pip wheel`` and check what it holds,
then install it in a fresh venv.  They run against whatever ``import fastoptim`` finds (CI: the
installed package; a developer: the in-place build), and are skipped where there is no C
compiler (or, for the wheel, no source tree or pip).
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import numpy as np
import pytest

import fastoptim
from fastoptim.optim import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastoptim.__file__)))
CC = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()

needs_cc = pytest.mark.skipif(shutil.which(CC[0]) is None, reason="no C compiler")


def _env():
    """An environment in which subprocesses import the same fastoptim as this test."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _config(*flags):
    """fastoptim-config's output: the installed console script when it belongs to this
    Python's environment, else the same tool through -m (an in-place build has no script)."""
    script = os.path.join(os.path.dirname(sys.executable), "fastoptim-config")
    cmd = [script] if os.path.exists(script) else [sys.executable, "-m", "fastoptim._configtool"]
    return subprocess.run(cmd + list(flags), check=True, capture_output=True, text=True,
                          env=_env(), cwd=os.path.dirname(PKG_PARENT)).stdout.strip()


# ---- the reference: the same steps through fastoptim's own Python API ----------------------
SIZES = (5, 37, 1)           # three tensors of one param group (odd sizes, a one-element one)
ADAM = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)
SGD = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True)
STEPS = 3


def _initial(k, n):
    """Tensor k's param and grad: small multiples of 1/8, exact in float32 in C and numpy."""
    i = np.arange(n)
    p = (((i * 3 + k) % 7) - 3) * 0.25
    g = (((i * 5 + k) % 11) - 5) * 0.125
    return p.astype(np.float32), g.astype(np.float32)


def _reference():
    """[adam params, sgd params] after STEPS steps of fastoptim.optim.functional."""
    init = [_initial(k, n) for k, n in enumerate(SIZES)]
    ps, gs = [p.copy() for p, _ in init], [g for _, g in init]
    m, v = [np.zeros(n, np.float32) for n in SIZES], [np.zeros(n, np.float32) for n in SIZES]
    steps = [np.zeros((), np.float32) for _ in SIZES]
    for _ in range(STEPS):
        F.adam(ps, gs, m, v, [], steps, amsgrad=False, maximize=False, **ADAM)
    qs, bufs = [p.copy() for p, _ in init], [None] * len(SIZES)
    for _ in range(STEPS):
        F.sgd(qs, gs, bufs, maximize=False, **SGD)
    return np.concatenate(ps), np.concatenate(qs)


C_PROGRAM = textwrap.dedent("""
    #include <stdio.h>
    #include <string.h>
    #include <fastoptim.h>

    static const int64_t numels[3] = {%(sizes)s};
    #define NT 3
    #define TOTAL %(total)d

    static void init(float *p, float *g)
    {
        for (int k = 0, off = 0; k < NT; off += (int)numels[k], k++)
            for (int i = 0; i < numels[k]; i++) {
                p[off + i] = (float)(((i * 3 + k) %% 7) - 3) * 0.25f;
                g[off + i] = (float)(((i * 5 + k) %% 11) - 5) * 0.125f;
            }
    }

    int main(void)
    {
        static float p[TOTAL], g[TOTAL], m[TOTAL], v[TOTAL], q[TOTAL], buf[TOTAL];
        float t[NT] = {0}, *params[NT], *ms[NT], *vs[NT], *ts[NT], *qs[NT], *bufs[NT];
        const float *grads[NT];
        unsigned char is_new[NT];
        init(p, g);
        memcpy(q, p, sizeof p);
        for (int k = 0, off = 0; k < NT; off += (int)numels[k], k++) {
            params[k] = p + off; grads[k] = g + off; ms[k] = m + off; vs[k] = v + off;
            ts[k] = &t[k]; qs[k] = q + off; bufs[k] = buf + off;
        }
        for (int s = 0; s < %(steps)d; s++)
            fo_adam_step_f32(params, grads, ms, vs, NULL, ts, numels, NT, %(lr)r, %(beta1)r,
                             %(beta2)r, %(eps)r, %(weight_decay)r, 0, 0, 0);
        for (int s = 0; s < %(steps)d; s++) {
            memset(is_new, s == 0, sizeof is_new);
            fo_sgd_step_f32(qs, grads, bufs, is_new, numels, NT, %(sgd_lr)r, %(momentum)r,
                            %(dampening)r, %(sgd_wd)r, %(nesterov)d, 0);
        }
        printf("{\\"abi\\": [%%d, %%d], \\"version\\": \\"%%s\\", \\"header_version\\": "
               "\\"%%d.%%d.%%d\\", \\"header_string\\": \\"%%s\\"}\\n", fo_abi_version(),
               FASTOPTIM_ABI_VERSION, fo_version(), FASTOPTIM_VERSION_MAJOR,
               FASTOPTIM_VERSION_MINOR, FASTOPTIM_VERSION_PATCH, FASTOPTIM_VERSION_STRING);
        fwrite(p, sizeof(float), TOTAL, stdout);
        fwrite(q, sizeof(float), TOTAL, stdout);
        return 0;
    }
""") % dict(sizes=", ".join(map(str, SIZES)), total=sum(SIZES), steps=STEPS, **ADAM,
            sgd_lr=SGD["lr"], momentum=SGD["momentum"], dampening=SGD["dampening"],
            sgd_wd=SGD["weight_decay"], nesterov=SGD["nesterov"])


def _compile_c(tmp_path, source, name):
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    exe = tmp_path / name
    cmd = CC + ["-std=c99", "-Wall", "-Wextra", "-Werror", str(src), "-o", str(exe)]
    cmd += shlex.split(_config("--cflags", "--libs")) + ["-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def _run_clean(cmd, **kw):
    """Run without LD_LIBRARY_PATH: the rpath alone must find the library."""
    env = {k: v for k, v in _env().items() if k != "LD_LIBRARY_PATH"}
    return subprocess.run(cmd, check=True, capture_output=True, env=env, **kw)


@needs_cc
def test_c_program_steps_match_fastoptim(tmp_path):
    out = _run_clean([str(_compile_c(tmp_path, C_PROGRAM, "steps"))]).stdout
    line, data = out.split(b"\n", 1)
    info = json.loads(line)
    total = sum(SIZES)
    got = np.frombuffer(data, np.float32)
    assert got.size == 2 * total
    adam, sgd = _reference()
    np.testing.assert_array_equal(got[:total], adam)      # bit for bit: the same kernel
    np.testing.assert_array_equal(got[total:], sgd)
    assert not np.array_equal(adam, np.concatenate([_initial(k, n)[0]
                                                    for k, n in enumerate(SIZES)]))
    # the library that ran reports the ABI of the header the program was compiled with, and
    # the package version everything else reports
    assert info["abi"][0] == info["abi"][1] == fastoptim._build_info.abi_version
    assert info["version"] == info["header_version"] == info["header_string"]
    assert info["version"] == fastoptim.__version__


@needs_cc
def test_c_example_trains(tmp_path):
    """examples/c/logreg.c, built exactly as its comment says, runs and its loss falls."""
    src = os.path.join(ROOT, "examples", "c", "logreg.c")
    if not os.path.exists(src):
        pytest.skip("no source tree (examples/)")
    with open(src) as f:
        exe = _compile_c(tmp_path, f.read(), "logreg")
    out = _run_clean([str(exe)], text=True).stdout
    assert "after 200 Adam steps" in out


def test_numpy_example_trains():
    path = os.path.join(ROOT, "examples", "numpy_logreg.py")
    if not os.path.exists(path):
        pytest.skip("no source tree (examples/)")
    ns = {"__name__": "numpy_logreg"}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    losses, accuracy, w, b = ns["train"](epochs=100)
    assert losses[-1] < 0.5 * losses[0] and accuracy > 0.9


def test_config_tool_and_versions():
    assert _config("--version") == fastoptim.__version__
    assert _config("--abi-version") == str(fastoptim._build_info.abi_version)
    inc = _config("--cflags")
    assert inc == "-I" + fastoptim.get_include()
    headers = sorted(os.listdir(fastoptim.get_include()))
    assert headers == ["fastoptim.h", "fastoptim_version.h"]      # no private header
    with open(os.path.join(fastoptim.get_include(), "fastoptim_version.h")) as f:
        text = f.read()
    major, minor, patch = fastoptim.__version__.split(".")[:3]
    for name, value in (("MAJOR", major), ("MINOR", minor), ("PATCH", patch)):
        assert f"#define FASTOPTIM_VERSION_{name} {value}\n" in text
    assert f"#define FASTOPTIM_ABI_VERSION {fastoptim._build_info.abi_version}\n" in text
    # the library's run-time ABI (ctypes: no compiler needed) equals the header's
    assert fastoptim._config._loaded_abi_version() == fastoptim._build_info.abi_version
    libs = _config("--libs")
    lib_dir = fastoptim.get_library_dir()
    assert f"-L{lib_dir}" in libs and f"-Wl,-rpath,{lib_dir}" in libs
    pc_dir = _config("--pkgconfigdir")
    with open(os.path.join(pc_dir, "fastoptim.pc")) as f:
        pc = f.read()
    assert f"Version: {fastoptim.__version__}\n" in pc


def test_kernels_defined_once():
    """Every exported fo_* kernel lives in libfastoptim; the extensions only import them."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    lib = os.path.join(fastoptim.get_library_dir(), fastoptim._build_info.library)

    def symbols(path, kind):
        out = subprocess.run([nm, "-D", kind, path], check=True, capture_output=True,
                             text=True).stdout
        return {ln.split()[-1] for ln in out.splitlines() if ln.split()[-1].startswith("fo_")}

    exported = symbols(lib, "--defined-only")
    assert {"fo_adam_step_f32", "fo_sgd_step_f64", "fo_abi_version"} <= exported
    assert not any(s.startswith("fo_roofline") for s in exported)   # the benchmark's own
    c_dir = os.path.dirname(fastoptim._C.__file__)
    used = set()
    for name in os.listdir(c_dir):
        if name.endswith(".so"):
            assert not symbols(os.path.join(c_dir, name), "--defined-only"), name
            used |= symbols(os.path.join(c_dir, name), "--undefined-only")
    assert used and used <= exported


@needs_cc
def test_cython_extension_against_package(tmp_path):
    pytest.importorskip("Cython")
    src = os.path.join(ROOT, "examples", "cython")
    if not os.path.exists(src):
        pytest.skip("no source tree (examples/)")
    for name in ("adam_step.pyx", "setup.py"):
        shutil.copy(os.path.join(src, name), tmp_path)
    # examples/cython/setup.py calls fastoptim-config from PATH: give it this test's one
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "fastoptim-config"
    tool.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m fastoptim._configtool "
                    '"$@"\n')
    tool.chmod(0o755)
    env = _env()
    env["PATH"] = str(bin_dir) + os.pathsep + env.get("PATH", "")
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    code = textwrap.dedent("""
        import json, sys
        import numpy as np
        import adam_step
        p = np.array([0.5, -1.0, 2.0], np.float32); g = np.array([0.25, 0.5, -0.75], np.float32)
        m, v, t = np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(1, np.float32)
        for _ in range(3):
            adam_step.adam_step(p, g, m, v, t, lr=0.01, weight_decay=0.01)
        print(json.dumps({"p": p.tolist(), "m": m.tolist(), "t": float(t[0]),
                          "abi": adam_step.abi_version()}))
    """)
    env.pop("LD_LIBRARY_PATH", None)
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env["PYTHONPATH"]
    out = json.loads(subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                    check=True, capture_output=True, text=True).stdout)
    p = np.array([0.5, -1.0, 2.0], np.float32)
    g = np.array([0.25, 0.5, -0.75], np.float32)
    m, v, t = np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros((), np.float32)
    for _ in range(3):
        F.adam([p], [g], [m], [v], [], [t], amsgrad=False, beta1=0.9, beta2=0.999, lr=0.01,
               weight_decay=0.01, eps=1e-8, maximize=False)
    np.testing.assert_array_equal(np.array(out["p"], np.float32), p)
    np.testing.assert_array_equal(np.array(out["m"], np.float32), m)
    assert out["t"] == 3.0 and out["abi"] == fastoptim._build_info.abi_version


# ---- the wheel ---------------------------------------------------------------------------
PRIVATE = ("common.h", "optim_multi.h", "fo_instantiate.h", "optim_team.h", "bench_roofline.h")


@needs_cc
def test_wheel_contents_and_fresh_install(tmp_path):
    """``pip wheel .`` of the source tree: public headers, .pxd, .pyi, py.typed, the library
    and LICENSE; no private headers, no generated C, no build files; installs and imports in
    a fresh venv.  (Builds in the tree's build/, so after an install it is incremental.)"""
    if not os.path.exists(os.path.join(ROOT, "setup.py")):
        pytest.skip("no source tree")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                        str(tmp_path / "dist"), ROOT], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("fastoptim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    base = {n.rsplit("/", 1)[-1] for n in names}
    assert {"fastoptim/include/fastoptim.h", "fastoptim/include/fastoptim_version.h",
            "fastoptim/kernels.pxd", "fastoptim/_C/kernels.pxd", "fastoptim/_C/_optim.pyi",
            "fastoptim/py.typed", "fastoptim/lib/pkgconfig/fastoptim.pc",
            f"fastoptim/lib/{fastoptim._build_info.library}"} <= set(names)
    assert any(n.endswith("/LICENSE") for n in names)
    assert not base & set(PRIVATE)
    bad = [n for n in names if n.endswith((".c", ".o", ".pyx", ".inc", ".in", ".html"))
           or n.startswith(("build/", "csrc/"))]
    assert not bad
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    # the fresh venv must see only itself (conftest points children's PYTHONPATH at the tests'
    # fastoptim, which pip would take as already installed)
    fresh = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([py, "-m", "pip", "install", "-q", str(wheel)], capture_output=True,
                       text=True, env=fresh)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = subprocess.run([py, "-c", "import fastoptim, fastoptim.optim as o; "
                          "p = fastoptim.nn.Parameter(fastoptim.ones(3)); p.grad = "
                          "fastoptim.ones(3); o.Adam([p]).step(); print(fastoptim.__version__)"],
                         cwd=tmp_path, check=True, capture_output=True, text=True, env=fresh)
    assert out.stdout.strip() == fastoptim.__version__
    cfg = subprocess.run([str(venv / "bin" / "fastoptim-config"), "--version"], cwd=tmp_path,
                         check=True, capture_output=True, text=True, env=fresh)
    assert cfg.stdout.strip() == fastoptim.__version__
