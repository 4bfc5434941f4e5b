"""Devices, default dtype/device and seeding, as torch 2.13 answers them on a CPU-only machine.

Why: device-agnostic scripts (``device = "cuda" if torch.cuda.is_available() else "cpu"``,
``x.to(device)``, ``zeros(3, device=device)``) must take their CPU branch unchanged; a device
fastoptim cannot honour must raise, naming it, never be ignored; and unseeded runs must differ
across processes, as torch's do, while manual_seed makes them repeat.
"""
import pickle
import subprocess
import sys

import pytest

import fastoptim as fo

# a `python -c` child must not import the source tree of the repository it starts in (conftest)
_PY = [sys.executable] + (["-P"] if sys.version_info >= (3, 11) else [])


def _torch():
    return pytest.importorskip("torch")


def test_device_objects_match_torch():
    torch = _torch()
    for spec in [("cpu",), ("cpu:0",), ("cpu", 0), ("cuda",), ("cuda:1",), ("meta",)]:
        f, t = fo.device(*spec), torch.device(*spec)
        assert (repr(f), str(f), f.type, f.index) == (repr(t), str(t), t.type, t.index)
    assert fo.device("cpu") == fo.device("cpu") and fo.device("cpu") != fo.device("cpu:0")
    assert (fo.device("cpu") == "cpu") == (torch.device("cpu") == "cpu")
    assert hash(fo.device("cpu")) == hash(fo.device(fo.device("cpu")))
    assert pickle.loads(pickle.dumps(fo.device("cpu:0"))) == fo.device("cpu:0")


@pytest.mark.parametrize("bad", ["gpu", "cpu:x"])
def test_bad_device_strings_raise_like_torch(bad):
    torch = _torch()
    with pytest.raises(RuntimeError) as t:
        torch.device(bad)
    with pytest.raises(RuntimeError) as f:
        fo.device(bad)
    assert str(f.value) == str(t.value)


def test_negative_index_message():
    with pytest.raises(RuntimeError, match="^Device index must not be negative$"):
        fo.device("cpu", -1)


def test_tensor_device_and_moves():
    t = fo.ones(3)
    assert t.device == fo.device("cpu") and repr(t.device) == "device(type='cpu')"
    assert not t.is_cuda
    for dev in ["cpu", "cpu:0", fo.device("cpu"), None]:
        assert t.to(dev) is t
    assert t.cpu() is t
    assert t.to("cpu", fo.float64).dtype == fo.float64
    assert t.to(device="cpu", dtype=fo.float64).dtype == fo.float64
    assert t.to(fo.device("cpu"), non_blocking=True) is t
    c = t.to("cpu", copy=True)
    assert c is not t and c.data_ptr() != t.data_ptr()
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        t.to(bogus=1)


@pytest.mark.parametrize("dev", ["cuda", "cuda:0", "mps", 0])
def test_accelerators_are_refused_by_name(dev):
    t = fo.ones(2)
    calls = [lambda: t.to(dev), lambda: fo.zeros(2, device=dev), lambda: fo.ones(2, device=dev),
             lambda: fo.empty(2, device=dev), lambda: fo.full((2,), 1.0, device=dev),
             lambda: fo.randn(2, device=dev), lambda: fo.rand(2, device=dev),
             lambda: fo.arange(3, device=dev), lambda: fo.linspace(0, 1, 3, device=dev),
             lambda: fo.tensor([1.0], device=dev), lambda: fo.zeros_like(t, device=dev),
             lambda: fo.ones_like(t, device=dev), lambda: fo.empty_like(t, device=dev),
             lambda: fo.full_like(t, 2.0, device=dev), lambda: fo.randn_like(t, device=dev),
             lambda: fo.rand_like(t, device=dev), lambda: fo.set_default_device(dev)]
    for call in calls:
        with pytest.raises(RuntimeError, match="fastoptim runs on the CPU only; device .* is not "
                                               "supported"):
            call()
    with pytest.raises(RuntimeError, match=r"Tensor.cuda\(\) is not supported"):
        t.cuda()


def test_creation_accepts_the_cpu_everywhere():
    t = fo.ones(2)
    for dev in ["cpu", fo.device("cpu")]:
        assert fo.zeros(2, device=dev).device == fo.device("cpu")
        assert fo.randn(3, device=dev).shape == (3,)
        assert fo.linspace(0, 1, 3, device=dev).shape == (3,)
        assert fo.zeros_like(t, device=dev).shape == (2,)
        assert fo.arange(3, device=dev).tolist() == [0, 1, 2]


def test_like_functions_reject_unknown_keywords():
    with pytest.raises(TypeError):
        fo.zeros_like(fo.ones(2), bogus=True)


def test_cuda_module():
    torch = _torch()
    assert fo.cuda.is_available() is False is torch.cuda.is_available()
    assert fo.cuda.device_count() == 0 == torch.cuda.device_count()
    fo.cuda.manual_seed(1)
    fo.cuda.manual_seed_all(1)


def test_default_device_and_dtype():
    assert fo.get_default_device() == fo.device("cpu")
    fo.set_default_device("cpu")
    fo.set_default_device(None)
    assert fo.get_default_dtype() is fo.float32
    try:
        fo.set_default_dtype(fo.float64)
        assert fo.tensor([1.5]).dtype is fo.float64 and fo.zeros(2).dtype is fo.float64
        assert fo.get_default_dtype() is fo.float64
    finally:
        fo.set_default_dtype(fo.float32)
    assert fo.tensor([1.5]).dtype is fo.float32


def test_default_dtype_error_is_torchs():
    torch = _torch()
    with pytest.raises(TypeError) as t:
        torch.set_default_dtype(torch.int64)
    with pytest.raises(TypeError) as f:
        fo.set_default_dtype(fo.int64)
    assert str(f.value) == str(t.value)


def test_manual_seed_repeats_and_ranges():
    fo.manual_seed(7)
    a = fo.randn(5)
    fo.manual_seed(7)
    assert fo.randn(5).tolist() == a.tolist() and fo.initial_seed() == 7
    fo.manual_seed(-1)
    assert fo.initial_seed() == 2**64 - 1
    for bad in (2**64, -2**63 - 1):
        with pytest.raises(ValueError, match="^Overflow when unpacking long long$"):
            fo.manual_seed(bad)
    s = fo.seed()
    assert 0 <= s < 2**64 and fo.initial_seed() == s


def test_manual_seed_ranges_match_torch():
    torch = _torch()
    torch.manual_seed(-1)
    fo.manual_seed(-1)
    assert fo.initial_seed() == torch.initial_seed()
    with pytest.raises(ValueError) as t:
        torch.manual_seed(2**64)
    with pytest.raises(ValueError) as f:
        fo.manual_seed(2**64)
    assert str(f.value) == str(t.value)


def test_unseeded_processes_differ():
    code = "import fastoptim as fo; print(fo.initial_seed(), fo.randn(3).tolist())"
    outs = {subprocess.run([*_PY, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    assert len(outs) == 2
