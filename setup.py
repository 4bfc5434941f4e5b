"""Build fastoptim: the C kernels in csrc/ as one shared library, and the Cython modules over it.

What a build makes (all of it inside the build command, none at import of this file):
  - fastoptim/lib/libfastoptim.so.<ABI>: every csrc/*.c except the benchmark yardstick
    (csrc/bench_*.c), compiled once with the kernel flags below (C99, warnings on) and linked
    with -z defs, so it provably needs no Python.  Its SONAME carries the C ABI version (from
    csrc/fastoptim_version.h.in); only the public header's functions (and the one private entry
    point the optimizer glue needs, optim_team.h) are exported: the rest is hidden, so calls
    inside the library are direct.
  - fastoptim/_C/*.so: one per .pyx, compiled with the glue flags (Cython's C is not C99-clean)
    and linked against the library with an $ORIGIN-relative rpath, so each kernel is defined
    once.  _bench (the benchmark suite's roofline yardstick) also links csrc/bench_*.c, which
    nothing else needs.
  - _optim_kernels.pxi, in the build directory: the optimizer glue's per-kernel filler, runner
    and registration, generated from fastoptim/optim/_descriptions.py by
    fastoptim/optim/_kernel_glue.py and included by fastoptim/_C/_optim.pyx.
  - fastoptim/include/: the public headers (fastoptim.h and the generated fastoptim_version.h);
    fastoptim/lib/pkgconfig/fastoptim.pc; fastoptim/_build_info.py, the flags and choices of
    this build (read by fastoptim.show_config(), which therefore prints the flags that were
    actually passed to the compiler).
Generated C goes to the build directory, never into the source tree or the wheel.

Flags: -O3 -fno-math-errno so that the single-pass loops vectorize; OpenMP when the compiler
has it (probed by compiling a tiny program; FASTOPTIM_NO_OPENMP=1 forces a serial build); no
debug info (-g0: the wheel's .so files carry none).  No -march=native: a wheel must run on any
x86-64.  CC and CFLAGS from the environment are honoured, as distutils does.

Sanitizers: FASTOPTIM_SANITIZE=address,undefined (either or both) builds the library and the
extensions with -fsanitize=<them> -fno-omit-frame-pointer -g1 (line numbers in the reports) and
links the sanitizer runtimes; undefined behaviour is made fatal (-fno-sanitize-recover), so a
report can never scroll past a green run.  Python itself is not instrumented, so with address
the ASan runtime must be loaded first (the UBSan one comes in as a dependency of the .so files):
    LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 \
    UBSAN_OPTIONS=print_stacktrace=1 python -m pytest tests/...
(detect_leaks=0: CPython frees little at exit, which LeakSanitizer would report as leaks; the
library must come from the compiler that built the extension).  .ci/run has a step that does
this.  Such a build is for testing only: never ship it.

Speed of the build: the .pyx files are cythonized in parallel processes, the library's sources
and the extensions compiled in parallel threads (FASTOPTIM_BUILD_JOBS, default: the CPU count),
with one progress line per step (pip shows them with -v).  A rebuild in the same tree reuses
what is up to date; the build's configuration (compiler, flags, OpenMP, versions) is kept in
the build directory, and any change of it rebuilds everything, so a reused object was always
built the way _build_info.py says.
"""
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Kernel flags (csrc): C99 and warning-clean; hidden by default, exported through the headers'
# visibility pragmas; -fno-semantic-interposition lets calls inside the library bind locally.
CSRC_FLAGS = ["-std=c99", "-O3", "-fno-math-errno", "-Wall", "-Wextra", "-g0",
              "-fvisibility=hidden", "-fno-semantic-interposition"]
# Glue flags (Cython's generated C, which is neither C99- nor -Wextra-clean).  -ffp-contract=off:
# the schedulers' C steps (_optim_lr.pxi) are Python float arithmetic bit for bit only if no
# a * b + c is fused into one rounding (GCC fuses by default where the target has FMA).
GLUE_FLAGS = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-Wno-unused-function", "-g0"]
CYTHON_DIRECTIVES = {"language_level": 3, "boundscheck": False, "wraparound": False,
                     "cdivision": True, "initializedcheck": False, "embedsignature": True}
SANITIZERS = ("address", "undefined")   # what FASTOPTIM_SANITIZE may name
PUBLIC_HEADERS = ["fastoptim.h"]          # plus the generated fastoptim_version.h
VERSION_TEMPLATE = os.path.join("csrc", "fastoptim_version.h.in")


def _abi_version():
    """The C ABI version, said once: in csrc/fastoptim_version.h.in."""
    with open(VERSION_TEMPLATE) as f:
        return int(re.search(r"#define FASTOPTIM_ABI_VERSION (\d+)", f.read()).group(1))


def _library_name():
    return f"libfastoptim.so.{_abi_version()}"


def _newer(sources, target):
    """True when target is missing or older than one of sources (which must exist)."""
    if not os.path.exists(target):
        return True
    return max(os.path.getmtime(s) for s in sources) > os.path.getmtime(target)


def _csrc(pattern):
    return sorted(glob.glob(os.path.join("csrc", pattern)))


def _probe(cmd, flags, src, run=False):
    """True when the compiler builds (and, with run, runs) src with flags."""
    with tempfile.TemporaryDirectory() as d:
        c_path, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(c_path, "w") as f:
            f.write(src)
        try:
            subprocess.run(cmd + flags + [c_path, "-o", exe], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if run:
                subprocess.run([exe], check=True, stdout=subprocess.DEVNULL)
            return True
        except (OSError, subprocess.CalledProcessError):
            return False


def _sanitizers():
    """The sanitizers FASTOPTIM_SANITIZE names (comma-separated), checked; [] when unset."""
    value = os.environ.get("FASTOPTIM_SANITIZE", "")
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in SANITIZERS]
    if unknown:
        raise SystemExit(f"FASTOPTIM_SANITIZE={value!r}: unknown sanitizer {unknown[0]!r}; "
                         f"expected a comma-separated list of {', '.join(SANITIZERS)}")
    return kinds


def _sanitize_flags(kinds):
    """Compile and link flags of a sanitizer build (the same for both: gcc and clang link the
    runtimes when -fsanitize is on the link line)."""
    if not kinds:
        return []
    flags = [f"-fsanitize={','.join(kinds)}", "-fno-omit-frame-pointer", "-g1"]
    if "undefined" in kinds:
        flags.append("-fno-sanitize-recover=undefined")
    return flags


def _probe_openmp(cmd):
    if os.environ.get("FASTOPTIM_NO_OPENMP"):
        return False
    return _probe(cmd, ["-fopenmp"], "#include <omp.h>\nint main(void){int n=0;\n"
                  "#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n", run=True)


class BuildExt(build_ext):
    """build_ext that first builds libfastoptim and the generated files, then the extensions."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = int(os.environ.get("FASTOPTIM_BUILD_JOBS") or os.cpu_count() or 1)

    def _progress(self, what):
        print(f"fastoptim build: {what}", flush=True)

    def run(self):
        if not self.extensions:
            return
        self._setup_compiler()
        cc = self._cc.compiler_so
        self.openmp = _probe_openmp(cc)
        omp = ["-fopenmp"] if self.openmp else []
        macros = [("FO_HAVE_OPENMP", "1")] if self.openmp else []
        # -fno-semantic-interposition is gcc >= 5 and clang >= 11: drop it where unknown.
        csrc_flags = [f for f in CSRC_FLAGS if f != "-fno-semantic-interposition"
                      or _probe(cc, [f, "-c"], "int x;\n")]
        self.sanitize = _sanitizers()
        san = _sanitize_flags(self.sanitize)
        if san:
            csrc_flags = [f for f in csrc_flags if f != "-g0"]   # -g1 instead
        self.csrc_flags = csrc_flags + omp + san
        self.glue_flags = [f for f in GLUE_FLAGS if not (san and f == "-g0")] + omp + san
        # The library needs no Python: -z defs makes any undefined symbol a link error.
        self.lib_link = omp + san + ["-lm", "-Wl,-z,defs", f"-Wl,-soname,{_library_name()}"]
        self.glue_link = omp + san + ["-Wl,-rpath,$ORIGIN/../lib"]
        self.macros = macros
        self._check_config()

        # Where the package's built files go: the build's copy of it, or for an in-place or
        # editable build the source tree (where the extensions end up, next to lib/).
        in_tree = self.inplace or getattr(self, "editable_mode", False)
        pkg = "fastoptim" if in_tree else os.path.join(self.build_lib, "fastoptim")
        self.gen_dir = os.path.join(self.build_temp, "fastoptim-gen")
        os.makedirs(self.gen_dir, exist_ok=True)
        self._write_version_header()
        self._write_kernel_glue()
        lib = self._build_library(os.path.join(pkg, "lib"))
        bench_objs = self._compile_csrc(_csrc("bench_*.c"), "bench")

        import numpy
        from Cython.Build import cythonize
        inc = [self.gen_dir, "csrc", numpy.get_include()]
        # our Cython headers and included files: a .pyx is out of date when any of them changed
        # (the .pxi files are included into _tensor.pyx: a change to one must re-cythonize it)
        ours = [f for ext in ("pxd", "pxi")
                for f in glob.glob(os.path.join("fastoptim", "**", "*." + ext), recursive=True)]
        depends = _csrc("*.h") + _csrc("*.inc") + [VERSION_TEMPLATE] + ours
        for ext in self.extensions:
            ext.include_dirs = inc + list(ext.include_dirs)
            ext.define_macros = list(ext.define_macros) + macros + [
                ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
            ext.extra_compile_args = list(ext.extra_compile_args) + self.glue_flags
            ext.extra_link_args = list(ext.extra_link_args) + self.glue_link
            ext.extra_objects = list(ext.extra_objects) + [lib] + (
                bench_objs if ext.name == "fastoptim._C._bench" else [])
            # Not the library itself: relinking it (a kernel changed) leaves the extensions valid.
            ext.depends = list(ext.depends) + depends + (
                bench_objs if ext.name == "fastoptim._C._bench" else [])
        # Cythonize what changed.  Up to date means newer than the .pyx and all of our .pxd and
        # .pxi: not Cython's own test, which also follows numpy's .pxd, new files in every
        # isolated build environment (pip), so it would regenerate and recompile everything each
        # time; numpy's and Cython's versions are in the build configuration instead.
        todo = []
        for ext in self.extensions:
            c_file = os.path.join(self.build_temp, ext.sources[0][:-4] + ".c")
            # and than the .pxi files the .pyx includes (_tensor.pyx: _tensor_*.pxi), ours and
            # the generated ones (_optim.pyx: _optim_kernels.pxi)
            stem = ext.sources[0][:-4]
            pxi = glob.glob(stem + "_*.pxi") + glob.glob(
                os.path.join(self.gen_dir, os.path.basename(stem) + "_*.pxi"))
            if self.force or _newer(ext.sources + ours + pxi, c_file):
                todo.append(ext)
            else:
                ext.sources = [c_file]
        if todo:
            self._progress(f"cythonize {len(todo)} modules ({self.parallel} processes)")
            generated = cythonize(
                todo, nthreads=self.parallel if self.parallel > 1 else 0,
                build_dir=self.build_temp, force=True, quiet=False,
                include_path=[".", self.gen_dir], compiler_directives=CYTHON_DIRECTIVES)
            # Keep setuptools' own Extension objects (finalize_options annotated them): only
            # their sources change, from the .pyx to the generated .c in the build directory.
            by_name = {e.name: e for e in generated}
            for ext in todo:
                ext.sources = by_name[ext.name].sources
        self._progress(f"compile and link {len(self.extensions)} extension modules "
                       f"({self.parallel} at a time)")
        super().run()
        self._write_outputs(pkg, in_tree)
        self._progress("done")

    def build_extension(self, ext):
        self._progress(f"  {ext.name}")
        super().build_extension(ext)

    # ---- pieces ---------------------------------------------------------------------------
    def _setup_compiler(self):
        """A compiler for csrc, made as build_ext.run() makes the extensions' one (so with CC,
        CFLAGS, LDSHARED and LDFLAGS from the environment)."""
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler
        self._cc = new_compiler(compiler=self.compiler, force=self.force)
        customize_compiler(self._cc)

    def _config(self):
        import Cython
        import numpy
        return {"compiler_so": self._cc.compiler_so, "linker_so": self._cc.linker_so,
                "csrc_flags": self.csrc_flags, "glue_flags": self.glue_flags,
                "lib_link": self.lib_link, "glue_link": self.glue_link,
                "openmp": self.openmp, "sanitize": self.sanitize, "python": sys.version,
                "numpy": numpy.__version__,
                "cython": Cython.__version__, "version": self.distribution.get_version(),
                "abi": _abi_version()}

    def _check_config(self):
        """Rebuild everything when the configuration differs from the one that built the tree."""
        stamp = os.path.join(self.build_temp, "fastoptim-build-config.json")
        cfg = self._config()
        try:
            with open(stamp) as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        if old != cfg:
            if old is not None:
                self._progress("build configuration changed: rebuilding everything")
            self.force = True
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            json.dump(cfg, f, indent=1)

    def _write_version_header(self):
        version = self.distribution.get_version()
        major, minor, patch = (re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups())
        with open(VERSION_TEMPLATE) as f:
            text = f.read()
        for k, v in (("VERSION", version), ("MAJOR", major), ("MINOR", minor),
                     ("PATCH", patch)):
            text = text.replace(f"@{k}@", v)
        self._write_if_changed(os.path.join(self.gen_dir, "fastoptim_version.h"), text)

    def _write_kernel_glue(self):
        """_optim_kernels.pxi: each elementwise kernel's filler, runner and registration, which
        _optim.pyx includes, generated from the optimizer descriptions (both modules loaded by
        path: the package cannot be imported before it is built)."""
        def load(name, path):
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module    # (dataclasses look their module up there)
            try:
                spec.loader.exec_module(module)
            finally:
                del sys.modules[name]
            return module

        optim = os.path.join("fastoptim", "optim")
        rows = load("_fastoptim_descriptions", os.path.join(optim, "_descriptions.py"))
        gen = load("_fastoptim_kernel_glue", os.path.join(optim, "_kernel_glue.py"))
        self._write_if_changed(os.path.join(self.gen_dir, "_optim_kernels.pxi"),
                               gen.glue(rows.DESCRIPTIONS))

    def _write_if_changed(self, path, text):
        try:
            with open(path) as f:
                if f.read() == text:
                    return
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(text)

    def _compile_csrc(self, sources, what):
        """Compile csrc sources with the kernel flags, in parallel; return the object files."""
        out_dir = os.path.join(self.build_temp, "csrc-" + what)
        headers = _csrc("*.h") + _csrc("*.inc") + [
            os.path.join(self.gen_dir, "fastoptim_version.h")]

        def one(i_src):
            i, src = i_src
            obj = self._cc.object_filenames([src], output_dir=out_dir)[0]
            if self.force or _newer([src] + headers, obj):
                self._progress(f"  [{what} {i + 1}/{len(sources)}] {src}")
                self._cc.compile([src], output_dir=out_dir, macros=self.macros,
                                      include_dirs=[self.gen_dir, "csrc"],
                                      extra_postargs=self.csrc_flags)
            return obj

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(one, enumerate(sources)))

    def _build_library(self, lib_dir):
        sources = [s for s in _csrc("*.c") if not os.path.basename(s).startswith("bench_")]
        self._progress(f"libfastoptim: {len(sources)} C sources")
        objs = self._compile_csrc(sources, "lib")
        lib = os.path.join(lib_dir, _library_name())
        if self.force or _newer(objs, lib):
            self._progress(f"  link {lib}")
            os.makedirs(lib_dir, exist_ok=True)
            self._cc.link_shared_object(objs, lib, extra_postargs=self.lib_link)
        return lib

    def _write_outputs(self, pkg, in_tree):
        inc = os.path.join(pkg, "include")
        os.makedirs(inc, exist_ok=True)
        # include/ holds the public headers only, even in a build tree an older build filled.
        for old in os.listdir(inc):
            if old not in PUBLIC_HEADERS + ["fastoptim_version.h"]:
                os.remove(os.path.join(inc, old))
        if not in_tree:
            # Nor does the build's copy of the package keep generated C from an older layout
            # (Cython's output now lives in build_temp), which would end up in the wheel.
            for old in glob.glob(os.path.join(pkg, "**", "*.c"), recursive=True):
                os.remove(old)
        for h in PUBLIC_HEADERS:
            with open(os.path.join("csrc", h)) as f:
                self._write_if_changed(os.path.join(inc, h), f.read())
        with open(os.path.join(self.gen_dir, "fastoptim_version.h")) as f:
            self._write_if_changed(os.path.join(inc, "fastoptim_version.h"), f.read())
        cfg = self._config()
        version = cfg["version"]
        pc_dir = os.path.join(pkg, "lib", "pkgconfig")
        os.makedirs(pc_dir, exist_ok=True)
        self._write_if_changed(os.path.join(pc_dir, "fastoptim.pc"), (
            "# fastoptim's C library, inside the installed Python package (paths relative to\n"
            "# this file, so it holds wherever the package is); see fastoptim-config.\n"
            "prefix=${pcfiledir}/../..\n"
            "includedir=${prefix}/include\n"
            "libdir=${prefix}/lib\n\n"
            "Name: fastoptim\n"
            "Description: fastoptim's C kernels (optimizer updates, tensor ops)\n"
            f"Version: {version}\n"
            "Cflags: -I${includedir}\n"
            f"Libs: -L${{libdir}} -l:{_library_name()} -Wl,-rpath,${{libdir}}\n"))
        cc = " ".join(cfg["compiler_so"])
        self._write_if_changed(os.path.join(pkg, "_build_info.py"), (
            '"""Written by setup.py\'s build_ext; read by fastoptim.show_config()."""\n'
            f"version = {version!r}\n"
            f"abi_version = {cfg['abi']!r}\n"
            f"library = {_library_name()!r}\n"
            f"compiler = {cc!r}\n"
            f"c_flags = {cfg['csrc_flags']!r}\n"
            f"glue_flags = {cfg['glue_flags']!r}\n"
            f"openmp = {cfg['openmp']!r}\n"
            f"sanitize = {cfg['sanitize']!r}\n"
            f"python = {sys.version.split()[0]!r}\n"
            f"numpy_build = {cfg['numpy']!r}\n"))


def _extensions():
    return [Extension(pyx[:-4].replace(os.sep, "."), sources=[pyx])
            for pyx in sorted(glob.glob(os.path.join("fastoptim", "_C", "*.pyx")))]


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
