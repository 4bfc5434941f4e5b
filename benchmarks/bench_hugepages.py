"""Is regime (b)'s gap to the flat tensor the TLB?  Collapse the heap's 4 KiB pages and see.

Regime (b) is N params of M float32 elements in one group, made as the benchmark makes them
(``contenders.params``: each param and grad a separate ``copy()``, allocated alternately, 4 KiB
each from glibc's heap on 4 KiB pages); its yardstick is the same optimizer on ONE N*M-element
tensor ("flat"), whose numpy buffers (>= 4 MiB) numpy advises onto transparent huge pages.  The
optimizer's state is packed into one numpy buffer per key, so it is on huge pages in both.

With N=1000 a step touches ~2000 distinct 4 KiB pages of params and grads alone, near the size
of the L2 DTLB.  If that is the gap, putting the same allocations on huge pages closes it.  The
cases, all in one process, timed interleaved (one untimed step, then ``--k`` timed steps per
round; min and median of ``--repeats`` rounds, us per step):

* ``separate``       the benchmark's layout, as is (params and grads on 4 KiB pages);
* ``separate+thp``   the same layout built again (past a >= 4 MiB spacer, so that no 2 MiB page
                     is shared with ``separate``), then ``madvise(MADV_HUGEPAGE)`` and
                     ``madvise(MADV_COLLAPSE)`` (synchronous, Linux >= 6.1) over every 2 MiB-
                     aligned chunk covering its params and grads;
* ``separate-4k``    the benchmark's layout with the state on 4 KiB pages too (numpy's huge
                     page advice turned off while the state is made);
* ``views``          params and grads as consecutive rows of two buffers (huge pages);
* ``flat``           one param of N*M elements (huge pages);
* ``flat-4k``        the same with param, grad and state on 4 KiB pages.

The 4k variants are the converse test: if huge pages are what makes flat fast, flat on 4 KiB
pages loses it.  The share of each case's pages on huge pages is printed, so that the advice
is seen to have taken (or not): each page's frame from /proc/self/pagemap, its THP flag from
/proc/kpageflags (root only).  Run one optimizer per process: once the heap's top mapping is
advised, later heap growth in the same process lands on huge pages too.  ``--flush MIB`` writes
that much before every timed step (every step starts from memory, as in training).

Measured (session 24, 1 thread, one optimizer per process, min us per step, N=1000): Adam
separate 632, separate+thp 604 (+4.6%), flat 436, flat-4k 437; SGD 298 / 299 / 211 / 209; RMSprop
427 / 416 / 302 / 303; Adamax 583 / 565 / 308 / 314.  With --flush 64: Adam 1149 -> 1011 (+14%),
Adamax 1110 -> 987 (+12%), flat 603, flat-4k 596.  Huge pages are not what makes flat fast (here
flat's own 4 MiB buffers are on 4 KiB pages), and collapsing the heap closes < 1/5 of the gap.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_hugepages.py [--optimizers adam,sgd,rmsprop,
adamax] [--n 1000] [--m 1024] [--repeats 40] [--k 5] [--flush 0]``
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np
from numpy._core import multiarray as _mu

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contenders as cn  # noqa: E402

import fastoptim as fo  # noqa: E402
from fastoptim._C import _optim  # noqa: E402

MADV_NOHUGEPAGE, MADV_HUGEPAGE, MADV_COLLAPSE = 15, 14, 25
HUGE = 2 << 20
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int


def _addr(a):
    return np.asarray(getattr(a, "_np", a)).__array_interface__["data"][0]


def _chunks(arrays):
    """The 2 MiB-aligned chunks covering ``arrays``' memory, merged, sorted."""
    out = set()
    for a in arrays:
        lo = _addr(a)
        hi = lo + np.asarray(getattr(a, "_np", a)).nbytes
        out.update(range(lo // HUGE * HUGE, hi, HUGE))
    return sorted(out)


def collapse(arrays):
    """Advise and collapse every 2 MiB chunk under ``arrays``: (chunks, collapsed, errors)."""
    chunks, done, errors = _chunks(arrays), 0, {}
    for c in chunks:
        for advice in (MADV_HUGEPAGE, MADV_COLLAPSE):
            if _libc.madvise(c, HUGE, advice) != 0:
                e = os.strerror(ctypes.get_errno())
                errors[e] = errors.get(e, 0) + 1
                break
        else:
            done += 1
    return len(chunks), done, errors


def _pages(arrays):
    """The distinct 4 KiB pages under ``arrays``' memory."""
    out = set()
    for a in arrays:
        lo = _addr(a)
        hi = lo + np.asarray(getattr(a, "_np", a)).nbytes
        out.update(range(lo // 4096, (hi - 1) // 4096 + 1))
    return sorted(out)


def huge_share(arrays):
    """How many of the 4 KiB pages under ``arrays`` are on THPs, and how many of those followed
    by another of them are physically followed by it (same order in physical memory):
    /proc/self/pagemap gives each page's frame, /proc/kpageflags its flags (bit 22, KPF_THP);
    both need root."""
    pages = _pages(arrays)
    try:
        with open("/proc/self/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
            thp, frames = 0, {}
            for v in pages:
                pm.seek(v * 8)
                e = int.from_bytes(pm.read(8), "little")
                if not e >> 63 & 1:
                    continue
                frames[v] = e & ((1 << 55) - 1)
                kf.seek(frames[v] * 8)
                thp += int.from_bytes(kf.read(8), "little") >> 22 & 1
    except OSError as e:
        return f"? ({e.strerror})"
    # virtually adjacent pages that are physically adjacent too
    pairs = [v for v in pages if v + 1 in frames and v in frames]
    contig = sum(frames[v + 1] == frames[v] + 1 for v in pairs)
    return f"{thp}/{len(pages)} pages THP, {contig}/{len(pairs)} next pages contiguous"


class Case:
    def __init__(self, name, spec, tensors, state_thp=True):
        self.name, self.tensors = name, tensors
        self.opt = getattr(fo.optim, spec.cls)(tensors, **spec.kwargs)
        old = _mu._set_madvise_hugepage(state_thp)
        try:
            for _ in range(3):
                self.opt.step()
        finally:
            _mu._set_madvise_hugepage(old)
        self.times = []

    def memory(self):
        return [t for t in self.tensors] + [t.grad for t in self.tensors]

    def state_memory(self):
        return [v for st in self.opt.state.values() for v in st.values()
                if getattr(v, "ndim", 0) and getattr(v, "numel", lambda: 0)() > 1]

    def round(self, flush, k):
        pc, step = time.perf_counter, self.opt.step
        step()
        total = 0.0
        for _ in range(k):
            if flush is not None:
                flush += 1.0
            t0 = pc()
            step()
            total += pc() - t0
        self.times.append(total / k)


def build(spec, ps, gs):
    flat_p, flat_g = [np.concatenate(ps)], [np.concatenate(gs)]
    cases = [Case("separate", spec, cn.params(fo, ps, gs)),
             Case("separate-4k", spec, cn.params(fo, ps, gs), state_thp=False)]
    # made last on the heap: the heap's top mapping, once advised, gives later growth huge pages
    spacer = [np.empty(1024, np.float32) for _ in range(1100)]   # > 4 MiB of heap
    thp = Case("separate+thp", spec, cn.params(fo, ps, gs))
    n, done, err = collapse(thp.memory())
    thp.note = f"collapsed {done}/{n} chunks {err or ''}"
    cases.append(thp)
    cases.append(Case("views", spec, cn.shared_params(fo, np.stack(ps), np.stack(gs))))
    cases.append(Case("flat", spec, cn.params(fo, flat_p, flat_g)))
    old = _mu._set_madvise_hugepage(False)
    try:
        cases.append(Case("flat-4k", spec, cn.params(fo, [p.copy() for p in flat_p],
                                                     [g.copy() for g in flat_g]),
                          state_thp=False))
    finally:
        _mu._set_madvise_hugepage(old)
    return cases, spacer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizers", default="adam,sgd,rmsprop,adamax")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--flush", type=int, default=0, metavar="MIB")
    args = ap.parse_args()
    flush = np.ones(args.flush << 18, np.float32) if args.flush else None
    ps, gs = cn.data(args.n, args.m)
    print(f"threads {_optim._get_num_threads()}  load {os.getloadavg()[0]:.2f}  "
          f"n {args.n} m {args.m}  flush {args.flush} MiB  "
          f"(min / median of {args.repeats} rounds of {args.k} steps, us per step)")
    for name in args.optimizers.split(","):
        spec = cn.spec_of(name)
        cases, _spacer = build(spec, ps, gs)
        for c in cases:
            print(f"  {name:8s} {c.name:13s} p+g: {huge_share(c.memory())};  state: "
                  f"{huge_share(c.state_memory())}  {getattr(c, 'note', '')}")
        for _ in range(args.repeats):
            for c in cases:
                c.round(flush, args.k)
        flat = min(next(c for c in cases if c.name == "flat").times)
        for c in cases:
            lo, med = min(c.times), statistics.median(c.times)
            print(f"{name:8s} {c.name:13s} min {lo * 1e6:8.1f}  median {med * 1e6:8.1f}  "
                  f"flat_frac(min) {flat / lo * 100:5.1f}%")
        print(f"  load {os.getloadavg()[0]:.2f}")
        del cases


if __name__ == "__main__":
    main()
