"""swa_utils: the fused averaging kernel against its NumPy twin, and AveragedModel / SWALR /
update_bn against torch 2.13.

Why: an EMA or SWA model is what gets evaluated and shipped; its numbers must be torch's, and
averaging a model must stay one C call over all its tensors (the kernel is checked over dtypes,
sizes 0, 1, odd and beyond the threading threshold, weights on both sides of ATen's lerp switch,
and thread counts), with every bad call refused before anything is written.
"""

import copy

import numpy as np
import pytest

import fastoptim
from fastoptim import nn
from fastoptim._C import _optim
from fastoptim._C._optim import _average, _unique_values
from fastoptim.optim import _reference as ref
from fastoptim.optim import swa_utils

SIZES = [0, 1, 7, 1023, 600_001]   # 600_001 > 512Ki: the kernel's threaded path
DTYPES = [np.float32, np.float64]
MODES = [(ref.AVERAGE_LERP, 0.001), (ref.AVERAGE_LERP, 1 / 3), (ref.AVERAGE_LERP, 0.5),
         (ref.AVERAGE_LERP, 0.75), (ref.AVERAGE_LERP, 1.0), (ref.AVERAGE_LERP, 0.0),
         (ref.AVERAGE_MEAN, 1.0), (ref.AVERAGE_MEAN, 3.0), (ref.AVERAGE_MEAN, 7.0)]


def arrays(sizes, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for n in sizes]


# ---- the kernel and its twin ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode,weight", MODES)
def test_kernel_equals_numpy_twin(dtype, size, mode, weight):
    sizes = [size, 3, size]
    a, m = arrays(sizes, dtype, 0), arrays(sizes, dtype, 1)
    a_ref, m_before = [x.copy() for x in a], [x.copy() for x in m]
    _average(a, m, mode, weight)
    ref.average(a_ref, m, mode, weight)
    for x, y in zip(a, a_ref):
        np.testing.assert_array_equal(x, y)   # the same arithmetic, bit for bit
    for x, y in zip(m, m_before):
        np.testing.assert_array_equal(x, y)   # the model is only read


def test_kernel_mixed_dtypes_and_tensors_in_one_call():
    a = arrays([5, 9, 2], np.float32, 0) + arrays([4, 1], np.float64, 1)
    m = arrays([5, 9, 2], np.float32, 2) + arrays([4, 1], np.float64, 3)
    a_ref = [x.copy() for x in a]
    ta, tm = [fastoptim.from_numpy(x) for x in a], [fastoptim.from_numpy(x) for x in m]
    ta[1], tm[3] = a[1], m[3]   # Tensors and numpy arrays may be mixed
    _average(ta, tm, ref.AVERAGE_LERP, 0.1)
    ref.average(a_ref, m, ref.AVERAGE_LERP, 0.1)
    for x, y in zip(a, a_ref):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_is_bit_identical_for_any_thread_count(dtype):
    sizes = [700_001, 5, 300_000]
    m = arrays(sizes, dtype, 1)
    out = []
    before = _optim._get_num_threads()
    try:
        for n in (1, 2, 3):
            _optim._set_num_threads(n)
            a = arrays(sizes, dtype, 0)
            for _ in range(3):
                _average(a, m, ref.AVERAGE_LERP, 0.3)
                _average(a, m, ref.AVERAGE_MEAN, 3.0)
            out.append(a)
    finally:
        _optim._set_num_threads(before)
    for other in out[1:]:
        for x, y in zip(out[0], other):
            np.testing.assert_array_equal(x, y)


def test_kernel_allows_shared_model_arrays():
    m = np.arange(6.0)
    a = [np.zeros(6), np.zeros(6)]
    _average(a, [m, m], ref.AVERAGE_LERP, 0.5)
    np.testing.assert_array_equal(a[0], m * 0.5)


def test_kernel_checks_overlap_again_when_the_arrays_change():
    # _average remembers the last spans it proved safe (a training loop averages the same
    # arrays every step); any other spans are checked again, even just after a proven call.
    base = np.zeros(16)
    a, m = [base[:4], base[4:8]], [np.ones(4), np.ones(4)]
    for _ in range(2):
        _average(a, m, ref.AVERAGE_LERP, 0.5)     # the second call: the remembered spans
    np.testing.assert_array_equal(base[:8], 0.75)
    with pytest.raises(ValueError, match=r"averaged\[1\] overlaps"):
        _average([base[:4], base[2:6]], m, ref.AVERAGE_LERP, 0.5)
    with pytest.raises(ValueError, match="overlaps"):
        _average([base[:4], base[4:8]], [np.ones(4), base[6:10]], ref.AVERAGE_LERP, 0.5)
    np.testing.assert_array_equal(base[:8], 0.75)   # nothing written by the refused calls
    _average(a, m, ref.AVERAGE_LERP, 0.5)            # and the proven call still runs
    np.testing.assert_array_equal(base[:8], 0.875)


def test_param_collection_keeps_order_and_identity_over_many_registries():
    # _unique_values' address table against a plain identity walk: many modules, params
    # shared across them and within one, None entries skipped.
    rng = np.random.default_rng(3)
    pool = [nn.Parameter(fastoptim.zeros(1)) for _ in range(50)]
    registries = []
    for _ in range(40):
        reg = {}
        for k in range(int(rng.integers(0, 30))):
            reg[f"p{k}"] = None if rng.random() < 0.1 else pool[int(rng.integers(0, 50))]
        registries.append(reg)
    want, seen = [], set()
    for reg in registries:
        for v in reg.values():
            if v is not None and id(v) not in seen:
                seen.add(id(v))
                want.append(v)
    got = _unique_values(registries)
    assert [id(v) for v in got] == [id(v) for v in want]
    assert _unique_values([]) == [] and _unique_values([{}, {"a": None}]) == []


def _bad_calls():
    f32 = np.zeros(4, np.float32)
    base = np.zeros(8)
    ro = np.zeros(4)
    ro.setflags(write=False)
    return [
        (([np.zeros(4)], [np.zeros(4), np.zeros(4)], 0, 0.5), ValueError,
         "averaged and model must have the same length, got 1 and 2"),
        (([np.zeros(4)], [np.zeros(4)], 2, 0.5), ValueError, "mode must be 0 .* got 2"),
        (([[0.0]], [np.zeros(1)], 0, 0.5), TypeError,
         r"averaged\[0\] must be a fastoptim Tensor or a numpy.ndarray, got list"),
        (([np.zeros(4, np.int64)], [np.zeros(4, np.int64)], 0, 0.5), TypeError,
         r"averaged\[0\] must be float32 or float64"),
        (([np.zeros(4)], [f32], 0, 0.5), TypeError, r"model\[0\] must have averaged\[0\]'s "
         "dtype float64, got float32"),
        (([np.zeros(4)], [np.zeros((2, 2))], 0, 0.5), ValueError,
         r"model\[0\] must have averaged\[0\]'s shape \(4,\), got \(2, 2\)"),
        (([np.zeros(8)[::2]], [np.zeros(4)], 0, 0.5), ValueError, "must be C-contiguous"),
        (([ro], [np.zeros(4)], 0, 0.5), ValueError, r"averaged\[0\] must be writeable"),
        (([base[:5], base[3:]], [np.zeros(5), np.zeros(5)], 0, 0.5), ValueError,
         "overlaps"),
        (([base[:4]], [base[2:6]], 0, 0.5), ValueError, "overlaps"),
    ]


@pytest.mark.parametrize("k", range(10))
def test_kernel_refuses_bad_calls_before_writing(k):
    args, exc, msg = _bad_calls()[k]
    good_a, good_m = np.zeros(3), np.ones(3)
    averaged = [good_a] + list(args[0])
    model = [good_m] + list(args[1])
    if k == 0:
        averaged, model = list(args[0]), list(args[1])
    else:
        msg = msg.replace(r"\[0\]", r"\[1\]")   # behind the valid pair
    with pytest.raises(exc, match=msg):
        _average(averaged, model, args[2], args[3])
    np.testing.assert_array_equal(good_a, 0.0)   # nothing was written


# ---- AveragedModel against torch -----------------------------------------------------------------

torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch")
    return torch


def twin_models(dtype):
    """The same MLP (fastoptim and torch), with the same weights."""
    t = _torch()
    fo_model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    t_model = t.nn.Sequential(t.nn.Linear(4, 16), t.nn.ReLU(), t.nn.Linear(16, 3))
    if dtype == np.float64:
        fo_model.double()
        t_model.double()
    with t.no_grad():
        for fp, tp in zip(fo_model.parameters(), t_model.parameters()):
            tp.copy_(t.from_numpy(np.array(fp.detach().numpy())))
    return fo_model, t_model


def set_params(models, rng, dtype):
    for ps in zip(*[m.parameters() for m in models]):
        value = rng.standard_normal(tuple(ps[0].shape)).astype(dtype)
        for p in ps:
            with (fastoptim if isinstance(p, fastoptim.Tensor) else torch).no_grad():
                p.copy_(fastoptim.from_numpy(value.copy()) if isinstance(p, fastoptim.Tensor)
                        else torch.from_numpy(value.copy()))


AVERAGERS = {
    "swa-default": lambda swa: {},
    "ema-multi": lambda swa: {"multi_avg_fn": swa.get_ema_multi_avg_fn(0.9)},
    "swa-multi": lambda swa: {"multi_avg_fn": swa.get_swa_multi_avg_fn()},
    "ema-fn": lambda swa: {"avg_fn": swa.get_ema_avg_fn(0.95)},
    "swa-fn": lambda swa: {"avg_fn": swa.get_swa_avg_fn()},
    "ema-multi-buffers": lambda swa: {"multi_avg_fn": swa.get_ema_multi_avg_fn(),
                                      "use_buffers": True},
}


def tol(dtype):
    # float64: torch's CPU lerp uses FMA where ours rounds twice (~1e-16 per step)
    return dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", AVERAGERS)
def test_averaged_model_trajectory_equals_torch(kind, dtype):
    fo_model, t_model = twin_models(dtype)
    fo_avg = swa_utils.AveragedModel(fo_model, **AVERAGERS[kind](swa_utils))
    t_avg = torch.optim.swa_utils.AveragedModel(t_model, **AVERAGERS[kind](torch.optim.swa_utils))
    rng = np.random.default_rng(0)
    for _ in range(30):
        set_params([fo_model, t_model], rng, dtype)
        fo_avg.update_parameters(fo_model)
        t_avg.update_parameters(t_model)
        for fp, tp in zip(fo_avg.parameters(), t_avg.parameters()):
            np.testing.assert_allclose(fp.detach().numpy(), tp.detach().numpy(), **tol(dtype))
        assert int(fo_avg.n_averaged.item()) == int(t_avg.n_averaged.item())
    assert list(fo_avg.state_dict()) == list(t_avg.state_dict())
    x = rng.standard_normal((5, 4)).astype(dtype)
    np.testing.assert_allclose(fo_avg(fastoptim.from_numpy(x)).detach().numpy(),
                               t_avg(torch.from_numpy(x)).detach().numpy(), **tol(dtype))


def test_swa_training_loop_with_swalr_equals_torch():
    """SGD training, SWALR from epoch 5, AveragedModel updated each epoch from then on."""
    dtype = np.float64
    fo_model, t_model = twin_models(dtype)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((8, 4)) for _ in range(20)]
    ys = [rng.standard_normal((8, 3)) for _ in range(20)]
    results = []
    for lib, model in ((fastoptim, fo_model), (torch, t_model)):
        opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        swa = lib.optim.swa_utils
        avg = swa.AveragedModel(model)
        sched = swa.SWALR(opt, swa_lr=0.01, anneal_epochs=4, anneal_strategy="linear")
        lrs = []
        for epoch, (x, y) in enumerate(zip(xs, ys)):
            opt.zero_grad()
            out = model(lib.from_numpy(x.copy()))
            loss = lib.nn.MSELoss()(out, lib.from_numpy(y.copy()))
            loss.backward()
            opt.step()
            if epoch >= 5:
                avg.update_parameters(model)
                sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        swa.update_bn([lib.from_numpy(x.copy()) for x in xs], avg)
        results.append((lrs, [p.detach().numpy().copy() for p in avg.parameters()]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=0)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_averaging_is_one_fused_call(monkeypatch):
    calls = []

    def counting(*args):
        calls.append(len(args[0]))
        return _average(*args)

    monkeypatch.setattr(swa_utils, "_average", counting)
    model = nn.Sequential(*[nn.Linear(3, 3) for _ in range(50)])
    for kw in ({}, {"multi_avg_fn": swa_utils.get_ema_multi_avg_fn()},
               {"multi_avg_fn": swa_utils.get_swa_multi_avg_fn()}):
        calls.clear()
        avg = swa_utils.AveragedModel(model, **kw)
        avg.update_parameters(model)   # the first call copies
        avg.update_parameters(model)
        assert calls == [100]


def test_first_update_copies_and_buffers_follow():
    model = nn.Linear(3, 2)
    avg = swa_utils.AveragedModel(model)
    assert all(a is not p for a, p in zip(avg.parameters(), model.parameters()))
    with fastoptim.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    avg.update_parameters(model)
    for a, p in zip(avg.module.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), p.detach().numpy())
    assert int(avg.n_averaged.item()) == 1 and avg.n_averaged.dtype is fastoptim.int64


def test_errors_equal_torch():
    t = _torch()
    for lib in (swa_utils, t.optim.swa_utils):
        with pytest.raises(ValueError) as err:
            lib.get_ema_multi_avg_fn(1.5)
        with pytest.raises(ValueError) as err2:
            lib.get_ema_avg_fn(-0.1)
        if lib is swa_utils:
            fo = (str(err.value), str(err2.value))
    assert fo == (str(err.value), str(err2.value))
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        swa_utils.AveragedModel(nn.Linear(2, 2), avg_fn=swa_utils.get_swa_avg_fn(),
                                multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    fo_p = fastoptim.tensor(np.ones(2), requires_grad=True)
    t_p = t.ones(2, requires_grad=True)
    for kw in ({"swa_lr": 0.1, "anneal_strategy": "exp"}, {"swa_lr": 0.1, "anneal_epochs": -1},
               {"swa_lr": 0.1, "anneal_epochs": 2.5}, {"swa_lr": [0.1, 0.2]}):
        with pytest.raises(ValueError) as fo_err:
            swa_utils.SWALR(fastoptim.optim.SGD([fo_p], lr=0.1), **kw)
        with pytest.raises(ValueError) as t_err:
            t.optim.swa_utils.SWALR(t.optim.SGD([t_p], lr=0.1), **kw)
        assert str(fo_err.value) == str(t_err.value)


def test_swalr_state_dict_round_trip():
    p = fastoptim.tensor(np.ones(2), requires_grad=True)
    opt = fastoptim.optim.SGD([p], lr=0.1)
    s = swa_utils.SWALR(opt, swa_lr=0.01, anneal_epochs=5)
    sd = s.state_dict()
    assert "anneal_func" not in sd and sd["_anneal_strategy"] == "cos"
    s2 = swa_utils.SWALR(fastoptim.optim.SGD([p], lr=0.1), swa_lr=0.5, anneal_strategy="linear")
    s2.load_state_dict(copy.deepcopy(sd))
    assert s2.anneal_func is swa_utils.SWALR._cosine_anneal


def test_update_bn_without_batch_norm_is_a_no_op():
    def loader():
        raise AssertionError("the loader must not be read")
        yield  # pragma: no cover

    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    before = [p.detach().numpy().copy() for p in model.parameters()]
    model.eval()
    swa_utils.update_bn(loader(), model)
    assert model.training is False
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.detach().numpy())


def test_update_bn_runs_a_batch_norm_like_module():
    class FakeBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.running_mean = 5.0
            self.momentum = 0.1
            self.seen = []

        def reset_running_stats(self):
            self.running_mean = 0.0

        def forward(self, x):
            self.seen.append((self.momentum, self.training))
            return x

    bn = FakeBN()
    model = nn.Sequential(bn)
    model.eval()
    swa_utils.update_bn([(fastoptim.ones(1), 0), (fastoptim.ones(1), 1)], model)
    assert bn.running_mean == 0.0 and bn.seen == [(None, True), (None, True)]
    assert bn.momentum == 0.1 and model.training is False


def test_param_and_buffer_collection_equals_module_traversal():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 2))
    model.register_buffer("stat", fastoptim.zeros(2))
    model[3].register_buffer("count", fastoptim.tensor(0))
    assert [id(p) for p in swa_utils._params(model)] == [id(p) for p in model.parameters()]
    assert [id(b) for b in swa_utils._buffers(model)] == [id(b) for b in model.buffers()]
    assert len(swa_utils._params(model)) == 4   # the shared layer once
