"""Which property of the benchmark's heap layout makes regime (b) slower than flat?

``bench_hugepages.py`` shows it is not the 4 KiB pages.  This varies one property of where N
params and grads of M float32 live at a time, same optimizer, one process, interleaved (one
untimed step, then ``--k`` timed ones per round; min and median of ``--repeats`` rounds):

* ``separate``     the benchmark's layout (``contenders.params``: p and g alternate on the heap);
* ``views``        p rows of one buffer, g rows of another (each param continues where the
                   previous one ended);
* ``views-shuf``   the same rows given to the optimizer in a random order (so the next param's
                   memory is not next in memory);
* ``views-pad``    rows of two buffers at a stride of M*4 + ``--pad`` bytes (the next param a
                   little past the end of the previous one);
* ``interleaved``  one buffer holding p0 g0 p1 g1 ... back to back (the heap's order without its
                   headers);
* ``flat``         one param of N*M elements.

Measured (session 24, 1 thread, load 1.3-1.5, Adam, min us per step, flat_frac): at N=250 and
500 (working set <= 8 MiB) every layout is within 84-93% of flat, the order does not matter; at
N=1000 separate 676 (65%), views-shuf 632 (69%), interleaved 627 (70%), views 510 (86%),
views-pad64 497 (88%), flat 437; at N=2000 separate 50%, shuffled 64%, interleaved 60%, views
87%; with --flush 64 at N=1000 separate 53%, shuffled 63%, views 81%.  What counts is that each
param's p (and g) follow the previous param's in memory (64 bytes apart is as good as adjacent),
and only once the step's data does not stay in the cache between steps.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_layouts.py [--optimizers adam,sgd] [--n 1000]
[--m 1024] [--repeats 100] [--k 5] [--pad 64] [--flush 0]``
"""
import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contenders as cn  # noqa: E402
from bench_hugepages import Case  # noqa: E402

import fastoptim as fo  # noqa: E402
from fastoptim._C import _optim  # noqa: E402


def _tensors(prows, grows, order):
    return cn.shared_params(fo, [prows[i] for i in order], [grows[i] for i in order])


def _rows(arrays, stride_elems):
    """``arrays`` copied into rows of one buffer at a stride of ``stride_elems`` elements."""
    n, m = len(arrays), arrays[0].size
    buf = np.zeros(n * stride_elems, np.float32)
    rows = [buf[i * stride_elems:i * stride_elems + m] for i in range(n)]
    for r, a in zip(rows, arrays):
        r[:] = a
    return rows


def build(spec, ps, gs, pad, seed=0):
    n, m = len(ps), ps[0].size
    seq = range(n)
    shuf = np.random.default_rng(seed).permutation(n)
    inter = _rows([a for pg in zip(ps, gs) for a in pg], m)
    padded = m + pad // 4
    return [
        Case("separate", spec, cn.params(fo, ps, gs)),
        Case("views", spec, _tensors(_rows(ps, m), _rows(gs, m), seq)),
        Case("views-shuf", spec, _tensors(_rows(ps, m), _rows(gs, m), shuf)),
        Case(f"views-pad{pad}", spec, _tensors(_rows(ps, padded), _rows(gs, padded), seq)),
        Case("interleaved", spec, _tensors(inter[0::2], inter[1::2], seq)),
        Case("flat", spec, cn.params(fo, [np.concatenate(ps)], [np.concatenate(gs)])),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizers", default="adam,sgd")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--pad", type=int, default=64, help="bytes between padded rows")
    ap.add_argument("--flush", type=int, default=0, metavar="MIB")
    args = ap.parse_args()
    flush = np.ones(args.flush << 18, np.float32) if args.flush else None
    ps, gs = cn.data(args.n, args.m)
    print(f"threads {_optim._get_num_threads()}  load {os.getloadavg()[0]:.2f}  "
          f"n {args.n} m {args.m}  flush {args.flush} MiB  "
          f"(min / median of {args.repeats} rounds of {args.k} steps, us per step)")
    for name in args.optimizers.split(","):
        cases = build(cn.spec_of(name), ps, gs, args.pad)
        for _ in range(args.repeats):
            for c in cases:
                c.round(flush, args.k)
        flat = min(cases[-1].times)
        for c in cases:
            lo, med = min(c.times), statistics.median(c.times)
            print(f"{name:8s} {c.name:12s} min {lo * 1e6:8.1f}  median {med * 1e6:8.1f}  "
                  f"flat_frac(min) {flat / lo * 100:5.1f}%")
        print(f"  load {os.getloadavg()[0]:.2f}")
        del cases


if __name__ == "__main__":
    main()
