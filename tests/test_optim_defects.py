"""Regressions for the defects a property-based run of the public functionals found (issue 9):
each test is one defect, checked against what torch 2.13 does, and against our own rule where
we are stricter than torch (nothing written when a call fails).
"""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastoptim
from fastoptim import optim
from fastoptim.optim import functional as F

_ADAM = {"amsgrad": False, "beta1": 0.9, "beta2": 0.99, "lr": 0.1, "weight_decay": 0.0,
         "eps": 1e-8, "maximize": False}
_SGD = {"weight_decay": 0.0, "momentum": 0.0, "lr": 0.1, "dampening": 0.0, "nesterov": False,
        "maximize": False}


def _z(shape=3):
    return np.zeros(shape, np.float32)


def test_non_list_state_steps_raises_and_never_crashes():
    # A non-list state_steps was converted inside the `try` whose `finally` freed a work area
    # not yet set up: `free(): invalid pointer` (for None, or an ndarray).
    code = textwrap.dedent("""
        import numpy as np
        from fastoptim.optim import functional as F
        z = lambda: np.zeros(3, np.float32)
        for _ in range(500):
            for bad in (None, np.zeros(1, np.float32)):
                calls = (
                    lambda: F.adagrad([z()], [z()], [z()], bad, lr=0.1, weight_decay=0.0,
                                      lr_decay=0.0, eps=1e-10, maximize=False),
                    lambda: F.adam([z()], [z()], [z()], [z()], None, bad, amsgrad=False,
                                   beta1=0.9, beta2=0.99, lr=0.1, weight_decay=0.0, eps=1e-8,
                                   maximize=False),
                    lambda: F.rmsprop([z()], [z()], [z()], None, None, bad, lr=0.1, alpha=0.9,
                                      eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False),
                    lambda: F.adadelta([z()], [z()], [z()], [z()], bad, lr=0.1, rho=0.9,
                                       eps=1e-6, weight_decay=0.0, maximize=False),
                )
                for call in calls:
                    try:
                        call()
                    except TypeError as e:
                        assert "state_steps must be a list" in str(e), e
                    else:
                        raise AssertionError("no error")
        print("ok")
    """)
    root = pathlib.Path(fastoptim.__file__).resolve().parents[1]   # import the same fastoptim
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=root)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("cls", ["Adam", "SGD", "RMSprop", "Adagrad", "Adadelta"])
def test_load_state_dict_refuses_a_per_param_state_that_is_not_a_dict(cls):
    # It was accepted, and the next step() read it as a dict (a heap-buffer-overflow read).
    p = fastoptim.nn.Parameter(fastoptim.ones(3))
    opt = getattr(optim, cls)([p], lr=0.1)
    sd = opt.state_dict()
    before = dict(opt.state)
    sd["state"] = {0: object()}
    with pytest.raises(ValueError, match=f"state of type object for parameter 0 of parameter "
                                         f"group 0 .*{cls} expects a dict"):
        opt.load_state_dict(sd)
    assert dict(opt.state) == before


def test_collect_refuses_a_non_dict_state_put_there_by_hand():
    p = fastoptim.nn.Parameter(fastoptim.ones(3))
    p.grad = fastoptim.ones(3)
    opt = optim.Adam([p])
    opt.state[p] = [1, 2, 3]
    with pytest.raises(TypeError, match="state of parameter 0 of its group must be a dict, "
                                        "got list"):
        opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), np.ones(3, np.float32))


def test_strided_param_aliasing_its_state_raises_overlap():
    # p = base[:, ::2] and exp_avg = p[...] went through contiguous copies, which never
    # overlap: p ended up holding exp_avg's values.  The contiguous case raised already.
    base = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    before = base.copy()
    p = base[:, ::2]
    with pytest.raises(ValueError, match=r"adam: params\[0\] and exp_avgs\[0\] overlap in memory"):
        F.adam([p], [np.ones((3, 2), np.float32)], [p[...]], [np.zeros((3, 2), np.float32)],
               None, [_z(1)], **_ADAM)
    np.testing.assert_array_equal(base, before)
    # a strided state sharing memory with another param's grad
    q = np.ones(6, np.float32)
    with pytest.raises(ValueError, match=r"grads\[0\] and momentum_buffers\[1\] overlap"):
        F.sgd([np.ones(3, np.float32), np.ones(3, np.float32)], [q[:3], np.ones(3, np.float32)],
              [np.zeros(3, np.float32), q[::2]], **dict(_SGD, momentum=0.9))
    # a strided array that only shares its base with an unrelated array is fine
    base = np.zeros((2, 4), np.float32)
    F.sgd([base[:, ::2]], [np.ones((2, 2), np.float32)], [None], **_SGD)
    np.testing.assert_allclose(base[:, ::2], -0.1)
    np.testing.assert_array_equal(base[:, 1::2], 0.0)


def test_a_bad_entry_after_a_repeated_param_writes_nothing_and_names_its_index():
    # F.sgd([p, p], [g3, g_wrong]) stepped p once, then named grads[0].
    p = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"sgd: grads\[1\] has shape \(4,\); expected \(3,\) "
                                         r"\(the shape of params\[1\]\)"):
        F.sgd([p, p], [np.ones(3, np.float32), np.ones(4, np.float32)], [None, None], **_SGD)
    np.testing.assert_array_equal(p, np.ones(3, np.float32))


def test_a_repeated_param_is_stepped_once_per_occurrence_as_torch_does():
    torch = pytest.importorskip("torch")
    p, q = np.ones(3, np.float32), np.full(3, 2.0, np.float32)
    m, v = [_z(), _z(), _z()], [_z(), _z(), _z()]
    st = [_z(1), _z(1), _z(1)]
    g = [np.full(3, 0.5, np.float32), np.ones(3, np.float32), np.full(3, -1.0, np.float32)]
    # entries 0 and 2 are one param with one state, as the class collects it
    F.adam([p, q, p], g, [m[0], m[1], m[0]], [v[0], v[1], v[0]], None, [st[0], st[1], st[0]],
           **_ADAM)
    tp, tq = torch.ones(3), torch.full((3,), 2.0)
    tm, tv = [torch.zeros(3), torch.zeros(3)], [torch.zeros(3), torch.zeros(3)]
    ts = [torch.tensor(0.0), torch.tensor(0.0)]
    from torch.optim.adam import adam
    adam([tp, tq, tp], [torch.from_numpy(x) for x in g], [tm[0], tm[1], tm[0]],
         [tv[0], tv[1], tv[0]], [], [ts[0], ts[1], ts[0]], foreach=False, **_ADAM)
    np.testing.assert_allclose(p, tp.numpy(), rtol=1.3e-6, atol=1e-5)
    np.testing.assert_allclose(q, tq.numpy(), rtol=1.3e-6, atol=1e-5)
    assert float(st[0][0]) == 2.0 and float(st[1][0]) == 1.0


@pytest.mark.parametrize("cls", ["Adam", "AdamW", "RMSprop", "Adadelta", "SGD"])
def test_a_failing_first_step_creates_no_state(cls):
    # Adam/AdamW/RMSprop/Adadelta installed the new state of every param before the kernel
    # refused one (here: a read-only param).
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    p = fastoptim.nn.Parameter(fastoptim.ones(3))
    q = fastoptim.nn.Parameter(fastoptim.from_numpy(ro))
    p.grad, q.grad = fastoptim.ones(3), fastoptim.ones(3)
    kw = {"momentum": 0.9} if cls == "SGD" else {}
    opt = getattr(optim, cls)([p, q], lr=0.1, **kw)
    with pytest.raises(ValueError, match=r"params\[1\] is read-only"):
        opt.step()
    assert len(opt.state) == 0
    np.testing.assert_array_equal(p.detach().numpy(), np.ones(3, np.float32))
    q.requires_grad_(False)
    opt.param_groups[0]["params"] = [p]
    opt.step()
    assert set(opt.state) == {p}


def test_a_read_only_strided_param_fails_before_anything_is_written():
    # It was copied (the copy is writeable), stepped with every other param and its state,
    # and only the write-back failed.
    ro = np.ones((3, 4), np.float32)[:, ::2]
    ro.flags.writeable = False
    q, s = np.ones(3, np.float32), _z(1)
    with pytest.raises(ValueError, match=r"adam: params\[1\] is read-only"):
        F.adam([q, ro], [np.ones(3, np.float32), np.ones((3, 2), np.float32)],
               [_z(), _z((3, 2))], [_z(), _z((3, 2))], None, [s, _z(1)], **_ADAM)
    np.testing.assert_array_equal(q, np.ones(3, np.float32))
    assert float(s[0]) == 0.0


@pytest.mark.parametrize("case", ["adam-step-minus-1", "adam-beta1-1", "adagrad-lr-decay"])
def test_scalars_that_torch_divides_by_zero_raise_zerodivisionerror(case):
    # The kernels wrote NaNs where torch's Python-float scalars raise (torch 2.13: "float
    # division by zero"); we raise before writing anything.
    p, s = np.ones(3, np.float32), _z(1)
    with pytest.raises(ZeroDivisionError, match="float division by zero"):
        if case == "adam-step-minus-1":
            s[0] = -1.0
            F.adam([p], [np.ones(3, np.float32)], [_z()], [_z()], None, [s], **_ADAM)
        elif case == "adam-beta1-1":
            F.adam([p], [np.ones(3, np.float32)], [_z()], [_z()], None, [s],
                   **dict(_ADAM, beta1=1.0))
        else:
            s[0] = 1.0    # the second step: 1 + (2 - 1) * -1 == 0
            F.adagrad([p], [np.ones(3, np.float32)], [_z()], [s], lr=0.1, weight_decay=0.0,
                      lr_decay=-1.0, eps=1e-10, maximize=False)
    np.testing.assert_array_equal(p, np.ones(3, np.float32))
    assert float(s[0]) in (-1.0, 0.0, 1.0)    # not incremented
    # in the class, the steady-state shortcut declines and the general path raises the same
    q = fastoptim.nn.Parameter(fastoptim.ones(3))
    q.grad = fastoptim.ones(3)
    opt = optim.Adam([q], lr=0.1)
    opt.step()
    opt.state[q]["step"].numpy()[...] = -1.0
    with pytest.raises(ZeroDivisionError, match="float division by zero"):
        opt.step()
    assert float(opt.state[q]["step"].numpy()) == -1.0
