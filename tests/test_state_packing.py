"""Packed optimizer state (``fastoptim.optim._state``: ``_packed_like``, ``_fresh_state``).

Why: new state is allocated per group, each key's tensors back to back in one buffer, so the
kernels stream it faster. Packing must be invisible otherwise: every state tensor has its
param's shape and dtype, its own cache-line-aligned, non-overlapping memory, torch's key order
and initial values, and updating one never touches another.
"""

import numpy as np
import pytest

import fastoptim
from fastoptim import optim
from fastoptim.optim._descriptions import BY_CLASS
from fastoptim.optim._state import _packed_like

SHAPES = [(3, 5), (1,), (), (0,), (17,), (2, 0, 3), (64,)]


def _addr(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fill", [0.0, 0.25, None])
def test_packed_arrays_are_shaped_aligned_disjoint_and_in_order(dtype, fill):
    like = [np.ones(s, dtype) for s in SHAPES]
    out = _packed_like(like, fill)
    assert [a.shape for a in out] == SHAPES
    assert all(a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable for a in out)
    if fill is not None:
        for a in out:
            np.testing.assert_array_equal(a, np.full(a.shape, fill, dtype))
    nonempty = [a for a in out if a.size]
    assert all(_addr(a) % 64 == 0 for a in nonempty)
    spans = [(_addr(a), _addr(a) + a.nbytes) for a in nonempty]
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:]))  # in order, disjoint
    base = nonempty[0].base
    assert base is not None
    assert all(a.base is base for a in nonempty)  # one buffer


def test_packed_like_keeps_types_and_splits_dtypes():
    like = [fastoptim.zeros(3), np.zeros(2, np.float64),
            fastoptim.zeros(4, dtype=fastoptim.float64)]
    out = _packed_like(like, 1.5)
    assert isinstance(out[0], fastoptim.Tensor) and isinstance(out[2], fastoptim.Tensor)
    assert type(out[1]) is np.ndarray
    assert out[0].dtype == fastoptim.float32 and out[2].dtype == fastoptim.float64
    assert out[1].base is out[2].numpy().base  # float64 arrays share a buffer
    np.testing.assert_array_equal(out[2].numpy(), np.full(4, 1.5))


# class -> (its state keys in torch's order, settings under which it keeps all of them): the keys
# come from the descriptions
_ALL_STATE = {
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "Adam": {"amsgrad": True},
    "RMSprop": {"momentum": 0.5, "centered": True},
    "Adagrad": {"initial_accumulator_value": 0.5},
    "Adadelta": {},
}


def _state_keys(cls, kwargs):
    p = fastoptim.zeros(1).requires_grad_()
    group = getattr(optim, cls)([p], **kwargs).param_groups[0]
    required, optional = BY_CLASS[cls].expected_state_keys(group)
    return required or optional    # (SGD's buffer is optional: a None buffer loads)


STATE_KEYS = {cls: (_state_keys(cls, kw), kw) for cls, kw in _ALL_STATE.items()}


@pytest.mark.parametrize("name", list(STATE_KEYS))
def test_first_step_state_is_packed_and_independent(name):
    keys, kwargs = STATE_KEYS[name]
    rng = np.random.default_rng(0)
    params = [fastoptim.from_numpy(rng.standard_normal(s).astype(np.float32)).requires_grad_()
              for s in [(4, 3), (5,), (), (7,)]]
    opt = getattr(optim, name)(params, **kwargs)
    for p in params[:3]:    # the last param has no grad: no state (Adagrad's is eager)
        p.grad = fastoptim.ones_like(p)
    opt.step()
    with_state = params if name == "Adagrad" else params[:3]
    assert list(opt.state) == with_state
    for key in keys:
        arrays = [opt.state[p][key].numpy() for p in with_state]
        want = [() if key == "step" else p.shape for p in with_state]
        assert [a.shape for a in arrays] == want
        assert arrays[0].base is not None
        assert all(a.base is arrays[0].base for a in arrays), key  # packed
        if key != "step":
            assert all(_addr(a) % 64 == 0 for a in arrays)
    for p in with_state:
        assert tuple(opt.state[p]) == keys  # torch's key order
    # Updating one param's state touches nobody else's.
    key = keys[-1]
    before = [opt.state[p][key].numpy().copy() for p in with_state]
    opt.state[with_state[1]][key].numpy()[...] = 123.0
    for i, p in enumerate(with_state):
        if i != 1:
            np.testing.assert_array_equal(opt.state[p][key].numpy(), before[i])


def test_params_gaining_grads_later_get_packed_state_then():
    params = [fastoptim.zeros(4).requires_grad_() for _ in range(4)]
    opt = optim.Adam(params, lr=0.1)
    params[0].grad = fastoptim.ones(4)
    opt.step()
    for p in params:
        p.grad = fastoptim.ones(4)
    opt.step()
    assert float(opt.state[params[0]]["step"]) == 2.0
    assert [float(opt.state[p]["step"]) for p in params[1:]] == [1.0] * 3
    late = [opt.state[p]["exp_avg"].numpy() for p in params[1:]]
    assert late[0].base is not None
    assert all(a.base is late[0].base for a in late)
    assert late[0].base is not opt.state[params[0]]["exp_avg"].numpy().base


def test_large_state_starts_half_a_page_from_its_param():
    # Arrays of >= 4 KiB start half a page past their param, modulo a page, so that stores to
    # one never alias loads of the other in the kernels; smaller ones start on a cache line.
    params = [np.ones(n, np.float32) for n in (1024, 5000, 3, 70000, 1023)]
    out = _packed_like(params, 0.0)
    for p, a in zip(params, out):
        if p.nbytes >= 4096:
            assert (_addr(a) - _addr(p)) % 4096 == 2048
        else:
            assert _addr(a) % 64 == 0
    spans = sorted((_addr(a), _addr(a) + a.nbytes) for a in out)
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:]))


def test_adam_state_of_a_large_param_is_half_a_page_away():
    p = fastoptim.zeros(20000).requires_grad_()
    opt = optim.Adam([p])
    p.grad = fastoptim.ones(20000)
    opt.step()
    for k in ("exp_avg", "exp_avg_sq"):
        assert (_addr(opt.state[p][k].numpy()) - _addr(p.detach().numpy())) % 4096 == 2048
