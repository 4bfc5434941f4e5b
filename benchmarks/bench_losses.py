"""The fused losses' speed against torch 2.13 on a 64 x 10 float32 batch (issue 13's budget:
each loss's forward+backward at <= 0.05x torch's time), separate from run.py's regimes.

One case is ``loss(...).backward()`` on fresh forward output each call (the input's .grad
accumulates, in both libraries alike); log_softmax is ``log_softmax(x, 1).sum().backward()``
(it is not a loss: the sum gives backward its scalar).  fastoptim and torch (one thread) are
timed interleaved (timing.py: rotating order), so load lands on both.  The ratio is the median
over rounds of fastoptim's sample / torch's sample of the same round (a burst of load that
slows one round slows both of its samples, so it largely cancels), printed with its quartiles;
the µs columns are each library's median.  Wall clock on a shared machine is still noisy: for a
before/after of a kernel, count instructions instead (valgrind --tool=callgrind around the same
calls).

Usage: ``python benchmarks/bench_losses.py [--repeats N] [case ...]``.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import Contender, interleaved  # noqa: E402

BUDGET = 0.05


def cases(lib, n=64, c=10):
    """{name: a zero-argument call running one forward+backward} for fastoptim or torch."""
    F = lib.nn.functional
    g = np.random.default_rng(0)
    xn = g.standard_normal((n, c)).astype(np.float32)
    yn = g.standard_normal((n, c)).astype(np.float32)
    tn = g.random((n, c)).astype(np.float32)
    pn = (1 / (1 + np.exp(-xn))).astype(np.float32)
    lpn = (xn - np.log(np.exp(xn).sum(1, keepdims=True))).astype(np.float32)
    x = lib.tensor(xn, requires_grad=True)
    p = lib.tensor(pn, requires_grad=True)
    lp = lib.tensor(lpn, requires_grad=True)
    y, t, cls = lib.tensor(yn), lib.tensor(tn), lib.tensor(g.integers(0, c, n))
    return {
        "L1Loss": lambda: F.l1_loss(x, y).backward(),
        "HuberLoss": lambda: F.huber_loss(x, y).backward(),
        "SmoothL1Loss": lambda: F.smooth_l1_loss(x, y).backward(),
        "NLLLoss": lambda: F.nll_loss(lp, cls).backward(),
        "CrossEntropyLoss": lambda: F.cross_entropy(x, cls).backward(),
        "LogSoftmax": lambda: F.log_softmax(x, 1).sum().backward(),
        "BCEWithLogitsLoss": lambda: F.binary_cross_entropy_with_logits(x, t).backward(),
        "BCELoss": lambda: F.binary_cross_entropy(p, t).backward(),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("case", nargs="*", help="cases to run (default: all)")
    args = ap.parse_args(argv)
    import torch

    import fastoptim
    torch.set_num_threads(1)
    fo, th = cases(fastoptim), cases(torch)
    names = args.case or list(fo)
    print(f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'loss (64x10 float32, fwd+bwd)':32s} {'fastoptim':>10s} {'torch':>10s} {'ratio':>7s}"
          f" {'quartiles':>13s}")
    for name in names:
        r = interleaved([Contender("fastoptim", fo[name]), Contender("torch", th[name])],
                        warmup=200, repeats=args.repeats, sample_s=0.02)
        f, t = r["fastoptim"]["median_ns"] / 1e3, r["torch"]["median_ns"] / 1e3
        # both contenders are timed once in every round, in rotating order: pair them by round
        q1, ratio, q3 = np.percentile([a / b for a, b in zip(r["fastoptim"]["samples_ns"],
                                                             r["torch"]["samples_ns"])],
                                      [25, 50, 75])
        mark = "ok" if ratio <= BUDGET else "over"
        print(f"{name:32s} {f:8.2f}us {t:8.2f}us {ratio:7.3f} {q1:6.3f}..{q3:5.3f} {mark}",
              flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
