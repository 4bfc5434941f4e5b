"""Isolated timing: every contender alone in a fresh process, rounds alternating between them.

Why it exists: with as many threads as cores, contenders timed in one process starve each other.
torch's OpenMP pool, NumPy's OpenBLAS pool (fastoptim's matmuls) and fastoptim's libgomp pool
each keep threads that spin or wake for a while after their library's last call, and the next
contender pays for them: a 1 ms MLP step measured anywhere between 0.6 and 40 ms, and no pause
(``settle_s``) cured it.  Here no foreign pool exists while a contender is timed.

How: the benchmark worker (one per thread count, environment already set) starts two *zygotes*,
``python benchmarks/isolated.py fastoptim|torch``, each importing NumPy and its one library
once (fastoptim's zygote never imports torch, torch's never imports fastoptim) and then waiting
for jobs on stdin without running any parallel code.  The regimes on torch tensors (``ta`` ...
``te``) time fastoptim's optimizer over torch's tensors in a third one, ``fastoptim+torch``,
which loads both (and gives both the row's thread count).  A job is one *round* of one
contender: the zygote forks a child, which sets its library's thread count, builds the contender
(``contenders.build``), warms it up, takes its samples and exits, reporting them through a pipe;
the zygote waits for the child to end before it answers.  Forking keeps a round cheap (no
interpreter start, no torch import) and the child starts with no thread pool at all: the zygote
has none, and a fork copies only the calling thread.  The worker runs the rounds one at a time
in a rotating order (A B C, B C A, ...), so machine noise spreads over all contenders, and
reports the median of all rounds' samples; calls per sample are calibrated in a contender's
first round and kept for its later ones.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Zygote:
    """The coordinator's handle on one zygote process (``lib``: ``fastoptim`` or ``torch``)."""

    def __init__(self, lib, env):
        self.lib = lib
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), lib],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True)
        # Wait until it has imported its library: a zygote still importing torch (seconds of
        # CPU) would slow the other library's rounds.
        if not self.proc.stdout.readline():
            raise RuntimeError(f"the {lib} zygote failed to start (code {self.proc.wait()})")

    def run(self, job):
        """Run one round (a dict, see ``_round``); return its result dict."""
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.lib} zygote exited (code {self.proc.wait()})")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"{job['name']} in ({job['regime']}) {job['optimizer']}, "
                               f"isolated:\n{out['error']}")
        return out

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def time_isolated(zygotes, regime, optimizer, contenders, mode, threads):
    """Time ``contenders`` (``[(name, max_repeats)]``) of one row in rounds of fresh processes.

    ``zygotes`` maps a library name to its ``Zygote``.  Returns ``({name: {"median_ns",
    "samples_ns", "rounds_ns", "number"}}, facts)``: the timings of ``timing.interleaved`` and
    each round's median (what a figure's spread is taken over), plus what the contender
    processes saw (thread counts, wait policies, process count).
    """
    from contenders import library

    rounds = max(1, min(mode.rounds, mode.repeats))
    per_round = math.ceil(mode.repeats / rounds)
    samples = {name: [] for name, _ in contenders}
    per_round_ns = {name: [] for name, _ in contenders}   # one median per round: the spread
    number, seen = {}, {}
    processes = 0
    for r in range(rounds):
        k = r % len(contenders)
        for name, cap in contenders[k:] + contenders[:k]:
            want = min(per_round, mode.repeats - len(samples[name]))
            if cap is not None:
                want = min(want, cap - len(samples[name]))
            if want <= 0:
                continue
            job = {"regime": regime, "optimizer": optimizer, "name": name,
                   "mode": vars(mode), "threads": threads, "samples": want,
                   "number": number.get(name)}
            out = zygotes[library(name, regime)].run(job)
            processes += 1
            samples[name] += out["samples_ns"]
            per_round_ns[name].append(_median(out["samples_ns"]))
            number[name] = out["number"]
            seen[library(name, regime)] = {"threads": out["threads"],
                                           "wait_policy": out["wait_policy"]}
    times = {name: {"median_ns": _median(s), "samples_ns": s, "rounds_ns": per_round_ns[name],
                    "number": number[name]}
             for name, s in samples.items()}
    return times, {"method": "isolated", "processes": processes, "libraries": seen}


# ---- the zygote and its children -----------------------------------------------------------

def _round(lib, job):
    """In a fresh child: one round of one contender; returns its samples."""
    from contenders import Mode, build, set_threads
    from timing import calibrate

    mode = Mode(**job["mode"])
    threads = set_threads(lib, job["threads"])
    c = build(job["regime"], job["optimizer"], job["name"], mode)
    clock = time.perf_counter_ns
    t0 = clock()
    done = 0
    while done < mode.warmup or (clock() - t0) < mode.warm_s * 1e9:
        c.fn()
        done += 1
    n = job["number"] or calibrate(c.fn, mode.sample_s)
    out = []
    for _ in range(job["samples"]):
        t0 = clock()
        for _ in range(n):
            c.fn()
        out.append((clock() - t0) / n)
    return {"samples_ns": out, "number": n, "threads": threads,
            "wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def _fork_round(lib, job):
    """Fork, run ``_round`` in the child, wait for it to exit; return its result (and the
    modules the child imported, which the zygote then imports for the next children)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: never returns
        os.close(r)
        code = 0
        loaded = set(sys.modules)
        try:
            out = _round(lib, job)
            out["imported"] = sorted(set(sys.modules) - loaded)
        except BaseException:                       # noqa: BLE001 - reported to the worker
            out, code = {"error": traceback.format_exc()}, 1
        with os.fdopen(w, "w") as f:
            f.write(json.dumps(out))
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    if not text:
        return {"error": f"the contender process died (wait status {status})"}
    return json.loads(text)


def _learn(modules):
    """Import what a child had to import (torch.optim alone pulls in hundreds of modules, some
    0.8 s of work), so the next children start with them: imports only, no computation, so the
    zygote still never starts a thread pool."""
    for name in modules:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:                       # noqa: BLE001 - a child imports it again
                pass


def serve(lib):
    """Zygote main loop: one JSON job per stdin line, one JSON result per stdout line."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                     # anything else printed goes to stderr, not the protocol
    if importlib.util.find_spec("fastoptim") is None:   # the in-place build of this checkout
        sys.path.insert(0, ROOT)
    import contenders

    for name in lib.split("+"):       # load the libraries once, before any fork; run nothing
        importlib.import_module(name)
    proto.write('{"ready": true}\n')
    proto.flush()
    for line in sys.stdin:
        job = json.loads(line)
        try:
            contenders.prepare(job["regime"], contenders.Mode(**job["mode"]))
            out = _fork_round(lib, job)
        except Exception:                           # noqa: BLE001 - reported to the worker
            out = {"error": traceback.format_exc()}
        _learn(out.pop("imported", ()))
        proto.write(json.dumps(out) + "\n")
        proto.flush()


if __name__ == "__main__":
    try:
        serve(sys.argv[1])
    except KeyboardInterrupt:     # Ctrl-C reaches the whole process group; the worker reports
        sys.exit(1)
