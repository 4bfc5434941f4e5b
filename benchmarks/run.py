"""fastoptim's benchmark suite: ``python benchmarks/run.py [--smoke|--quick] [options]``.

Times fastoptim against torch (when installed) and the NumPy twins in the same run, prints a table
with each figure's spread and the targets' verdicts, writes JSON (and a PNG chart when matplotlib
is there), and with ``--compare BASELINE.json`` exits 1 when a comparable figure regressed.  See
benchmarks/README.md.

How a run is organised: each thread count runs in its own worker process (this script with
``--_worker``) whose environment sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS
before anything is imported, and which also calls fastoptim's and torch's set-threads functions,
so every library in a row gets the same count (NumPy's BLAS included, which cannot be changed
once loaded).  A worker streams each row, as soon as it is measured, as one JSON line on its
stdout; this process adds it to the run and rewrites the run's JSON file atomically, so a run
killed at any point leaves a loadable file of what it measured (``"complete": false``).  In the
regimes named by ``--isolate``, a worker times each contender in rounds of fresh processes
forked from one zygote per library (``isolated.py``), so no other library's threads exist while
a contender runs.

Before measuring, the run records the machine (``machine.py``: CPU, caches, a bandwidth probe)
and the load; it warns on stderr when the machine is busy, before and while it runs.
``--repeat N`` runs the whole suite N times and reports the median of the N medians;
``--merge-into RUN.json`` puts the rows of a subset run into a saved run of the same machine and
mode.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

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

import machine
import report
from chart import draw
from contenders import ISOLATE_DEFAULT, MODES

PROBE_S = {"full": 1.0, "quick": 1.0, "smoke": 0.25}   # seconds of the bandwidth probe


def _parse(argv):
    ap = argparse.ArgumentParser(prog="python benchmarks/run.py",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats, 4M-element (a) and (f): verdicts only for the regimes "
                    "run at the targets' sizes")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, one repeat: proves the suite runs, no verdicts (CI, tests)")
    ap.add_argument("--threads", default="1,2", help="thread counts, one row each (default 1,2)")
    ap.add_argument("--regimes", default="a,b,c,d,e,f", help="subset of a,b,c,d,e,f,ta,tb,tc,te")
    ap.add_argument("--isolate", default=None, metavar="REGIMES",
                    help="timed regimes whose contenders each run in their own processes "
                    f"(default: {ISOLATE_DEFAULT}; 'none': all interleaved in one process)")
    ap.add_argument("--optimizers", default=None, help="subset of sgd,adam,adamw,rmsprop,"
                    "adagrad,adadelta,adafactor (default all; adafactor runs in a-c only)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run the suite N times; report the median of the N medians")
    ap.add_argument("--json", default=None, help="where to write the results (default "
                    "benchmarks/results/<time>-<mode>.json), rewritten after every row")
    ap.add_argument("--png", default=None, help="where to draw the chart (default: next to the "
                    "JSON); needs matplotlib")
    ap.add_argument("--merge-into", default=None, metavar="RUN.json",
                    help="after measuring, put this run's rows into RUN.json (a saved run of "
                    "the same machine and mode), replacing rows of the same regime, optimizer "
                    "and threads")
    ap.add_argument("--compare", default=None, metavar="BASELINE.json",
                    help="exit 1 if a comparable figure is worse than in this saved run by > "
                    "threshold (across machines or modes: machine-independent figures only)")
    ap.add_argument("--compare-all", action="store_true",
                    help="with --compare: compare every figure even across machines or modes")
    ap.add_argument("--threshold", type=float, default=0.10,
                    help="relative regression threshold for --compare (default 0.10)")
    ap.add_argument("--load", default=None, metavar="RUN.json",
                    help="do not measure: report (and compare) a saved run")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_progress", default="0,1", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick and args.smoke:
        ap.error("--quick and --smoke exclude each other")
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.load and args.merge_into:
        ap.error("--merge-into needs a measured run, not --load")
    args.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    args.thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
    args.regime_list = [r.strip() for r in args.regimes.split(",") if r.strip()]
    iso = ISOLATE_DEFAULT if args.isolate is None else args.isolate
    args.isolate_list = [] if iso == "none" else [r.strip() for r in iso.split(",") if r.strip()]
    return args


# ---- environment ---------------------------------------------------------------------------

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


def environment(probe_s):
    """Machine, versions and build flags: what a reader needs to trust (or not) the figures."""
    import numpy

    import fastoptim
    facts = machine.facts(probe_s)
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
    if flags["fastoptim"] is not None:
        # what the optimizer loops run on (FASTOPTIM_SIMD=baseline forces SSE2) and what the
        # roofline yardstick runs on (the widest this CPU has, csrc/bench_roofline.c)
        from fastoptim._C import _bench
        from fastoptim._config import _loaded_simd
        flags["fastoptim"].update(simd=_loaded_simd(), roofline_simd=_bench.roofline_simd())
    if versions["torch"]:
        import torch
        flags["torch"] = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "parallel": torch.__config__.parallel_info().splitlines()[:3]}
    return facts, versions, flags


def _warn(msg):
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)


# ---- worker: one thread count --------------------------------------------------------------

def worker(args):
    """Measure every task at one thread count; each row goes out as one JSON line on the
    original stdout as soon as it is measured (anything else printed goes to stderr)."""
    import regimes
    from progress import Bar

    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    threads = args.thread_list[0]
    regimes.set_threads(threads)
    mode = regimes.MODES[args.mode]
    opts = args.optimizers.split(",") if args.optimizers else regimes.OPTIMIZER_NAMES
    start, total = (int(x) for x in args._progress.split(","))
    bar = Bar(total, start)
    ctx = regimes.Context(mode, threads, tuple(args.isolate_list), LAUNCH_ENV)
    try:
        for reg, opt in regimes.tasks(args.regime_list, opts):
            bar.step(f"({reg}) {opt}, {threads} thread{'s' if threads > 1 else ''}")
            load0 = machine.loadavg()
            row = regimes.run_task(reg, opt, ctx)
            row["loadavg"] = {"start": load0, "end": machine.loadavg()}
            proto.write(json.dumps({"row": row}) + "\n")
            proto.flush()
    finally:
        ctx.close()
    bar.close()
    proto.write(json.dumps({"thread_check": regimes.thread_check()}) + "\n")
    proto.flush()


# ---- the parent: a run as it comes ---------------------------------------------------------

def combine_repeats(rows, mode_cfg):
    """Rows of N repeats of the suite -> one row per (regime, optimizer, threads): each
    contender's median is the median of the repeats' medians, its rounds are all repeats'
    rounds (the spread then covers the repeats), memory figures are medians too."""
    groups = {}
    for row in rows:
        groups.setdefault((row["regime"], row["optimizer"], row["threads"]), []).append(row)
    out = []
    for same in groups.values():
        if len(same) == 1:
            out.append(same[0])
            continue
        first = same[0]
        row = {k: v for k, v in first.items() if k not in ("times", "memory", "loadavg")}
        row["repeats"] = len(same)
        row["loadavg"] = [r.get("loadavg") for r in same]
        if "times" in first:
            row["times"] = {}
            for name in first["times"]:
                got = [r["times"][name] for r in same if name in r.get("times", {})]
                row["times"][name] = {
                    "median_ns": report.median([t["median_ns"] for t in got]),
                    "repeat_medians_ns": [t["median_ns"] for t in got],
                    "samples_ns": [x for t in got for x in t["samples_ns"]],
                    "rounds_ns": [x for r in same if name in r.get("times", {})
                                  for x in report.rounds(r, name, mode_cfg)],
                    "number": got[0].get("number")}
        if "memory" in first:
            row["memory"] = {}
            for key in first["memory"]:
                vals = [r["memory"][key] for r in same if r["memory"].get(key) is not None]
                row["memory"][key] = report.median(vals) if vals else None
        out.append(row)
    return out


class Run:
    """The run's JSON as it grows: every added row rewrites the file (atomically)."""

    def __init__(self, data, path, repeat):
        self.data, self.path, self.repeat = data, path, repeat
        self.raw = []
        self.warned = False
        self.busiest = 0.0
        self.cores = data["machine"].get("cpus_usable") or 1

    def save(self):
        d = self.data
        cfg = d["config"]["mode"]
        d["rows"] = combine_repeats(self.raw, cfg) if self.repeat > 1 else list(self.raw)
        if self.repeat > 1:
            d["repeat_rows"] = self.raw
        d["figures"] = report.all_figures(d)
        d["seconds"] = round((datetime.datetime.now() - self.t0).total_seconds(), 1)
        if self.path:
            report.write_json(d, self.path)

    def add(self, row):
        self.raw.append(row)
        la = row.get("loadavg", {}).get("end")
        if la:
            load = self.data["machine"]["loadavg"]
            load["during"].append(la[0])
            if machine.busy(la[0], self.cores, row["threads"]):
                self.busiest = max(self.busiest, la[0])
                load["busy"] = (f"load average up to {self.busiest:.2f} while timing, "
                                f"{row['threads']} thread(s) of it this run's")
                if not self.warned:
                    self.warned = True
                    _warn(f"the machine is busy: load average {la[0]:.2f} on {self.cores} "
                          f"cores while timing ({row['regime']}) {row['optimizer']} at "
                          f"{row['threads']} thread(s); figures will be noisy (see 'unsure')")
        self.save()


def measure(args, argv, run):
    """Run one worker per thread count (``--repeat`` times), adding rows to ``run`` as they
    come; the thread checks go into the run too."""
    import regimes
    opts = args.optimizers.split(",") if args.optimizers else regimes.OPTIMIZER_NAMES
    per_worker = len(regimes.tasks(args.regime_list, opts))
    total = per_worker * len(args.thread_list) * args.repeat
    k = 0
    for rep in range(args.repeat):
        for th in args.thread_list:
            env = dict(LAUNCH_ENV, OMP_NUM_THREADS=str(th), OPENBLAS_NUM_THREADS=str(th),
                       MKL_NUM_THREADS=str(th))
            cmd = [sys.executable, os.path.abspath(__file__), *argv, "--threads", str(th),
                   "--_worker", "--_progress", f"{k * per_worker},{total}"]
            k += 1
            with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as proc:
                for line in proc.stdout:
                    msg = json.loads(line)
                    if "row" in msg:
                        msg["row"]["repeat"] = rep
                        run.add(msg["row"])
                    elif "thread_check" in msg:
                        run.data["thread_check"].append({"threads": th, "repeat": rep,
                                                         **msg["thread_check"]})
                rc = proc.wait()
            if rc != 0:
                run.data["error"] = f"benchmark worker for {th} thread(s) failed (exit {rc})"
                run.save()
                sys.exit(run.data["error"] + (f"; rows so far: {run.path}" if run.path else ""))


def check_merge(data, path):
    """Exit 2 (before measuring anything) unless the saved run at ``path`` has the same
    machine and mode as ``data`` (``machine``, ``mode`` and ``config.mode`` are enough): rows
    of two machines or modes in one run would lie."""
    with open(path) as f:
        target = json.load(f)
    problems = []
    same = report.same_machine(target.get("machine"), data["machine"])
    if same is None:
        problems.append(f"{path} did not record its machine (old schema)")
    elif not same:
        problems.append(f"{path} was measured on another machine "
                        f"({report.describe_machine(target.get('machine'))})")
    if target.get("mode") != data["mode"] or \
            target.get("config", {}).get("mode") != data["config"]["mode"]:
        problems.append(f"{path} is a {target.get('mode')!r} run, this one {data['mode']!r}")
    if problems:
        print("refusing to merge: " + "; ".join(problems), file=sys.stderr)
        sys.exit(2)
    return target


def merge_into(data, path):
    """``data``'s rows put into the saved run at ``path`` (see ``check_merge``); returns the
    merged run, written back to ``path``."""
    target = check_merge(data, path)
    key = lambda r: (r["regime"], r["optimizer"], r["threads"])   # noqa: E731
    new = {key(r): dict(r, merged_from=data["created"]) for r in data["rows"]}
    rows = [new.pop(key(r), r) for r in target["rows"]] + list(new.values())
    measured = set(data["config"]["regimes"])
    cfg = target["config"]
    cfg["regimes"] = list(dict.fromkeys(cfg["regimes"] + data["config"]["regimes"]))
    cfg["threads"] = sorted(set(cfg["threads"]) | set(data["config"]["threads"]))
    cfg["isolate"] = sorted({r for r in cfg.get("isolate", []) if r not in measured}
                            | set(data["config"]["isolate"]) & measured)
    target["rows"] = rows
    target.setdefault("merges", []).append({
        "created": data["created"], "command": data["command"],
        "commit": data["versions"]["fastoptim_commit"], "loadavg": data["machine"]["loadavg"],
        "rows": [f"{r['regime']}/{r['optimizer']}/t{r['threads']}" for r in data["rows"]]})
    target["figures"] = report.all_figures(target)
    report.write_json(target, path)
    return target


def new_run(args, argv, json_path):
    """The run's skeleton (machine, versions, config), written before the first row."""
    import regimes
    load_before = machine.loadavg()
    facts, versions, flags = environment(PROBE_S[args.mode])
    facts["loadavg"] = {"before": load_before, "during": [], "after": None, "busy": None}
    cores = facts.get("cpus_usable") or 1
    if load_before and machine.busy(load_before[0], cores):
        facts["loadavg"]["busy"] = f"load average {load_before[0]:.2f} before the run"
        _warn(f"the machine is busy: load average {load_before[0]:.2f} on {cores} cores before "
              "the run; timings will be noisy and verdicts may be 'unsure'")
    if versions.get("torch") and not versions["torch"].startswith("2.13.0"):
        print(f"note: torch {versions['torch']} is installed; the reference is 2.13.0",
              file=sys.stderr)
    t0 = datetime.datetime.now()
    data = {"schema": 2, "created": t0.isoformat(timespec="seconds"), "complete": False,
            "seconds": 0.0, "command": [os.path.basename(sys.executable), "benchmarks/run.py",
                                        *argv],
            "mode": args.mode, "machine": facts, "versions": versions, "flags": flags,
            "config": {"threads": args.thread_list, "regimes": args.regime_list,
                       "isolate": args.isolate_list, "repeat": args.repeat,
                       "mode": vars(regimes.MODES[args.mode])},
            "titles": regimes.REGIMES, "thread_check": [], "rows": [], "figures": []}
    run = Run(data, json_path, args.repeat)
    run.t0 = t0
    return run


def _default_json(mode):
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    return os.path.join(HERE, "results", f"{stamp}-{mode}.json")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    if args._worker:
        worker(args)
        return 0
    baseline = report.read_json(args.compare) if args.compare else None
    if args.load:
        data = report.read_json(args.load)
        json_path = args.json
    else:
        if args.merge_into:     # refuse before spending anything on measuring
            check_merge({"machine": machine.facts(probe_s=0), "mode": args.mode,
                         "config": {"mode": vars(MODES[args.mode])}}, args.merge_into)
        import regimes
        opts = args.optimizers.split(",") if args.optimizers else regimes.OPTIMIZER_NAMES
        unknown = (set(args.regime_list) - set(regimes.RUNNERS) | set(opts) - set(
            regimes.OPTIMIZER_NAMES) | set(args.isolate_list) - set(regimes.TIMED))
        if unknown:
            sys.exit(f"unknown regime or optimizer: {', '.join(sorted(unknown))}")
        json_path = args.json or _default_json(args.mode)
        run = new_run(args, argv, json_path)
        if baseline is not None:      # what differs from the baseline: said before anything
            for line in report.comparability(run.data, baseline, args.compare_all)[0]:
                print(f"compare: {line}", flush=True)
        print(f"JSON (rewritten after every row): {json_path}", file=sys.stderr, flush=True)
        run.save()
        # Workers get the measuring options only (not --json/--compare/...).
        passthrough = [a for a in ("--quick", "--smoke") if getattr(args, a[2:])]
        passthrough += ["--regimes", ",".join(args.regime_list),
                        "--isolate", ",".join(args.isolate_list) or "none"]
        if args.optimizers:
            passthrough += ["--optimizers", args.optimizers]
        try:
            measure(args, passthrough, run)
        except KeyboardInterrupt:
            run.data["interrupted"] = True
            run.save()
            print(f"\ninterrupted: {len(run.data['rows'])} rows kept in {json_path}",
                  file=sys.stderr)
            return 130
        run.data["machine"]["loadavg"]["after"] = machine.loadavg()
        run.data["complete"] = True
        run.save()
        data = run.data
        if args.merge_into:
            data = merge_into(data, args.merge_into)
            json_path = args.merge_into
            print(f"merged {len(run.data['rows'])} rows into {args.merge_into}",
                  file=sys.stderr)

    comparison = None
    if baseline is not None:
        comparison = report.compare(data, baseline, args.threshold, args.compare_all)
        if args.load:       # first, before the table (a measured run said it before measuring)
            for line in comparison.header:
                print(f"compare: {line}")
    data["figures"] = report.all_figures(data)
    titles = data.get("titles")
    if titles is None:      # a run saved before it recorded them (or merged into one)
        import regimes
        titles = regimes.REGIMES
    print(report.table(data, titles))
    if json_path:
        if args.load:
            report.write_json(data, json_path)
        print(f"\nJSON: {json_path}")
    png_path = args.png or (os.path.splitext(json_path)[0] + ".png" if json_path else None)
    if png_path:
        if draw(data, png_path, titles):
            print(f"PNG:  {png_path}")
        else:
            print("PNG:  skipped (matplotlib is not installed: pip install 'fastoptim[bench]')")

    if comparison is not None:
        return _report_comparison(comparison, args)
    return 0


def _report_comparison(c, args):
    print()
    for line in c.header:
        print(f"compare: {line}")
    for reason, n in sorted(c.skipped.items()):
        print(f"compare: {n} figure(s) not compared: {reason}")
    if c.refused:
        print(f"compare: REFUSED: no figure of this run can be compared with {args.compare} "
              "(--compare-all to force)")
        return 2
    for r in c.unsure:
        print(report.format_regression(*r, mark="unsure"))
    if c.unsure:
        print(f"compare: {len(c.unsure)} figure(s) worse by more than {args.threshold:.0%} but "
              "within the two runs' spreads (unsure, not counted)")
    if c.regressions:
        print(f"\n{len(c.regressions)} of {c.compared} compared figure(s) regressed by more than "
              f"{args.threshold:.0%} against {args.compare}:")
        for r in c.regressions:
            print(report.format_regression(*r))
        return 1
    print(f"\ncompare: no figure regressed by more than {args.threshold:.0%} against "
          f"{args.compare} ({c.compared} compared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
