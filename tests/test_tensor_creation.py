"""Creation functions against torch 2.13: linspace/logspace bit for bit, eye, normal (its four
forms), randint, randperm, arange with dtypes, the *_like family, dtype=/device= keywords, and
tensor(x, dtype=float64) keeping every bit of a Python float.

Why: a tutorial's x = linspace(-pi, pi, 2000) is the input of everything after it; torch
computes it in the target dtype with a symmetric fused formula, and one ulp off in a third of
the values (as before this file) shows up in every loss printed afterwards.  The C kernel
(fo_linspace_*) is also held against its slow twin, fastoptim._reference.linspace.
"""
import math

import numpy as np
import pytest

import fastoptim as fo
from fastoptim import _reference as ref


def _torch():
    return pytest.importorskip("torch")


def _ranges(seed=0, k=25):
    rng = np.random.default_rng(seed)
    out = [(-math.pi, math.pi, 2000), (0, 1, 2000), (-1, 1, 2000), (0.1, 7.3, 2001),
           (3, -2, 33), (-5, -1, 17), (0, 1, 7), (2, 5, 2), (0, 1, 1), (0, 1, 0), (4, 4, 9)]
    for _ in range(k):
        out.append((float(rng.normal() * 10), float(rng.normal() * 10), int(rng.integers(2, 2500))))
    return out


@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "int32"])
def test_linspace_bit_for_bit_with_torch(dt):
    torch = _torch()
    for s, e, n in _ranges():
        if dt.startswith("int"):
            s, e = int(s * 3), int(e * 3)
        a = torch.linspace(s, e, n, dtype=getattr(torch, dt)).numpy()
        b = fo.linspace(s, e, n, dtype=getattr(fo, dt)).numpy()
        assert b.dtype == a.dtype
        assert np.array_equal(a, b), (s, e, n, int((a != b).sum()))


def test_linspace_default_dtype_and_tensor_bounds():
    torch = _torch()
    a = torch.linspace(torch.tensor(-2.0), torch.tensor(3.0), 2000)
    b = fo.linspace(fo.tensor(-2.0), fo.tensor(3.0), 2000)
    assert b.dtype is fo.float32
    assert np.array_equal(a.numpy(), b.numpy())
    fo.set_default_dtype(fo.float64)
    try:
        assert fo.linspace(0, 1, 5).dtype is fo.float64
    finally:
        fo.set_default_dtype(fo.float32)


@pytest.mark.parametrize("dt", ["float32", "float64", "int64"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 31, 200])
def test_linspace_kernel_against_its_twin(dt, n):
    for s, e in [(0.0, 1.0), (-3.3, 10.1), (5.0, -7.0), (1e-3, 1e3)]:
        if dt == "int64":
            s, e = int(s * 10), int(e * 10)
        got = fo.linspace(s, e, n, dtype=getattr(fo, dt)).numpy()
        assert np.array_equal(got, ref.linspace(n, s, e, dt))


@pytest.mark.parametrize("dt", ["float32", "float64", "int64"])
def test_logspace_bit_for_bit_with_torch(dt):
    torch = _torch()
    for s, e, n in _ranges(1, 10):
        for base in (10.0, 2.0, 0.5):
            if dt == "int64":
                s, e = int(s / 4), int(e / 4)
            a = torch.logspace(s / 5, e / 5, n, base=base, dtype=getattr(torch, dt)).numpy()
            b = fo.logspace(s / 5, e / 5, n, base=base, dtype=getattr(fo, dt)).numpy()
            assert np.array_equal(a, b, equal_nan=True), (s, e, n, base)


def test_linspace_errors():
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        fo.linspace(0, 1, -1)
    with pytest.raises(TypeError, match="'steps'"):
        fo.linspace(0, 1, 2.5)
    with pytest.raises(RuntimeError, match="fastoptim runs on the CPU only"):
        fo.linspace(0, 1, 3, device="cuda")
    assert fo.linspace(0, 1, 3, device="cpu").shape == (3,)


def test_eye():
    torch = _torch()
    for args, kw in [((3,), {}), ((2, 3), {}), ((3, 2), {"dtype": "int64"}), ((0,), {}),
                     ((1, 4), {"dtype": "float64"})]:
        tkw = {k: getattr(torch, v) for k, v in kw.items()}
        fkw = {k: getattr(fo, v) for k, v in kw.items()}
        a, b = torch.eye(*args, **tkw), fo.eye(*args, **fkw)
        assert str(a.dtype)[6:] == str(b.dtype)[10:]
        assert np.array_equal(a.numpy(), b.numpy())
    assert fo.eye(2, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0, got -1"):
        fo.eye(-1)


def test_normal_forms_shapes_dtypes_and_moments():
    fo.manual_seed(0)
    assert fo.normal(0.0, 1.0, size=(3, 4)).shape == (3, 4)
    assert fo.normal(0.0, 1.0, (2,), dtype=fo.float64).dtype is fo.float64
    assert fo.normal(fo.zeros(3), fo.ones(3)).shape == (3,)
    assert fo.normal(fo.zeros(2, 1), fo.ones(3)).shape == (2, 3)       # broadcast
    assert fo.normal(fo.zeros(3), 2.0).shape == (3,)
    assert fo.normal(1.0, fo.ones(4)).shape == (4,)
    x = fo.normal(3.0, 2.0, size=(200000,)).numpy()
    assert abs(x.mean() - 3.0) < 0.03 and abs(x.std() - 2.0) < 0.03
    m = fo.normal(fo.tensor([0.0, 100.0]).repeat(50000) if hasattr(fo.Tensor, "repeat")
                  else fo.tensor([0.0, 100.0] * 50000), 1.0).numpy()
    assert abs(m[1::2].mean() - 100.0) < 0.05 and abs(m[::2].mean()) < 0.05
    assert np.all(fo.normal(fo.tensor([5.0, 6.0]), 0.0).numpy() == [5.0, 6.0])


def test_normal_is_seeded_and_takes_a_generator():
    fo.manual_seed(7)
    a = fo.normal(0.0, 1.0, (5,))
    fo.manual_seed(7)
    assert fo.normal(0.0, 1.0, (5,)).equal(a)
    g = fo.Generator().manual_seed(3)
    b = fo.normal(fo.zeros(4), fo.ones(4), generator=g)
    g.manual_seed(3)
    assert fo.normal(fo.zeros(4), fo.ones(4), generator=g).equal(b)


def test_normal_errors_as_torch():
    torch = _torch()
    for call in (lambda T: T.normal(0.0, -1.0, size=(2,)),
                 lambda T: T.normal(T.zeros(2), -T.ones(2)),
                 lambda T: T.normal(T.zeros(2), T.ones(3))):
        with pytest.raises(RuntimeError) as te:
            call(torch)
        with pytest.raises(RuntimeError) as fe:
            call(fo)
        assert str(fe.value) == str(te.value).split("\n")[0]
    with pytest.raises(TypeError, match="normal\\(\\) received an invalid combination"):
        fo.normal(0.0, 1.0)


def test_randint():
    fo.manual_seed(1)
    r = fo.randint(0, 10, (20000,))
    assert r.dtype is fo.int64 and r.shape == (20000,)
    v = r.numpy()
    assert v.min() == 0 and v.max() == 9
    assert np.all(np.abs(np.bincount(v) / 20000 - 0.1) < 0.02)
    assert fo.randint(5, (2, 3)).shape == (2, 3)
    assert fo.randint(-3, -1, (100,)).numpy().min() >= -3
    assert fo.randint(3, (2,), dtype=fo.float32).dtype is fo.float32
    assert fo.randint(3, size=(4,)).shape == (4,)
    assert fo.randint_like(fo.zeros(3), 5).dtype is fo.float32
    assert fo.randint_like(fo.zeros(3, dtype=fo.int64), 2, 5).numpy().min() >= 2
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to', but "
                                           "got from=5 >= to=5"):
        fo.randint(5, 5, (2,))
    g = fo.Generator().manual_seed(11)
    a = fo.randint(100, (6,), generator=g)
    g.manual_seed(11)
    assert fo.randint(100, (6,), generator=g).equal(a)


def test_randperm_dtype_and_permutation():
    p = fo.randperm(50)
    assert p.dtype is fo.int64 and sorted(p.tolist()) == list(range(50))
    assert fo.randperm(5, dtype=fo.float32).dtype is fo.float32


@pytest.mark.parametrize("args,kw", [((5,), {}), ((0, 1, 0.25), {}), ((5,), {"dtype": "float32"}),
                                     ((1, 2.5, 0.5), {"dtype": "float64"}), ((2, 11, 3), {}),
                                     ((10, 0, -3), {}), ((0.5, 3), {"dtype": "int64"})])
def test_arange_dtypes_as_torch(args, kw):
    torch = _torch()
    a = torch.arange(*args, **{k: getattr(torch, v) for k, v in kw.items()})
    b = fo.arange(*args, **{k: getattr(fo, v) for k, v in kw.items()})
    assert str(a.dtype)[6:] == str(b.dtype)[10:]
    assert np.array_equal(a.numpy(), b.numpy())


def test_like_family_keeps_shape_and_dtype_unless_told():
    x = fo.ones(2, 3, dtype=fo.float64)
    for fn in (fo.zeros_like, fo.ones_like, fo.empty_like, fo.rand_like, fo.randn_like):
        y = fn(x)
        assert y.shape == (2, 3) and y.dtype is fo.float64
        assert fn(x, dtype=fo.float32).dtype is fo.float32
        assert fn(x, device="cpu").shape == (2, 3)
        assert fn(x, requires_grad=True).requires_grad
    assert fo.zeros_like(x, dtype=fo.int64).dtype is fo.int64
    assert fo.full_like(x, 3).tolist() == [[3.0] * 3] * 2
    with pytest.raises(RuntimeError, match="CPU only"):
        fo.zeros_like(x, device="cuda")


def test_dtype_and_device_keywords_everywhere():
    for fn, args in [(fo.zeros, (2,)), (fo.ones, (2,)), (fo.empty, (2,)), (fo.rand, (2,)),
                     (fo.randn, (2,)), (fo.linspace, (0, 1, 3)), (fo.logspace, (0, 1, 3)),
                     (fo.eye, (2,)), (fo.arange, (3,)), (fo.full, ((2,), 1.0))]:
        assert fn(*args, dtype=fo.float64, device="cpu").dtype is fo.float64
        assert fn(*args, device=fo.device("cpu")).device == fo.device("cpu")
        with pytest.raises(RuntimeError, match="CPU only"):
            fn(*args, device="cuda:0")


def test_tensor_of_python_floats_keeps_every_bit_in_float64():
    torch = _torch()
    assert fo.tensor(0.05, dtype=fo.float64).item() == 0.05
    assert fo.tensor([0.05, 0.1, 1 / 3], dtype=fo.float64).tolist() == [0.05, 0.1, 1 / 3]
    assert fo.tensor(0.05).item() == torch.tensor(0.05).item()   # float32 by default
    assert fo.tensor(0.1, dtype=fo.float32).item() == torch.tensor(0.1).item()
    assert fo.tensor([1.5, 2.0], dtype=fo.int64).tolist() == [1, 2]
