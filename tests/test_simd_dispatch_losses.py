"""The loss kernels' and full sums' element passes compiled twice (FO_TWICE in csrc/fo_twice.h,
chosen by csrc/fo_simd.c): the AVX2 and the baseline variants give bit-identical losses, sums
and gradients.

Why: on a CPU with AVX2 every other loss test runs the AVX2 passes only, so nothing else would
notice a baseline pass that computes other bits (or the reverse on a CPU without AVX2).  As
tests/test_simd_dispatch.py does for the optimizers, a child with FASTOPTIM_SIMD=baseline and
a child with the default choice run the same losses forward and backward, and every bit of
every output and gradient must agree (NaNs compared as NaNs).  The cases cover the passes'
lengths (8-lane bodies, 4-lane epilogues, scalar tails, empty), the short-row block (<= 32
classes, more than 64 rows) and the long rows, strided softmax, both dtypes, the options of
each loss, and the special values the exp and log polynomials select on (+-inf, NaN, the -87
flush, subnormals, 0 and 1 for BCE).
"""
import os
import textwrap

import pytest
from _children import collect, start

from fastoptim._config import _loaded_simd

_LOSSES = textwrap.dedent("""
    import hashlib, json
    import numpy as np
    import fastoptim
    import fastoptim.nn.functional as F
    from fastoptim._config import _loaded_simd

    SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, -86.9, -87.0, -87.1, -88.8, 88.7, 88.8,
               -100.0, 100.0, 1e-40, -1e-40, 20.0, -20.0]

    def logits(rng, shape, dtype, special=True):
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        flat = x.reshape(-1)
        if special and flat.size > 60:
            pick = rng.choice(flat.size, len(SPECIAL), replace=False)
            flat[pick] = np.array(SPECIAL, dtype)
        return x

    def digest(h, a):
        a = np.array(a, copy=True)
        a[np.isnan(a)] = np.nan                      # one NaN pattern
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())

    def run(call, *arrays, grad=(0,), g=None, times=1):
        # times > 1: each later backward adds into the existing .grad (fo_inplace_binary's add)
        ts = [fastoptim.tensor(a, requires_grad=(k in grad)) for k, a in enumerate(arrays)]
        h = hashlib.sha256()
        for _ in range(times):
            out = call(*ts)
            digest(h, out.detach().numpy())
            if g is None:
                out.sum().backward() if out.ndim else out.backward()
            else:
                out.backward(fastoptim.tensor(g(out.shape)))
        for k in grad:
            digest(h, ts[k].grad.numpy())
        return h.hexdigest()

    results = {}
    for dtype in (np.float32, np.float64):
        dn = np.dtype(dtype).name
        rng = np.random.default_rng(0)
        rg = lambda shape: rng.standard_normal(shape).astype(dtype)
        for shape in [(64, 10), (1, 1), (3, 2), (7, 5), (65, 10), (130, 7), (9, 32), (9, 33),
                      (2, 257), (0, 4)]:
            x = logits(rng, shape, dtype)
            for log in (False, True):
                fn = F.log_softmax if log else F.softmax
                results[f"softmax{shape}-{log}-{dn}"] = run(lambda a: fn(a, 1), x, g=rg)
            if shape[0] == 0:
                continue
            t = rng.integers(0, shape[1], shape[0])
            t[::5] = -100                              # ignored positions
            results[f"accumulated{shape}-{dn}"] = run(lambda a: F.cross_entropy(
                a, fastoptim.tensor(t), reduction="none"), x, g=rg, times=3)
            w = (rng.random(shape[1]) + 0.5).astype(dtype)
            for red in ("mean", "sum", "none"):
                for opts in ({}, {"weight": w}, {"label_smoothing": 0.2},
                             {"weight": w, "label_smoothing": 0.1, "ignore_index": 1}):
                    kw = {k: (fastoptim.tensor(v) if k == "weight" else v)
                          for k, v in opts.items()}
                    tt = np.where(t == -100, 1, t) if "ignore_index" in opts else t
                    key = f"ce{shape}-{red}-{sorted(opts)}-{dn}"
                    results[key] = run(lambda a: F.cross_entropy(
                        a, fastoptim.tensor(tt), reduction=red, **kw), x,
                        g=rg if red == "none" else None)
                    if "label_smoothing" in opts:
                        continue
                    lp = F.log_softmax(fastoptim.tensor(x), 1).numpy()
                    results["nll" + key] = run(lambda a: F.nll_loss(
                        a, fastoptim.tensor(tt), reduction=red,
                        **kw), lp,
                        g=rg if red == "none" else None)
        x3 = logits(rng, (4, 6, 5), dtype)
        for dim in (0, 1, 2):
            results[f"softmax3d-{dim}-{dn}"] = run(lambda a: F.log_softmax(a, dim), x3, g=rg)
            results[f"softmax3d-lin-{dim}-{dn}"] = run(lambda a: F.softmax(a, dim), x3, g=rg)
        results[f"ce-spatial-{dn}"] = run(lambda a: F.cross_entropy(
            a, fastoptim.tensor(rng.integers(0, 6, (4, 5)))), x3)
        for n in (0, 1, 3, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1000):
            x = logits(rng, (n,), dtype)
            y = rng.standard_normal(n).astype(dtype)
            yb = rng.random(n).astype(dtype)
            yb[::3] = np.round(yb[::3])                # hard labels among the soft ones
            p = rng.random(n).astype(dtype)
            if n > 20:
                p[:6] = np.array([0.0, 1.0, 1e-40, 1e-30, 1 - 2**-24, 0.5], dtype)
            w = (rng.random(n) + 0.5).astype(dtype)
            pw = (rng.random(n) * 3).astype(dtype)
            for red in ("mean", "sum", "none"):
                g = rg if red == "none" else None
                both = (0, 1)
                finite = np.nan_to_num(x, nan=0.0, posinf=50.0, neginf=-50.0)
                for name, call, args in [
                    ("l1", lambda a, b: F.l1_loss(a, b, reduction=red), (finite, y)),
                    ("smooth_l1", lambda a, b: F.smooth_l1_loss(a, b, reduction=red,
                                                                beta=0.7), (finite, y)),
                    ("huber", lambda a, b: F.huber_loss(a, b, reduction=red, delta=1.5),
                     (finite, y)),
                    ("bce", lambda a, b: F.binary_cross_entropy(a, b, reduction=red), (p, yb)),
                    ("bce_w", lambda a, b: F.binary_cross_entropy(
                        a, b, weight=fastoptim.tensor(w), reduction=red), (p, yb)),
                    ("bcel", lambda a, b: F.binary_cross_entropy_with_logits(
                        a, b, reduction=red), (x, yb)),
                    ("bcel_pw", lambda a, b: F.binary_cross_entropy_with_logits(
                        a, b, weight=fastoptim.tensor(w), pos_weight=fastoptim.tensor(pw),
                        reduction=red), (x, yb)),
                ]:
                    if red == "mean" and n == 0:
                        continue
                    results[f"{name}-{n}-{red}-{dn}"] = run(call, *args, grad=both, g=g)
            # the full sum and its backward's fill (tensor_reduce.inc's FO_TWICE passes)
            results[f"sum-{n}-{dn}"] = run(lambda a: a.sum() * 1.5, finite)
            results[f"mean-{n}-{dn}"] = run(lambda a: a.mean(), finite)
    print(json.dumps({"simd": _loaded_simd(), "digests": results}))
""")


@pytest.fixture(scope="module")
def runs():
    return collect({"default": start(_LOSSES, unset=("FASTOPTIM_SIMD",)),
                    "baseline": start(_LOSSES, FASTOPTIM_SIMD="baseline")})


def test_the_baseline_can_be_forced(runs):
    assert runs["baseline"]["simd"] == "baseline"
    if os.environ.get("FASTOPTIM_SIMD") != "baseline":
        assert runs["default"]["simd"] == _loaded_simd()


def test_avx2_and_baseline_loss_passes_are_bit_identical(runs):
    if runs["default"]["simd"] == "baseline":
        pytest.skip("this CPU has no AVX2 (or the build has no dispatch): one variant only")
    want, got = runs["baseline"]["digests"], runs["default"]["digests"]
    assert list(got) == list(want)
    differing = [case for case in want if got[case] != want[case]]
    assert differing == [], f"{len(differing)} of {len(want)} cases differ: {differing}"


def test_the_cases_depend_on_the_data(runs):
    # the control: the digests follow the data, so equal digests mean equal bits (some cases
    # coincide by design: empty inputs, 'mean' and 'sum' of one element, one-class rows)
    digests = runs["baseline"]["digests"]
    assert len(digests) > 800
    assert len(set(digests.values())) > 0.85 * len(digests)
