"""fastoptim's benchmark suite: ``python benchmarks/run.py [--quick] [options]``.

Times fastoptim against torch (when installed) and the NumPy twins in the same run, prints a table
with the targets' pass/fail marks, writes JSON (and a PNG chart when matplotlib is there), and with
``--compare BASELINE.json`` exits 1 when a figure regressed.  See benchmarks/README.md.

How a run is organised: each thread count runs in its own worker process (this script with
``--_worker``) whose environment sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS
before anything is imported, and which also calls fastoptim's and torch's set-threads functions,
so every library in a row gets the same count (NumPy's BLAS included, which cannot be changed
once loaded).  Workers write their rows to a temporary JSON file; this process merges them.  In
the regimes named by ``--isolate``, a worker times each contender in rounds of fresh processes
forked from one zygote per library (``isolated.py``), so no other library's threads exist while
a contender runs.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The environment as launched, before importing fastoptim (which sets OMP_WAIT_POLICY when the
# user has not): workers and the processes of isolated timing start from it, so torch's own
# processes run with torch's defaults and fastoptim's with fastoptim's.
LAUNCH_ENV = dict(os.environ)

try:   # prefer an installed fastoptim; fall back to an in-place build in this checkout
    import fastoptim  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)

import report
from chart import draw
from contenders import ISOLATE_DEFAULT


def _parse(argv):
    ap = argparse.ArgumentParser(prog="python benchmarks/run.py",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (under two minutes)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, one repeat: proves the suite runs (tests use it)")
    ap.add_argument("--threads", default="1,2", help="thread counts, one row each (default 1,2)")
    ap.add_argument("--regimes", default="a,b,c,d,e,f", help="subset of a,b,c,d,e,f")
    ap.add_argument("--isolate", default=None, metavar="REGIMES",
                    help="timed regimes whose contenders each run in their own processes "
                    f"(default: {ISOLATE_DEFAULT}; 'none': all interleaved in one process)")
    ap.add_argument("--optimizers", default=None, help="subset of sgd,adam,adamw,rmsprop,"
                    "adagrad,adadelta (default all)")
    ap.add_argument("--json", default=None, help="where to write the results (default "
                    "benchmarks/results/<time>.json)")
    ap.add_argument("--png", default=None, help="where to draw the chart (default: next to the "
                    "JSON); needs matplotlib")
    ap.add_argument("--compare", default=None, metavar="BASELINE.json",
                    help="exit 1 if a figure is worse than in this saved run by > threshold")
    ap.add_argument("--threshold", type=float, default=0.10,
                    help="relative regression threshold for --compare (default 0.10)")
    ap.add_argument("--load", default=None, metavar="RUN.json",
                    help="do not measure: report (and compare) a saved run")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_progress", default="0,1", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    args.thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
    args.regime_list = [r.strip() for r in args.regimes.split(",") if r.strip()]
    iso = ISOLATE_DEFAULT if args.isolate is None else args.isolate
    args.isolate_list = [] if iso == "none" else [r.strip() for r in iso.split(",") if r.strip()]
    return args


# ---- environment ---------------------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    try:
        git = ["git", "-C", ROOT]
        kw = {"capture_output": True, "text": True, "timeout": 10}
        out = subprocess.run([*git, "rev-parse", "HEAD"], check=False, **kw)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                               check=False, **kw).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def environment():
    """Machine, versions and build flags: what a reader needs to trust (or not) the figures."""
    import numpy

    import fastoptim
    machine = {"cpu": _cpu_model(), "machine": platform.machine(), "os": platform.platform(),
               "hostname": platform.node(), "cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        machine["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        machine["memory_bytes"] = pages
    except (ValueError, OSError, AttributeError):
        pass
    # Same-machine comparisons key on this (not the hostname: containers rename themselves).
    machine["id"] = f"{machine['cpu']}|{machine['cpu_count']}|{machine.get('memory_bytes')}"
    versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                "fastoptim": fastoptim.__version__, "fastoptim_path": fastoptim.__file__,
                "fastoptim_commit": _git_commit()}
    try:
        import torch
        versions["torch"] = torch.__version__
    except ImportError:
        versions["torch"] = None
    try:
        import matplotlib
        versions["matplotlib"] = matplotlib.__version__
    except ImportError:
        versions["matplotlib"] = None
    flags = {}
    try:
        from fastoptim import _build_info as bi
        flags["fastoptim"] = {"compiler": bi.compiler, "c_flags": bi.c_flags, "openmp": bi.openmp}
    except ImportError:
        flags["fastoptim"] = None
    if versions["torch"]:
        import torch
        flags["torch"] = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "parallel": torch.__config__.parallel_info().splitlines()[:3]}
    return machine, versions, flags


# ---- worker: one thread count --------------------------------------------------------------

def worker(args):
    import json

    import regimes
    from progress import Bar

    threads = args.thread_list[0]
    regimes.set_threads(threads)
    mode = regimes.MODES[args.mode]
    opts = args.optimizers.split(",") if args.optimizers else regimes.OPTIMIZER_NAMES
    start, total = (int(x) for x in args._progress.split(","))
    bar = Bar(total, start)
    rows = []
    ctx = regimes.Context(mode, threads, tuple(args.isolate_list), LAUNCH_ENV)
    try:
        for reg, opt in regimes.tasks(args.regime_list, opts):
            bar.step(f"({reg}) {opt}, {threads} thread{'s' if threads > 1 else ''}")
            rows.append(regimes.run_task(reg, opt, ctx))
    finally:
        ctx.close()
    bar.close()
    with open(args._worker, "w") as f:
        json.dump({"threads": threads, "thread_check": regimes.thread_check(), "rows": rows}, f)


def measure(args, argv):
    """Run one worker per thread count; return (rows, thread checks)."""
    import json

    import regimes
    opts = args.optimizers.split(",") if args.optimizers else regimes.OPTIMIZER_NAMES
    unknown = (set(args.regime_list) - set(regimes.RUNNERS) | set(opts) - set(
        regimes.OPTIMIZER_NAMES) | set(args.isolate_list) - set(regimes.TIMED))
    if unknown:
        sys.exit(f"unknown regime or optimizer: {', '.join(sorted(unknown))}")
    per_worker = len(regimes.tasks(args.regime_list, opts))
    total = per_worker * len(args.thread_list)
    rows, checks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k, th in enumerate(args.thread_list):
            out = os.path.join(tmp, f"t{th}.json")
            env = dict(LAUNCH_ENV, OMP_NUM_THREADS=str(th), OPENBLAS_NUM_THREADS=str(th),
                       MKL_NUM_THREADS=str(th))
            cmd = [sys.executable, os.path.abspath(__file__), *argv, "--threads", str(th),
                   "--_worker", out, "--_progress", f"{k * per_worker},{total}"]
            rc = subprocess.run(cmd, env=env, check=False).returncode
            if rc != 0:
                sys.exit(f"benchmark worker for {th} thread(s) failed (exit {rc})")
            with open(out) as f:
                got = json.load(f)
            rows += got["rows"]
            checks.append({"threads": th, **got["thread_check"]})
    return rows, checks


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    if args._worker:
        worker(args)
        return 0
    import regimes

    if args.load:
        data = report.read_json(args.load)
    else:
        t0 = datetime.datetime.now()
        # Workers get the measuring options only (not --json/--compare/...).
        passthrough = [a for a in ("--quick", "--smoke") if getattr(args, a[2:])]
        passthrough += ["--regimes", ",".join(args.regime_list),
                        "--isolate", ",".join(args.isolate_list) or "none"]
        if args.optimizers:
            passthrough += ["--optimizers", args.optimizers]
        load_before = _loadavg()
        rows, checks = measure(args, passthrough)
        machine, versions, flags = environment()
        # Anything else running skews the timings, the 2-thread rows most: on a 2-core machine
        # one busy neighbour stalls every parallel region (a 0.5 ms MLP step takes 30-40 ms).
        machine["loadavg"] = {"before": load_before, "after": _loadavg()}
        data = {"schema": 1, "created": t0.isoformat(timespec="seconds"),
                "seconds": round((datetime.datetime.now() - t0).total_seconds(), 1),
                "command": [os.path.basename(sys.executable), "benchmarks/run.py", *argv],
                "mode": args.mode, "machine": machine, "versions": versions, "flags": flags,
                "config": {"threads": args.thread_list, "regimes": args.regime_list,
                           "isolate": args.isolate_list,
                           "mode": vars(regimes.MODES[args.mode])},
                "thread_check": checks, "rows": rows}
        if versions.get("torch") and not versions["torch"].startswith("2.13.0"):
            print(f"note: torch {versions['torch']} is installed; the reference is 2.13.0",
                  file=sys.stderr)
    data["figures"] = [f for row in data["rows"] for f in report.figures(row)]
    print(report.table(data, regimes.REGIMES))

    json_path = args.json
    if json_path is None and not args.load:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        stamp = data["created"].replace(":", "").replace("-", "")
        json_path = os.path.join(HERE, "results", f"{stamp}-{args.mode}.json")
    if json_path:
        report.write_json(data, json_path)
        print(f"\nJSON: {json_path}")
    png_path = args.png or (os.path.splitext(json_path)[0] + ".png" if json_path else None)
    if png_path:
        if draw(data, png_path):
            print(f"PNG:  {png_path}")
        else:
            print("PNG:  skipped (matplotlib is not installed: pip install 'fastoptim[bench]')")

    if args.compare:
        regressions, notes = report.compare(data, report.read_json(args.compare),
                                            args.threshold)
        for n in notes:
            print(f"compare: {n}")
        if regressions:
            print(f"\n{len(regressions)} figure(s) regressed by more than "
                  f"{args.threshold:.0%} against {args.compare}:")
            for r in regressions:
                print(report.format_regression(*r))
            return 1
        print(f"\ncompare: no figure regressed by more than {args.threshold:.0%} against "
              f"{args.compare}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
