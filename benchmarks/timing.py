"""Interleaved wall-clock timing: warm-up, repeats, medians.

Why it exists: two contenders timed one after the other see different machine states (turbo,
page cache, a neighbour's job).  Here every repeat runs each contender once, in a rotating order
(A B C, B C A, ...), so noise lands on all of them alike, and the median of the repeats is
reported.  Fast calls are batched (``number`` calls per sample, chosen once after warm-up so a
sample lasts about ``sample_s``) so the clock's resolution and the loop cost vanish.

Thread pools: torch and fastoptim (with NumPy's OpenBLAS) each keep worker threads that spin for
a while after a parallel call.  With as many threads as cores, the pool that just ran steals the
cores the next contender's pool needs, and the next sample pays for its predecessor.  So with
``settle_s`` > 0, the timer pauses that long whenever it switches between contenders of
different pools (torch vs the rest), letting the idle pool go to sleep first.  Slowdowns a
library inflicts on itself (its own pools fighting) stay in its own samples.  The pause does not
cure every case (an MLP step swung between 0.6 and 40 ms): the regimes named by ``--isolate``
time each contender in its own processes instead (``isolated.py``), with the same rules.
"""

import time
from dataclasses import dataclass


@dataclass
class Contender:
    """One thing to time: ``fn()`` runs it once.  ``max_repeats`` caps the samples of a slow
    contender (e.g. a NumPy twin on 16M elements) without slowing the others' repeats."""

    name: str
    fn: object
    max_repeats: int = 10**9

    @property
    def pool(self):
        return "torch" if self.name.startswith("torch") else "fastoptim/numpy"


def _median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def calibrate(fn, sample_s):
    """Calls per sample so that one sample lasts about ``sample_s`` seconds."""
    if sample_s <= 0:
        return 1
    t0 = time.perf_counter_ns()
    fn()
    dt = max(time.perf_counter_ns() - t0, 1)
    return max(1, min(100_000, int(sample_s * 1e9 / dt)))


def interleaved(contenders, warmup, repeats, sample_s, settle_s=0.0):
    """Time the contenders; return ``{name: {"median_ns", "samples_ns", "number"}}``.

    Times are per call, in nanoseconds.  Every contender gets ``warmup`` untimed calls first.
    """
    contenders = [c for c in contenders if c is not None]
    for c in contenders:
        for _ in range(warmup):
            c.fn()
    number = {c.name: calibrate(c.fn, sample_s) for c in contenders}
    samples = {c.name: [] for c in contenders}
    clock = time.perf_counter_ns
    last_pool = None
    for r in range(repeats):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            if len(samples[c.name]) >= c.max_repeats:
                continue
            if settle_s > 0 and last_pool is not None and c.pool != last_pool:
                time.sleep(settle_s)
            last_pool = c.pool
            fn, n = c.fn, number[c.name]
            t0 = clock()
            for _ in range(n):
                fn()
            samples[c.name].append((clock() - t0) / n)
    return {name: {"median_ns": _median(s), "samples_ns": s, "number": number[name]}
            for name, s in samples.items()}
