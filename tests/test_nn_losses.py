"""The fused losses and softmax (csrc/tensor_loss.c through fastoptim/_C/_tensor_loss.pxi)
against their NumPy twins (fastoptim/_reference.py) and torch 2.13: values and gradients over
reductions x dtypes x sizes (0 where torch allows it, 1, odd, large), the options (weight,
ignore_index, label_smoothing, pos_weight, beta, delta), error texts and grad_fn names.

Why: a loss is the first node of every backward; a wrong gradient trains silently wrong."""
import warnings

import numpy as np
import pytest

import fastoptim as fo
import fastoptim.nn.functional as F
from fastoptim import _reference as ref
from fastoptim import nn

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
SIZES = [(1, 1), (1, 3), (7, 5), (64, 10), (300, 31)]


def _torch():
    return pytest.importorskip("torch")


def _fo(a, grad=False):
    return fo.tensor(a, requires_grad=grad)


def _close(got, want, dtype):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                               np.asarray(want, dtype=np.float64), **TOL[dtype])


# ---- softmax / log_softmax ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((4, 7), 1), ((4, 7), 0), ((3, 4, 5), 1),
                                       ((3, 4, 5), -1), ((0, 3), 1), ((2, 1), 1),
                                       # short rows in tiles of 8 and a tail; 64-row blocks
                                       ((64, 10), 1), ((139, 7), 1), ((13, 32), 1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_twin_and_torch(dtype, shape, dim, log):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    fn = F.log_softmax if log else F.softmax
    a = _fo(x, True)
    y = fn(a, dim)
    want = ref.softmax(x.astype(np.float64), dim, log)
    _close(y.detach().numpy(), want, dtype)
    y.backward(fo.tensor(g))
    _close(a.grad.numpy(), ref.softmax_backward(want, g.astype(np.float64), dim, log), dtype)
    torch = _torch()
    b = torch.tensor(x, requires_grad=True)
    yt = (torch.log_softmax if log else torch.softmax)(b, dim)
    yt.backward(torch.tensor(g))
    _close(y.detach().numpy(), yt.detach().numpy(), dtype)
    _close(a.grad.numpy(), b.grad.numpy(), dtype)
    assert y.grad_fn.name() == yt.grad_fn.name()


def test_softmax_is_stable_at_large_logits():
    x = np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32)
    np.testing.assert_allclose(F.softmax(_fo(x), 1).numpy(), [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(F.log_softmax(_fo(x), 1).numpy()[0, :2], [-np.log(2)] * 2,
                               rtol=1e-6)


def test_softmax_implicit_dim_warns_and_bad_dim_raises():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        F.softmax(fo.randn(3, 4))
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        F.softmax(fo.randn(3, 4), 2)
    m = nn.Softmax(dim=1)
    assert repr(m) == "Softmax(dim=1)" and repr(nn.LogSoftmax(1)) == "LogSoftmax(dim=1)"


# ---- cross_entropy / nll_loss -----------------------------------------------------------------
def _ce_case(shape, dtype, seed=0, spatial=0):
    rng = np.random.default_rng(seed)
    N, C = shape
    full = (N, C) + (3,) * spatial
    x = (rng.standard_normal(full) * 2).astype(dtype)
    t = rng.integers(0, C, (N,) + (3,) * spatial) if C else np.zeros((N,), np.int64)
    return x, t.astype(np.int64)


# every path of the short-row transposes (to_cols / from_cols): float32's 8-row blocks (AVX2)
# and 4-row blocks with the last column chunk overlapping (n = 5..31 not a multiple of 4),
# n < 4 in tiles of 8, nb % 8 >= 4 (one 4-row block after the 8-row ones), nb % 4 rows left
# over, nb < 4, nbp padding rows, and the 64-row blocks' last (nb > 64); a misplaced element
# breaks the twin match.  The same widths and row counts cover the backward's short-row path.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 17, 31, 32])
def test_softmax_and_ce_short_row_widths(dtype, n):
    rng = np.random.default_rng(n)
    torch = _torch()
    for nb in (1, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 63, 64, 65, 67, 72, 76):
        x = (rng.standard_normal((nb, n)) * 3).astype(dtype)
        g = rng.standard_normal((nb, n)).astype(dtype)
        for log in (False, True):
            a = _fo(x, True)
            yt = (F.log_softmax if log else F.softmax)(a, 1)
            y = yt.detach().numpy()
            _close(y, ref.softmax(x.astype(np.float64), 1, log), dtype)
            # the backward's short-row path from the forward's saved probabilities (in the
            # blocks' transposed layout: a misplaced element breaks the twin match too)
            yt.backward(fo.tensor(g))
            _close(a.grad.numpy(), ref.softmax_backward(y.astype(np.float64),
                                                        g.astype(np.float64), 1, log), dtype)
        t = rng.integers(0, n, nb)
        got = F.cross_entropy(_fo(x, False), fo.tensor(t), reduction="none").numpy()
        want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t),
                                                 reduction="none").numpy()
        _close(got, want, dtype)


def _c_fn(name, restype, argtypes, dtype=None):
    """fastoptim.h's fo_<name> (fo_<name>_f32 / _f64 for a dtype) through ctypes: the C API an
    embedder calls."""
    import ctypes
    import os

    import fastoptim._build_info as info
    lib = ctypes.CDLL(os.path.join(fo.get_library_dir(), info.library))
    f = getattr(lib, f"fo_{name}" + ("" if dtype is None else
                                     "_f32" if dtype == np.float32 else "_f64"))
    f.restype, f.argtypes = restype, argtypes
    return f


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 7, 8, 10, 17, 32, 33])
def test_softmax_c_api_with_and_without_saved_probabilities(dtype, n):
    """fo_softmax / fo_softmax_backward with saved = NULL (an embedder that keeps only y) and
    with the fo_softmax_saved_size buffer the autograd node keeps: the same outputs; the same
    softmax gradients bit for bit (p is y); log_softmax's to rounding (p for exp(y)).  The
    NULL backward is the short rows' row-vector path (8/4/2 lanes, overlapping last chunk,
    scalar below), which fastoptim's autograd no longer takes."""
    import ctypes
    c64, vp = ctypes.c_int64, ctypes.c_void_p
    fwd = _c_fn("softmax", None, [c64, c64, c64, vp, ctypes.c_int, vp, vp], dtype)
    bwd = _c_fn("softmax_backward", None, [c64, c64, c64, vp, vp, ctypes.c_int, vp, vp], dtype)
    size = _c_fn("softmax_saved_size", c64, [c64, c64, c64])
    rng = np.random.default_rng(n)
    for nb in (1, 4, 7, 9, 64, 65, 76):
        assert size(nb, n, 1) == (n * ((nb + 7) // 8 * 8) if n <= 32 else 0)
        assert size(nb, n, 2) == 0
        x = (rng.standard_normal((nb, n)) * 3).astype(dtype)
        g = rng.standard_normal((nb, n)).astype(dtype)
        for log in (0, 1):
            y0, y1 = np.empty_like(x), np.empty_like(x)
            p = np.full(max(size(nb, n, 1), 1), np.nan, dtype)
            fwd(nb, n, 1, x.ctypes.data, log, y0.ctypes.data, None)
            fwd(nb, n, 1, x.ctypes.data, log, y1.ctypes.data, p.ctypes.data)
            assert y0.tobytes() == y1.tobytes()
            g0, g1 = np.empty_like(x), np.empty_like(x)
            bwd(nb, n, 1, y0.ctypes.data, g.ctypes.data, log, g0.ctypes.data, None)
            bwd(nb, n, 1, None if size(nb, n, 1) else y0.ctypes.data, g.ctypes.data, log,
                g1.ctypes.data, p.ctypes.data)
            want = ref.softmax_backward(y0.astype(np.float64), g.astype(np.float64), 1, log)
            _close(g0, want, dtype)
            _close(g1, want, dtype)
            if not log:
                assert g0.tobytes() == g1.tobytes()


CE_OPTIONS = [{}, {"label_smoothing": 0.1}, {"weight": True}, {"ignore_index": 0},
              {"weight": True, "ignore_index": 1, "label_smoothing": 0.3}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_cross_entropy_indices_twin_and_torch(dtype, shape, reduction, opts):
    x, t = _ce_case(shape, dtype)
    C = shape[1]
    w = np.linspace(0.5, 2.0, C).astype(dtype) if opts.get("weight") else None
    ii = opts.get("ignore_index", -100)
    ls = opts.get("label_smoothing", 0.0)
    a = _fo(x, True)
    loss = F.cross_entropy(a, fo.tensor(t), weight=None if w is None else fo.tensor(w),
                           ignore_index=ii, reduction=reduction, label_smoothing=ls)
    want = ref.cross_entropy(x.astype(np.float64), t, None if w is None else w.astype(np.float64),
                             ii, ls, reduction)
    _close(loss.detach().numpy(), want, dtype)
    rng = np.random.default_rng(1)
    g = rng.standard_normal(loss.shape).astype(dtype)
    loss.backward(fo.tensor(g))
    torch = _torch()
    b = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(
        b, torch.tensor(t), weight=None if w is None else torch.tensor(w), ignore_index=ii,
        reduction=reduction, label_smoothing=ls)
    lt.backward(torch.tensor(g))
    _close(loss.detach().numpy(), lt.detach().numpy(), dtype)
    _close(a.grad.numpy(), b.grad.numpy(), dtype)
    assert loss.grad_fn.name() == lt.grad_fn.name()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_spatial_and_unbatched(dtype, reduction):
    torch = _torch()
    for x, t in (_ce_case((4, 5), dtype, spatial=2),
                 (np.random.default_rng(2).standard_normal(6).astype(dtype), np.array(2))):
        a = _fo(x, True)
        loss = F.cross_entropy(a, fo.tensor(t), reduction=reduction)
        b = torch.tensor(x, requires_grad=True)
        lt = torch.nn.functional.cross_entropy(b, torch.tensor(t), reduction=reduction)
        _close(loss.detach().numpy(), lt.detach().numpy(), dtype)
        loss.sum().backward()
        lt.sum().backward()
        _close(a.grad.numpy(), b.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probabilities(dtype, reduction, ls, weighted):
    torch = _torch()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 4)).astype(dtype)
    p = rng.random((9, 4)).astype(dtype)
    p /= p.sum(1, keepdims=True)
    w = np.array([1.0, 2.0, 0.5, 1.5], dtype) if weighted else None
    a, pt = _fo(x, True), _fo(p, True)
    loss = F.cross_entropy(a, pt, weight=None if w is None else fo.tensor(w),
                           reduction=reduction, label_smoothing=ls)
    _close(loss.detach().numpy(),
           ref.cross_entropy(x.astype(np.float64), p.astype(np.float64),
                             None if w is None else w.astype(np.float64), smoothing=ls,
                             reduction=reduction), dtype)
    b, bt = torch.tensor(x, requires_grad=True), torch.tensor(p, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(b, bt, weight=None if w is None else torch.tensor(w),
                                           reduction=reduction, label_smoothing=ls)
    loss.sum().backward()
    lt.sum().backward()
    _close(loss.detach().numpy(), lt.detach().numpy(), dtype)
    _close(a.grad.numpy(), b.grad.numpy(), dtype)
    _close(pt.grad.numpy(), bt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(dtype, reduction):
    torch = _torch()
    x, t = _ce_case((11, 6), dtype)
    lp = ref.softmax(x, 1, log=True).astype(dtype)
    w = np.linspace(1, 2, 6).astype(dtype)
    a = _fo(lp, True)
    loss = nn.NLLLoss(weight=fo.tensor(w), ignore_index=2, reduction=reduction)(a, fo.tensor(t))
    b = torch.tensor(lp, requires_grad=True)
    lt = torch.nn.NLLLoss(weight=torch.tensor(w), ignore_index=2, reduction=reduction)(
        b, torch.tensor(t))
    _close(loss.detach().numpy(), lt.detach().numpy(), dtype)
    loss.sum().backward()
    lt.sum().backward()
    _close(a.grad.numpy(), b.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ii", [-100, 2])
def test_nll_loss_unweighted_matches_the_weighted_path_and_torch(dtype, reduction, ii):
    # no weight, no smoothing, contiguous rows: fo_nll's and fo_class_grad's own short paths
    # (and a scalar gradient: the one-value backward); a weight of ones takes the general
    # paths, which must give the same bits
    torch = _torch()
    x, t = _ce_case((37, 6), dtype)
    t[[3, 10, 36]] = 2
    lp = ref.softmax(x, 1, log=True).astype(dtype)
    grads, losses = [], []
    for w in (None, fo.ones(6, dtype=fo.float32 if dtype == np.float32 else fo.float64)):
        a = _fo(lp, True)
        loss = F.nll_loss(a, fo.tensor(t), weight=w, ignore_index=ii, reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        losses.append(loss.detach().numpy())
        grads.append(a.grad.numpy())
    np.testing.assert_array_equal(losses[0], losses[1])
    np.testing.assert_array_equal(grads[0], grads[1])
    per, wsum = ref.nll(lp.astype(np.float64), t, None, ii)
    want = per if reduction == "none" else per.sum() / wsum if reduction == "mean" else per.sum()
    _close(losses[0], want, dtype)
    b = torch.tensor(lp, requires_grad=True)
    lt = torch.nn.functional.nll_loss(b, torch.tensor(t), ignore_index=ii, reduction=reduction)
    (lt.sum() if reduction == "none" else lt).backward()
    _close(losses[0], lt.detach().numpy(), dtype)
    _close(grads[0], b.grad.numpy(), dtype)
    kept = t != ii
    assert (grads[0][~kept] == 0).all() and (grads[0][kept, t[kept]] < 0).all()


def test_nll_loss_bad_targets_name_the_first():
    lp = fo.randn(4, 3)
    for tgt, bad in (([0, -1, 5, 1], -1), ([0, 1, 2, 3], 3), ([-100, 0, -101, 1], -101)):
        with pytest.raises(IndexError, match=f"^Target {bad} is out of bounds.$"):
            F.nll_loss(lp, fo.tensor(tgt))
    with pytest.raises(IndexError, match="^Target 0 is out of bounds.$"):   # no classes
        F.nll_loss(fo.randn(2, 0), fo.tensor([-100, 0]))
    assert np.isnan(F.nll_loss(lp, fo.tensor([-100] * 4)).item())


def test_cross_entropy_edge_values_match_torch():
    torch = _torch()
    # an empty batch and an all-ignored batch give nan for 'mean', as torch
    assert np.isnan(F.cross_entropy(fo.randn(0, 4), fo.zeros(0, dtype=fo.int64)).item())
    assert np.isnan(F.cross_entropy(fo.randn(3, 4), fo.full((3,), -100)).item())
    assert F.cross_entropy(fo.randn(0, 4), fo.zeros(0, dtype=fo.int64), reduction="sum").item() \
        == torch.nn.functional.cross_entropy(torch.randn(0, 4), torch.zeros(0, dtype=torch.long),
                                             reduction="sum").item()


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.tensor([0, 1])), ValueError,
     "Expected input batch_size (3) to match target batch_size (2)."),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.tensor([0, 1, 7])), IndexError,
     "Target 7 is out of bounds."),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.tensor([0, 1, 2]), label_smoothing=1.5),
     RuntimeError, "label_smoothing must be between 0.0 and 1.0. Got: 1.5"),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.tensor([0, 1, 2], dtype=fo.int32)),
     RuntimeError, "expected target dtype to be Long or Byte, but got Int"),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.rand(3, 5)), RuntimeError,   # not probabilities
     "0D or 1D target tensor expected, multi-target not supported"),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.zeros(3, 4, dtype=fo.int64)), RuntimeError,
     "Expected floating point type for target with class probabilities, got Long"),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.tensor([0, 1, 2]), weight=fo.ones(3)),
     RuntimeError, "weight tensor should be defined either for all 4 classes or no classes but "
                   "got weight tensor of shape: [3]"),
    (lambda: F.cross_entropy(fo.randn(3, 4), fo.tensor([0, 1, 2]), reduction="bad"), ValueError,
     "bad is not a valid value for reduction"),
    (lambda: F.nll_loss(fo.randn(3, 4, 5), fo.tensor([0, 1, 2])), RuntimeError,
     "Expected target size [3, 5], got [3]"),
    (lambda: F.binary_cross_entropy(fo.rand(3) * 2 + 1, fo.rand(3)), RuntimeError,
     "all elements of input should be between 0 and 1"),
    (lambda: F.binary_cross_entropy(fo.rand(3), fo.rand(3) + 2), RuntimeError,
     "all elements of target should be between 0 and 1"),
    (lambda: F.binary_cross_entropy(fo.rand(3), fo.rand(2)), ValueError,
     "Using a target size (fastoptim.Size([2])) that is different to the input size "
     "(fastoptim.Size([3])) is deprecated. Please ensure they have the same size."),
    (lambda: F.binary_cross_entropy_with_logits(fo.rand(3), fo.rand(2)), ValueError,
     "Target size (fastoptim.Size([2])) must be the same as input size (fastoptim.Size([3]))"),
    (lambda: F.smooth_l1_loss(fo.rand(3), fo.rand(3), beta=-1), RuntimeError,
     "smooth_l1_loss does not support negative values for beta."),
    (lambda: F.huber_loss(fo.rand(3), fo.rand(3), delta=0), RuntimeError,
     "huber_loss does not support non-positive values for delta."),
    (lambda: nn.L1Loss(reduction="avg"), ValueError, "avg is not a valid value for reduction"),
])
def test_loss_errors(call, exc, msg):
    with pytest.raises(exc) as e:
        call()
    assert str(e.value) == msg



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 33, 640])
def test_bce_range_check_edges(dtype, n):
    """The [0, 1] check reads the floats' bits first (v_first_outside): every value it cannot
    prove inside goes to the exact test, so -0.0, 0, 1 and the tiniest subnormal pass and
    anything else outside [0, 1], NaN included, raises, at any position and for input or target."""
    tiny = np.finfo(dtype).smallest_subnormal
    above = np.nextafter(dtype(1), dtype(2))
    for good in (0.0, -0.0, 1.0, tiny):
        a = np.full(n, 0.5, dtype)
        a[n // 2] = good
        a[-1] = good
        F.binary_cross_entropy(fo.tensor(a), fo.tensor(a))
    for bad in (-tiny, -1.0, above, 2.0, np.nan, -np.nan, np.inf, -np.inf):
        for pos in {0, n // 2, n - 1}:
            a = np.full(n, 0.5, dtype)
            a[pos] = bad
            ok = fo.tensor(np.full(n, 0.5, dtype))
            with pytest.raises(RuntimeError, match="all elements of input should be between"):
                F.binary_cross_entropy(fo.tensor(a), ok)
            with pytest.raises(RuntimeError, match="all elements of target should be between"):
                F.binary_cross_entropy(ok, fo.tensor(a))

# ---- point-wise losses ------------------------------------------------------------------------
POINTWISE = [  # name, fastoptim call, torch call, twin kind, param
    ("l1", lambda F, x, y, r: F.l1_loss(x, y, reduction=r), "l1", 0.0),
    ("smooth_l1", lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r), "smooth_l1", 1.0),
    ("smooth_l1_b0.3", lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.3),
     "smooth_l1", 0.3),
    ("smooth_l1_b0", lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.0), "l1", 0),
    ("huber", lambda F, x, y, r: F.huber_loss(x, y, reduction=r), "huber", 1.0),
    ("huber_d2.5", lambda F, x, y, r: F.huber_loss(x, y, reduction=r, delta=2.5), "huber", 2.5),
    ("bce", lambda F, x, y, r: F.binary_cross_entropy(x, y, reduction=r), "bce", 0.0),
    ("bce_logits", lambda F, x, y, r: F.binary_cross_entropy_with_logits(x, y, reduction=r),
     "bce_logits", 0.0),
]


def _pointwise_data(kind, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "bce":
        x = rng.uniform(0.02, 0.98, n)
        y = rng.random(n)
    else:
        x = rng.standard_normal(n) * 2
        y = rng.random(n) if kind == "bce_logits" else rng.standard_normal(n) * 2
    return x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 7, 640, 100003])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", POINTWISE, ids=[c[0] for c in POINTWISE])
def test_pointwise_twin_and_torch(dtype, n, reduction, case):
    _, call, kind, p = case
    x, y = _pointwise_data(kind, n, dtype)
    a, b = _fo(x, True), _fo(y, True)
    loss = call(F, a, b, reduction)
    el = ref.pointwise_loss(kind, x.astype(np.float64), y.astype(np.float64), p)
    want = el if reduction == "none" else (el.sum() / n if n else np.nan) \
        if reduction == "mean" else el.sum()
    _close(loss.detach().numpy(), want, dtype)
    torch = _torch()
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    lt = call(torch.nn.functional, ta, tb, reduction)
    _close(loss.detach().numpy(), lt.detach().numpy(), dtype)
    if reduction == "mean" and n == 0:
        return
    g = np.random.default_rng(5).standard_normal(loss.shape).astype(dtype)
    loss.backward(fo.tensor(g))
    lt.backward(torch.tensor(g))
    _close(a.grad.numpy(), ta.grad.numpy(), dtype)
    _close(b.grad.numpy(), tb.grad.numpy(), dtype)
    if n and reduction == "mean":
        assert loss.grad_fn.name() == lt.grad_fn.name()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weights_and_pos_weight(dtype, reduction):
    torch = _torch()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3)).astype(dtype)
    y = (rng.random((6, 3)) > 0.5).astype(dtype)
    w = rng.random((6, 1)).astype(dtype) + 0.5
    pw = np.array([0.5, 2.0, 3.0], dtype)
    a = _fo(x, True)
    loss = nn.BCEWithLogitsLoss(weight=fo.tensor(w), pos_weight=fo.tensor(pw),
                                reduction=reduction)(a, fo.tensor(y))
    _close(loss.detach().numpy() if reduction == "none" else loss.item(),
           ref.pointwise_loss("bce_logits", x, y, weight=w, pos_weight=pw).astype(np.float64)
           .__getattribute__({"none": "copy", "sum": "sum", "mean": "mean"}[reduction])(), dtype)
    ta = torch.tensor(x, requires_grad=True)
    lt = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w), pos_weight=torch.tensor(pw),
                                    reduction=reduction)(ta, torch.tensor(y))
    loss.sum().backward()
    lt.sum().backward()
    _close(loss.detach().numpy(), lt.detach().numpy(), dtype)
    _close(a.grad.numpy(), ta.grad.numpy(), dtype)
    p = 1 / (1 + np.exp(-x))
    a2 = _fo(p, True)
    l2 = nn.BCELoss(weight=fo.tensor(w), reduction=reduction)(a2, fo.tensor(y))
    t2 = torch.tensor(p, requires_grad=True)
    lt2 = torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction)(t2, torch.tensor(y))
    l2.sum().backward()
    lt2.sum().backward()
    _close(l2.detach().numpy(), lt2.detach().numpy(), dtype)
    _close(a2.grad.numpy(), t2.grad.numpy(), dtype)


def test_bce_clamps_log_at_minus_100_and_logits_stable():
    torch = _torch()
    x = np.array([0.0, 1.0, 0.5], np.float32)
    y = np.array([1.0, 0.0, 1.0], np.float32)
    _close(F.binary_cross_entropy(_fo(x), _fo(y), reduction="none").numpy(),
           torch.nn.functional.binary_cross_entropy(torch.tensor(x), torch.tensor(y),
                                                    reduction="none").numpy(), np.float32)
    big = np.array([100.0, -100.0], np.float32)
    _close(F.binary_cross_entropy_with_logits(_fo(big), _fo([0.0, 1.0]), reduction="none")
           .numpy(), [100.0, 100.0], np.float32)


def test_mismatched_shapes_warn_and_broadcast_like_torch():
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((3, 1)).astype(np.float32)
    a, b = _fo(x, True), _fo(y, True)
    with pytest.warns(UserWarning, match="Using a target size"):
        loss = F.smooth_l1_loss(a, b)
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = torch.nn.functional.smooth_l1_loss(ta, tb)
    loss.backward()
    lt.backward()
    _close(loss.item(), lt.item(), np.float32)
    _close(b.grad.numpy(), tb.grad.numpy(), np.float32)


def test_loss_modules_repr_and_legacy_reduction():
    torch = _torch()
    for name in ("L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
                 "CrossEntropyLoss", "NLLLoss"):
        assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())
    assert nn.CrossEntropyLoss(size_average=False).reduction == "sum"
    assert nn.CrossEntropyLoss(reduce=False).reduction == "none"


def test_second_backward_raises():
    loss = F.cross_entropy(fo.randn(3, 4, requires_grad=True), fo.tensor([0, 1, 2]))
    loss.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        loss.backward()


def test_softmax_exp_over_the_whole_float32_range():
    """The float32 rows take their exps from a vectorized polynomial (csrc/tensor_loss.inc):
    it must hold float32 accuracy from 0 down to underflow, give 0 at -inf and keep NaN."""
    torch = _torch()
    z = np.linspace(-120.0, 0.0, 100001).astype(np.float32)
    x = np.stack([np.zeros_like(z), z], 1)               # softmax([0, z])[1] = e^z / (1 + e^z)
    got = F.softmax(_fo(x), 1).numpy()
    want = torch.softmax(torch.tensor(x), 1).numpy()
    np.testing.assert_allclose(got, want, rtol=3e-7, atol=1e-37)
    masked = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0]],
                      np.float32)
    got = F.softmax(_fo(masked), 1).numpy()
    want = torch.softmax(torch.tensor(masked), 1).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[0], want[0], rtol=3e-7)
    a = _fo(masked[:1], True)
    F.log_softmax(a, 1).sum().backward()
    b = torch.tensor(masked[:1], requires_grad=True)
    torch.log_softmax(b, 1).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6)


def _ulps(got, want):
    """|got - want| in units of float32's spacing at want (want in float64)."""
    want = np.asarray(want, np.float64)
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(np.asarray(got, np.float64) - want) / spacing


def test_float32_log_and_log1p_polynomials_over_the_range():
    """BCE's float32 logs are fo_vmath.h's polynomials: -max(log x, -100) (target 1) and
    -max(log1p(-x), -100) (target 0), held to 2 and 1.5 ulp of float64's over (0, 1] in
    float32, subnormals and 0 (log 0 = -inf, clamped to 100) included (log1p's exact-error
    form is within 1.44 ulp over every float of [0, 1]; the division form was 2.02)."""
    x = np.concatenate([np.geomspace(1e-45, 1.0, 200001), np.linspace(0.0, 1.0, 100001),
                        [0.0, 1e-45, 1e-40, 1.1754942e-38, 1.1754944e-38, 0.5, 0.70710677,
                         0.70710683, 1.0 - 2**-24, 1.0]]).astype(np.float32)
    x64 = x.astype(np.float64)
    with np.errstate(divide="ignore"):
        want_log = -np.maximum(np.log(x64), -100.0)
        want_log1p = -np.maximum(np.log1p(-x64), -100.0)
    got = F.binary_cross_entropy(_fo(x), _fo(np.ones_like(x)), reduction="none").numpy()
    assert _ulps(got, want_log).max() <= 2.0
    got = F.binary_cross_entropy(_fo(x), _fo(np.zeros_like(x)), reduction="none").numpy()
    assert _ulps(got, want_log1p).max() <= 1.5


def test_float32_exp_polynomial_over_the_range():
    """BCE-with-logits' float32 gradient is sigmoid(x) - y, its sigmoid taken from the
    forward's exp(-|x|) (fo_vmath.h's): held to float64's sigmoid over the whole float32 range
    down to x = -87, where exp(-|x|) leaves the normal range; below, the gradient flushes to
    0 with that exp (torch's 1 / (1 + exp(-x)) gives at most 1.65e-38 there); and a NaN logit
    gives a NaN gradient."""
    x = np.concatenate([np.linspace(-104.0, 104.0, 400001), [-np.inf, np.inf, -88.72, 88.72,
                        -87.0, -87.5, 0.0, -0.0]]).astype(np.float32)
    want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    a = _fo(x, True)
    F.binary_cross_entropy_with_logits(a, _fo(np.zeros_like(x)), reduction="sum").backward()
    got = a.grad.numpy().astype(np.float64)
    normal = x >= -87.0
    np.testing.assert_allclose(got[normal], want[normal], rtol=4e-7, atol=1e-38)
    assert np.all(got[~normal] == 0.0) and want[~normal].max() < 1.66e-38
    a = _fo(np.array([np.nan, 1.0], np.float32), True)
    F.binary_cross_entropy_with_logits(a, _fo(np.zeros(2, np.float32)), reduction="sum").backward()
    assert np.isnan(a.grad.numpy()[0]) and np.isfinite(a.grad.numpy()[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 256, 601])
@pytest.mark.parametrize("with_pw", [False, True])
@pytest.mark.parametrize("with_g", [False, True])
def test_bce_logits_backward_with_and_without_the_saved_exp(dtype, n, with_pw, with_g):
    """The C API's BCE-with-logits backward reads the forward's exp(-|x|) from aux, and makes
    it itself (a block of 256 at a time) when aux is NULL: the same gradients, bit for bit,
    and the ones fastoptim's autograd gives."""
    import ctypes
    head, vp = [ctypes.c_int, ctypes.c_int64] + [ctypes.c_void_p] * 4, ctypes.c_void_p
    fwd = _c_fn("pointwise_loss", ctypes.c_double, head + [ctypes.c_double, vp, vp], dtype)
    bwd = _c_fn("pointwise_loss_backward", None,
                head + [ctypes.c_double, vp, ctypes.c_double, vp, vp, vp], dtype)
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[0] = 0.0
    y = rng.random(n).astype(dtype)
    pw = (rng.random(n) * 3).astype(dtype) if with_pw else None
    g = rng.standard_normal(n).astype(dtype) if with_g else None
    def ptr(a):
        return None if a is None else a.ctypes.data
    e = np.empty(n, dtype)
    fwd(4, n, ptr(x), ptr(y), None, ptr(pw), 0.0, None, ptr(e))    # kind 4: BCE_LOGITS
    np.testing.assert_allclose(e, np.exp(-np.abs(x.astype(np.float64))), rtol=4e-7, atol=1e-38)
    grads = []
    for aux in (e, None):
        gx, gy = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
        bwd(4, n, ptr(x), ptr(y), None, ptr(pw), 0.0, ptr(g), 0.5, ptr(gx), ptr(gy), ptr(aux))
        grads.append((gx, gy))
    for want, got in zip(grads[0], grads[1]):
        assert want.tobytes() == got.tobytes()
    a, b = _fo(x, True), _fo(y, True)
    loss = F.binary_cross_entropy_with_logits(
        a, b, reduction="none" if with_g else "sum",
        pos_weight=None if pw is None else fo.tensor(pw))
    loss.backward(fo.tensor(g) if with_g else fo.tensor(0.5, dtype=loss.dtype))
    assert a.grad.numpy().tobytes() == grads[0][0].tobytes()
    assert b.grad.numpy().tobytes() == grads[0][1].tobytes()


def test_float32_log_sigmoid_over_the_range():
    """BCE-with-logits' float32 forward takes log1p(exp(-|x|)) from fo_vmath.h's exp of a
    non-positive argument and its log1p over [0, 1] (no special cases): with target 1 the loss
    is -log_sigmoid(x), held to 3 ulp of float64's over |x| <= 80 (beyond, exp(-|x|) meets the
    -87 flush), tiny |x| included; a NaN logit still gives NaN."""
    x = np.concatenate([np.linspace(-80.0, 80.0, 400001), np.geomspace(1e-30, 80.0, 100001),
                        -np.geomspace(1e-30, 80.0, 100001), [0.0, -0.0]]).astype(np.float32)
    got = F.binary_cross_entropy_with_logits(_fo(x), _fo(np.ones_like(x)),
                                             reduction="none").numpy()
    assert _ulps(got, np.logaddexp(0.0, -x.astype(np.float64))).max() <= 3.0
    got = F.binary_cross_entropy_with_logits(_fo(np.array([np.nan, 1.0], np.float32)),
                                             _fo(np.ones(2, np.float32)), reduction="none")
    assert np.isnan(got.numpy()[0]) and np.isfinite(got.numpy()[1])


def test_float32_log_softmax_row_sums_over_widths():
    """log_softmax's row log-sum-exp takes fo_vmath.h's log of the row sums (>= 1): rows of
    equal logits give -log(n) for every width n, within float32's accuracy."""
    for n in (1, 2, 3, 7, 10, 64, 1000, 100000):
        got = F.log_softmax(_fo(np.full((2, n), 3.0, np.float32)), 1).numpy()
        np.testing.assert_allclose(got, -np.log(n), rtol=3e-7, atol=1e-7)


# ---- the lean paths (issue 13's speed work): same numbers, same semantics ----------------------
def _ce_pair(torch, dtype=np.float32, shape=(64, 10)):
    g = np.random.default_rng(7)
    x = g.standard_normal(shape).astype(dtype)
    t = g.integers(0, shape[1], shape[0])
    return (_fo(x, True), fo.tensor(t)), (torch.tensor(x, requires_grad=True), torch.tensor(t))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_retain_graph_keeps_its_saved_softmax(dtype):
    # without retain_graph the backward writes the gradient over the saved softmax; with it,
    # the softmax must survive for the next backward (and .grad must not alias it)
    torch = _torch()
    (a, t), (ta, tt) = _ce_pair(torch, dtype)
    loss, lt = F.cross_entropy(a, t), torch.nn.functional.cross_entropy(ta, tt)
    for _ in range(3):
        loss.backward(retain_graph=True)
        lt.backward(retain_graph=True)
        _close(a.grad.numpy(), ta.grad.numpy(), dtype)
    loss.backward()
    lt.backward()
    _close(a.grad.numpy(), ta.grad.numpy(), dtype)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second"):
        loss.backward()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_autograd_grad_and_fresh_grads_match_torch(reduction):
    torch = _torch()
    (a, t), (ta, tt) = _ce_pair(torch, np.float64, (9, 4))
    loss = F.cross_entropy(a, t, reduction=reduction).sum()
    lt = torch.nn.functional.cross_entropy(ta, tt, reduction=reduction).sum()
    (ga,) = fo.autograd.grad(loss, [a])
    (gt,) = torch.autograd.grad(lt, [ta])
    _close(ga.numpy(), gt.numpy(), np.float64)
    assert a.grad is None
    for _ in range(2):      # a new graph each time, .grad accumulating
        F.cross_entropy(a, t, reduction=reduction).sum().backward()
        torch.nn.functional.cross_entropy(ta, tt, reduction=reduction).sum().backward()
    _close(a.grad.numpy(), ta.grad.numpy(), np.float64)


@pytest.mark.parametrize("name,kw", [("CrossEntropyLoss", dict(reduction="sum")),
                                     ("CrossEntropyLoss", dict(ignore_index=3)),
                                     ("CrossEntropyLoss", dict(label_smoothing=0.2)),
                                     ("NLLLoss", dict(reduction="none")),
                                     ("NLLLoss", dict(ignore_index=1)),
                                     ("BCELoss", dict(reduction="sum")),
                                     ("BCEWithLogitsLoss", dict(reduction="none")),
                                     ("MSELoss", dict(reduction="sum"))])
def test_loss_modules_read_their_attributes_at_call_time(name, kw):
    # the modules' forward is compiled: an attribute changed after construction still counts,
    # as in torch, and a subclass's own forward still runs
    torch = _torch()
    g = np.random.default_rng(3)
    x = g.standard_normal((8, 5)).astype(np.float32)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        y = g.integers(0, 5, 8)
    else:
        y = g.random((8, 5)).astype(np.float32)
    if name in ("BCELoss",):
        x = 1 / (1 + np.exp(-x))
    if name == "NLLLoss":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
    crit, tcrit = getattr(nn, name)(), getattr(torch.nn, name)()
    for k, v in kw.items():
        setattr(crit, k, v)
        setattr(tcrit, k, v)
    a, ta = _fo(x, True), torch.tensor(x, requires_grad=True)
    loss, lt = crit(a, fo.tensor(y)), tcrit(ta, torch.tensor(y))
    loss.sum().backward()
    lt.sum().backward()
    _close(loss.detach().numpy(), lt.detach().numpy(), np.float32)
    _close(a.grad.numpy(), ta.grad.numpy(), np.float32)

    class Doubled(getattr(nn, name)):
        def forward(self, input, target):
            return super().forward(input, target) * 2

    _close(Doubled()(a, fo.tensor(y)).detach().numpy(),
           2 * getattr(torch.nn, name)()(ta, torch.tensor(y)).detach().numpy(), np.float32)


def test_mse_loss_weight_is_refused_not_ignored():
    with pytest.raises(NotImplementedError, match=r"mse_loss\(\): weight= is not supported"):
        F.mse_loss(fo.ones(3), fo.zeros(3), weight=fo.ones(3))


@pytest.mark.parametrize("n", [1, 2, 5, 10, 31, 32, 33, 64])
@pytest.mark.parametrize("rows", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_and_long_rows_with_special_values_match_torch(n, rows, dtype):
    # rows of up to 32 classes take the transposed (rows-in-lanes) block, longer rows the
    # row-wise one; NaN, +-inf and all -inf rows must come out as torch's in both
    torch = _torch()
    g = np.random.default_rng(n * 1000 + rows)
    x = (g.standard_normal((rows, n)) * 4).astype(dtype)
    if rows >= 4:
        x[1, g.integers(0, n)] = np.nan
        x[2, g.integers(0, n)] = np.inf
        x[3, :] = -np.inf
    if rows >= 5 and n > 1:
        x[4, 0] = -np.inf
    t = g.integers(0, n, rows)
    tx = torch.tensor(x)
    for log in (False, True):
        got = (F.log_softmax if log else F.softmax)(_fo(x), 1).numpy()
        want = (torch.log_softmax if log else torch.softmax)(tx, 1).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        _close(np.nan_to_num(got), np.nan_to_num(want), dtype)
    a, ta = _fo(x, True), torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(a, fo.tensor(t), reduction="none")
    lt = torch.nn.functional.cross_entropy(ta, torch.tensor(t), reduction="none")
    np.testing.assert_array_equal(np.isnan(loss.detach().numpy()), np.isnan(lt.detach().numpy()))
    _close(np.nan_to_num(loss.detach().numpy()), np.nan_to_num(lt.detach().numpy()), dtype)
    loss.sum().backward()
    lt.sum().backward()
    np.testing.assert_array_equal(np.isnan(a.grad.numpy()), np.isnan(ta.grad.numpy()))
    _close(np.nan_to_num(a.grad.numpy()), np.nan_to_num(ta.grad.numpy()), dtype)


@pytest.mark.parametrize("fn,shape,target", [
    ("cross_entropy", (3, 4), np.zeros((3, 1), np.int64)),
    ("cross_entropy", (3, 4), np.zeros((), np.int64)),
    ("nll_loss", (4,), np.zeros((1, 1), np.int64)),
    ("cross_entropy", (3, 4, 5), np.zeros((3, 6), np.int64)),
    ("cross_entropy", (3, 4, 5), np.zeros((3, 5, 1), np.int64)),
    ("cross_entropy", (3, 4, 5), np.zeros((2, 5), np.int64)),
    ("cross_entropy", (3, 4), np.zeros((3, 5), np.float32)),
    ("cross_entropy", (3, 4), np.zeros((4, 3), np.float32)),
    ("cross_entropy", (3, 4), np.zeros((3,), np.float32)),
    ("cross_entropy", (3, 4), np.zeros((4,), np.int32)),
    ("cross_entropy", (3, 4), np.zeros((3, 4), np.int32)),
    ("nll_loss", (3, 4), np.zeros((3,), np.float32)),
])
def test_class_loss_target_shape_errors_are_torchs(fn, shape, target):
    torch = _torch()
    with pytest.raises(Exception) as got:
        getattr(F, fn)(fo.zeros(*shape), fo.tensor(target))
    with pytest.raises(Exception) as want:
        getattr(torch.nn.functional, fn)(torch.zeros(*shape), torch.tensor(target))
    assert type(got.value) is type(want.value)
    assert str(got.value) == str(want.value)
