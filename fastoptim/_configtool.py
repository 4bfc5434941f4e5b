"""``fastoptim-config``: the flags that compile and link C code against fastoptim's kernels.

In the style of ``numpy-config`` and ``pybind11 --includes``: a program built with

    cc prog.c $(fastoptim-config --cflags --libs)

finds fastoptim.h and links libfastoptim from the installed package, and runs without
LD_LIBRARY_PATH (--libs carries an rpath to the package's lib/).  ``--pkgconfigdir`` is a
directory holding fastoptim.pc, for build systems that use pkg-config
(``PKG_CONFIG_PATH=$(fastoptim-config --pkgconfigdir) pkg-config --cflags --libs fastoptim``).
The library's file name carries its ABI version (libfastoptim.so.<ABI>, also its SONAME), so it
is linked by name with ``-l:``.
"""
import argparse
import os
import shlex
import sys


def _quote(path):
    return shlex.quote(path)


def main(argv=None):
    import fastoptim
    from fastoptim import _build_info, _config

    p = argparse.ArgumentParser(prog="fastoptim-config", description=__doc__.split("\n")[0])
    p.add_argument("--cflags", action="store_true", help="compiler flags (-I to fastoptim.h)")
    p.add_argument("--libs", action="store_true",
                   help="linker flags (-L, -l and an rpath to the library)")
    p.add_argument("--version", action="store_true", help="fastoptim's version")
    p.add_argument("--abi-version", action="store_true", help="the C ABI version")
    p.add_argument("--pkgconfigdir", action="store_true", help="directory of fastoptim.pc")
    args = p.parse_args(argv)
    if not any(vars(args).values()):
        p.print_help(sys.stderr)
        return 2
    out = []
    if args.version:
        out.append(fastoptim.__version__)
    if args.abi_version:
        out.append(str(_build_info.abi_version))
    if args.cflags:
        out.append("-I" + _quote(_config.get_include()))
    if args.libs:
        lib = _config.get_library_dir()
        out.append(f"-L{_quote(lib)} -l:{_build_info.library} -Wl,-rpath,{_quote(lib)}")
    if args.pkgconfigdir:
        out.append(os.path.join(_config.get_library_dir(), "pkgconfig"))
    print(" ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
