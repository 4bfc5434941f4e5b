"""The optimizer loops compiled twice (csrc/fo_simd.c, FO_SEGMENTS in csrc/optim_multi.h): the
AVX2 and the baseline variants give bit-identical results.

Why: on a CPU with AVX2 the library runs the AVX2 variants, so the rest of the suite never
reaches the baseline loops there (and on a CPU without it, never the AVX2 ones).  A child
process with FASTOPTIM_SIMD=baseline runs the same steps as a child with the default choice,
and every param and state bit must agree; NaNs are compared as NaNs (which of two NaN operands
an instruction returns is not arithmetic, and numpy does not promise it either).  The steps
cover the loops' lengths (the 8-lane body, the 4-lane epilogue, scalar tails, empty and 0-dim
params), special grads (0, -0, +-inf, NaN, subnormals), every class configuration of the
optimizer table (tests/optim_table.py) plus the products of the flags that pick the first six
kernels' loops (each flag combination they instantiate: Adam/AdamW's maximize x coupled decay x
amsgrad x lerp branch, SGD's decay x momentum mode x nesterov, RMSprop's decay x centered lerp
branch x momentum, Adagrad's and Adadelta's decay), and Rprop's factor selection with etas
outside the constructor's range (set in the group afterwards, which the step honours as torch's
does).  The benchmark yardstick (csrc/bench_roofline.c) has the same two variants, compared
here too.
"""
import itertools
import os
import textwrap

import numpy as np
import pytest
from _children import collect, start
from optim_table import class_cases

from fastoptim._config import _loaded_simd

_STEPS = textwrap.dedent("""
    import ast, hashlib, json, sys
    import numpy as np
    import fastoptim
    from fastoptim import nn, optim
    from fastoptim._config import _loaded_simd

    CONFIGS = ast.literal_eval(sys.argv[1])
    SHAPES = [(1003,), (8,), (1,), (13,), (0,), (37, 5), ()]
    STEPS = 8   # RAdam's rectified branch starts at step 6

    def grad(rng, shape, dtype):
        g = rng.standard_normal(shape).astype(dtype)
        g[rng.random(shape) < 0.1] = 0.0            # exact zeros: Rprop's sign 0
        flat = g.reshape(-1)
        if flat.size > 100:
            tiny = np.finfo(dtype).smallest_subnormal
            special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny], dtype)
            flat[rng.choice(flat.size, special.size, replace=False)] = special
        return g

    def digest(h, t):
        a = np.array(t.detach().numpy(), copy=True)
        a[np.isnan(a)] = np.nan                      # one NaN pattern
        h.update(a.tobytes())

    def run(name, kwargs, later, dtype):
        rng = np.random.default_rng(0)
        params = [nn.Parameter(fastoptim.from_numpy(rng.standard_normal(s).astype(dtype)))
                  for s in SHAPES]
        opt = getattr(optim, name)(params, **kwargs)
        opt.param_groups[0].update(later)
        h = hashlib.sha256()
        for _ in range(STEPS):
            for p in params:
                p.grad = fastoptim.from_numpy(grad(rng, tuple(p.shape), dtype))
            opt.step()
            for p in params:
                digest(h, p)
                for key, value in sorted(opt.state[p].items()):
                    if value is not None:                # SGD's buffer without momentum
                        digest(h, value)
        return h.hexdigest()

    out = {f"{name}{kwargs}{later}-{np.dtype(dtype).name}": run(name, kwargs, later, dtype)
           for name, kwargs, later in CONFIGS for dtype in (np.float32, np.float64)}
    print(json.dumps({"simd": _loaded_simd(), "digests": out}))
""")


def _flag_products():
    """The first six kernels' loop selections, each flag combination once (beta1 = 0.3 and
    RMSprop's alpha = 0.3 take ATen's other lerp branch; SGD's first step is its 'new buffer'
    mode, the later ones the running mode)."""
    out = []
    for mx, wd, ams, b1 in itertools.product((False, True), (0.0, 0.1), (False, True),
                                             (0.9, 0.3)):
        out.append(("Adam", {"lr": 0.01, "weight_decay": wd, "amsgrad": ams, "maximize": mx,
                             "betas": (b1, 0.99)}, {}))
        if wd:
            out.append(("AdamW", {"lr": 0.01, "weight_decay": wd, "amsgrad": ams,
                                  "maximize": mx, "betas": (b1, 0.99)}, {}))
    for wd, mom, nest in itertools.product((0.0, 0.1), (0.0, 0.9), (False, True)):
        if nest and not mom:
            continue
        out.append(("SGD", {"lr": 0.03, "weight_decay": wd, "momentum": mom, "nesterov": nest,
                            "dampening": 0.0 if nest else 0.3}, {}))
    for wd, cen, mom, alpha in itertools.product((0.0, 0.1), (False, True), (0.0, 0.5),
                                                 (0.99, 0.3)):
        if alpha == 0.3 and not cen:
            continue
        out.append(("RMSprop", {"lr": 0.02, "weight_decay": wd, "centered": cen, "momentum": mom,
                                "alpha": alpha}, {}))
    for wd, mx in itertools.product((0.0, 0.1), (False, True)):
        out.append(("Adagrad", {"lr": 0.1, "weight_decay": wd, "lr_decay": 0.01,
                                "maximize": mx, "eps": 1e-6}, {}))
        out.append(("Adadelta", {"lr": 0.5, "weight_decay": wd, "rho": 0.5, "maximize": mx}, {}))
    return out


# (class, constructor kwargs, group entries set after construction): the table's cases (some
# restate a default, or differ only past the 8 steps, e.g. ASGD's t0=100), then the products and
# cases chosen to differ from each other and from the table's
TABLE_CASES = [(cls, kw, {}) for cls, kw in class_cases()]
DISTINCT = _flag_products() + [
    ("Adamax", {"betas": (0.3, 0.5), "eps": 1e-3}, {}),        # the other lerp branch
    ("NAdam", {"betas": (0.3, 0.9), "lr": 0.01}, {}),
    ("RAdam", {"betas": (0.3, 0.99), "weight_decay": 0.2, "decoupled_weight_decay": True}, {}),
    ("ASGD", {"t0": 2, "lambd": 0.1, "alpha": 0.5, "weight_decay": 0.1, "maximize": True}, {}),
    ("Rprop", {"lr": 0.1, "etas": (0.3, 1.1), "step_sizes": (1e-3, 0.105), "maximize": True},
     {}),
    ("Rprop", {}, {"etas": (0.5, -2.0)}),    # etaplus < 0: a positive sign ends at etaminus
    ("Rprop", {}, {"etas": (0.0, 1.2)}),     # etaminus 0: a negative sign ends at 1
    ("Rprop", {}, {"etas": (0.5, 0.0)}),     # etaplus 0: a positive sign ends at 1
]
CONFIGS = TABLE_CASES + DISTINCT


@pytest.fixture(scope="module")
def runs():
    return collect({"default": start(_STEPS, repr(CONFIGS), unset=("FASTOPTIM_SIMD",)),
                    "baseline": start(_STEPS, repr(CONFIGS), FASTOPTIM_SIMD="baseline")})


def test_the_choice_is_reported_and_can_be_forced(runs):
    assert _loaded_simd() in ("avx2", "baseline")
    if os.environ.get("FASTOPTIM_SIMD") != "baseline":   # (the child's default is not forced)
        assert runs["default"]["simd"] == _loaded_simd()
    assert runs["baseline"]["simd"] == "baseline"


def test_avx2_and_baseline_loops_are_bit_identical(runs):
    if runs["default"]["simd"] == "baseline":
        pytest.skip("this CPU has no AVX2 (or the build has no dispatch): one variant only")
    want, got = runs["baseline"]["digests"], runs["default"]["digests"]
    assert list(got) == list(want)
    differing = [case for case in want if got[case] != want[case]]
    assert differing == [], f"{len(differing)} of {len(want)} runs differ: {differing}"


def test_the_runs_depend_on_the_data(runs):
    # the control: each dtype, each configuration chosen to differ and each distinct table case
    # gives its own digest, so equal digests mean equal bits
    digests = runs["baseline"]["digests"]
    keys = list(digests)
    assert len(keys) == 2 * len(CONFIGS)
    for f32, f64 in zip(keys[::2], keys[1::2]):
        assert digests[f32] != digests[f64], f32
    table = {digests[k] for k in keys[:2 * len(TABLE_CASES)]}
    ours = [digests[k] for k in keys[2 * len(TABLE_CASES):]]
    assert len(set(ours)) == len(ours) and not table & set(ours)
    assert len(table) > len(TABLE_CASES)     # most table cases differ too


def test_the_yardstick_variants_agree():
    # the roofline's AVX2 and baseline passes (csrc/bench_roofline.c) give the same values, in
    # every specialised shape and the generic one, at lengths that reach each loop's tails
    from fastoptim._C import _bench
    assert _bench.roofline_simd() in ("avx2", "baseline")
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        for nread, nwrite in [(1, 1), (1, 3), (2, 4), (3, 2)]:
            for n in (0, 1, 7, 1003):
                start = [rng.standard_normal(n).astype(dtype) for _ in range(nread + nwrite)]
                out = []
                for baseline in (False, True):
                    arrays = [a.copy() for a in start]
                    _bench.roofline(arrays[:nread], arrays[nread:], baseline=baseline)
                    out.append(arrays)
                for a, b in zip(*out):
                    assert a.tobytes() == b.tobytes(), (dtype, nread, nwrite, n)
                want = sum(start) / dtype(nread + nwrite) if n else None
                if n:
                    np.testing.assert_allclose(out[0][-1], want, rtol=1e-5, atol=1e-6)
