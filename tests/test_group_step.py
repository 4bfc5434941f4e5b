"""The optimizers' steady-state shortcut (``_optim.group_step``) against their general path.

Why: from the second step on, each class's ``step`` hands a param group and its state straight to
C, skipping ``_init_group``'s lists and the functional layer. The shortcut must compute exactly
what the general path computes (same kernel, so bit for bit), must really be taken, and must
step aside, having written nothing, whenever the general path has something to do: state to
create, strided or odd arrays, a repeated param, a Tensor lr.
"""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_optimizers import CASES, IDS

import fastoptim
from fastoptim import optim
from fastoptim._C import _optim
from fastoptim.optim import _step
from fastoptim.optim._descriptions import BY_NAME

SMALL = [(4, 3), (5,), (), (0,), (33,)]
# Each half (one param group each) holds more than the kernels' threading threshold (524288
# elements) in more than 64 tensors, so at 2 threads the steady-state step runs in team mode
# (optim_team.c).
BIG = [(4, 3), (800, 700), (), *[(7,)] * 64, (0,), (530001,), *[(2, 3)] * 64, (33,)]


def _params(dtype, seed=0, shapes=SMALL):
    rng = np.random.default_rng(seed)
    return [fastoptim.from_numpy(rng.standard_normal(s).astype(dtype)).requires_grad_()
            for s in shapes]


def _set_grads(params, step, skip=None):
    rng = np.random.default_rng(100 + step)
    for i, p in enumerate(params):
        g = rng.standard_normal(p.shape).astype(p.detach().numpy().dtype)
        p.grad = None if i == skip else fastoptim.from_numpy(g)


def _trajectory(name, kwargs, dtype, monkeypatch, shortcut, shapes=SMALL):
    """Params after 6 steps (a param without grad at step 3), and the shortcut's outcomes."""
    real = _optim.group_step
    outcomes = []

    def spy(*args):
        outcomes.append(real(*args) if shortcut else False)
        return outcomes[-1]

    monkeypatch.setattr(_step, "group_step", spy)   # the shortcut every class's step calls
    params = _params(dtype, shapes=shapes)
    half = len(params) // 2
    opt = getattr(optim, name)(
        [{"params": params[:half]}, {"params": params[half:], "lr": 0.03}], **kwargs)
    for step in range(6):
        _set_grads(params, step, skip=1 if step == 3 else None)
        opt.step()
    monkeypatch.undo()
    return [p.detach().numpy().copy() for p in params], opt.state_dict(), outcomes


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_shortcut_is_taken_and_matches_the_general_path(name, kwargs, dtype, monkeypatch):
    fast, fast_sd, outcomes = _trajectory(name, kwargs, dtype, monkeypatch, True)
    slow, slow_sd, never = _trajectory(name, kwargs, dtype, monkeypatch, False)
    assert not any(never)
    # The steady-state steps all take the shortcut (two groups with different lrs: 2 calls each).
    assert all(outcomes[-8:]), outcomes
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
    assert fast_sd["param_groups"] == slow_sd["param_groups"]
    assert fast_sd["state"].keys() == slow_sd["state"].keys()
    for i in fast_sd["state"]:
        for key, value in fast_sd["state"][i].items():
            np.testing.assert_array_equal(value.numpy(), slow_sd["state"][i][key].numpy())


@pytest.fixture
def threads():
    old = _optim._get_num_threads()
    yield _optim._set_num_threads
    _optim._set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_team_mode_matches_one_thread_and_the_general_path(name, kwargs, dtype, monkeypatch,
                                                           threads):
    # At 2 threads a big group's step opens its parallel region before collecting the group and
    # runs the kernels in team mode; the numbers (and the step counts) must not change.
    threads(1)
    one, one_sd, _ = _trajectory(name, kwargs, dtype, monkeypatch, True, BIG)
    slow, slow_sd, _ = _trajectory(name, kwargs, dtype, monkeypatch, False, BIG)
    threads(2)
    before = _optim._team_step_count()
    team, team_sd, outcomes = _trajectory(name, kwargs, dtype, monkeypatch, True, BIG)
    if _optim._get_num_threads() > 1:       # (a serial build has no team mode)
        assert _optim._team_step_count() - before >= 8
    assert all(outcomes[-4:]), outcomes
    for sd in (one_sd, slow_sd):
        assert team_sd["state"].keys() == sd["state"].keys()
        for i in team_sd["state"]:
            for key, value in team_sd["state"][i].items():
                np.testing.assert_array_equal(value.numpy(), sd["state"][i][key].numpy())
    for a, b, c in zip(team, one, slow):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def _big_adam_setup(n=70, numel=8000):
    ps, state = [], {}
    for i in range(n):
        p = fastoptim.from_numpy(np.full(numel, float(i), np.float32)).requires_grad_()
        p.grad = fastoptim.from_numpy(np.ones(numel, np.float32))
        state[p] = {"step": fastoptim.from_numpy(np.array(3.0, np.float32)),
                    "exp_avg": fastoptim.from_numpy(np.full(numel, 0.5, np.float32)),
                    "exp_avg_sq": fastoptim.from_numpy(np.full(numel, 0.25, np.float32))}
        ps.append(p)
    return ps, state


def _big_arrays(ps, state):
    return [p.detach().numpy().copy() for p in ps] + [
        np.array(v.numpy(), copy=True) for st in state.values() for v in st.values()]


def test_team_mode_declines_without_writing(threads):
    threads(2)
    ps, state = _big_adam_setup()
    del state[ps[-1]]["exp_avg_sq"]           # the last param's state is incomplete
    before = _big_arrays(ps, state)
    assert _adam(ps, state) is False
    for a, b in zip(before, _big_arrays(ps, state)):
        np.testing.assert_array_equal(a, b)


class _Collider:
    """A state key that collides with a param's hash and whose == raises once armed."""

    def __init__(self, p):
        self.h, self.armed = hash(p), False

    def __hash__(self):
        return self.h

    def __eq__(self, other):
        if self.armed:
            raise RuntimeError("collider compared")
        return False


def test_team_mode_raises_what_the_collection_raised_and_writes_nothing(threads):
    threads(2)
    ps, state = _big_adam_setup()
    collider = _Collider(ps[1])
    colliding = {collider: None}
    colliding.update(state)                   # the collider sits in ps[1]'s first probe slot
    collider.armed = True
    before = _big_arrays(ps, state)
    with pytest.raises(RuntimeError, match="collider compared"):
        _adam(ps, colliding)
    for a, b in zip(before, _big_arrays(ps, state)):
        np.testing.assert_array_equal(a, b)
    assert _adam(ps, state) is True           # and the team still works afterwards
    assert float(state[ps[0]]["step"].numpy()) == 4.0


# ---- the shortcut declines, and writes nothing ------------------------------------------------

def _adam_setup():
    p = fastoptim.from_numpy(np.arange(6, dtype=np.float32)).requires_grad_()
    p.grad = fastoptim.from_numpy(np.ones(6, np.float32))
    state = {p: {"step": fastoptim.from_numpy(np.array(3.0, np.float32)),
                 "exp_avg": fastoptim.from_numpy(np.full(6, 0.5, np.float32)),
                 "exp_avg_sq": fastoptim.from_numpy(np.full(6, 0.25, np.float32))}}
    return p, state


def _adam(params, state):
    return _optim.group_step(_step.plan(BY_NAME["adam"]), (0.1, (0.9, 0.999), 1e-8, 0.0, False,
                                                           False, False), params, state)


def _arrays(p, state):
    out = [p.detach().numpy().copy()]
    for st in state.values():
        out += [np.array(getattr(v, "_np", v), copy=True) for v in st.values()]
    return out


def test_shortcut_updates_a_valid_group():
    p, state = _adam_setup()
    before = _arrays(p, state)
    assert _adam([p], state) is True
    assert float(state[p]["step"].numpy()) == 4.0
    assert not np.array_equal(p.detach().numpy(), before[0])


def _strided(p, state):
    big = np.zeros(12, np.float32)
    big[::2] = 0.5
    state[p]["exp_avg"] = fastoptim.from_numpy(big[::2])


def _read_only(a):
    a.setflags(write=False)
    return a


DECLINES = {
    "no state yet": lambda p, state: state.clear(),
    "empty state": lambda p, state: state[p].clear(),
    "missing key": lambda p, state: state[p].pop("exp_avg_sq"),
    "strided state": _strided,
    "wrong dtype": lambda p, state: state[p].__setitem__(
        "exp_avg", fastoptim.from_numpy(np.zeros(6, np.float64))),
    "wrong shape": lambda p, state: state[p].__setitem__(
        "exp_avg", fastoptim.from_numpy(np.zeros(5, np.float32))),
    "state not a tensor": lambda p, state: state[p].__setitem__("exp_avg", [0.0] * 6),
    "numeric step": lambda p, state: state[p].__setitem__("step", 3.0),
    "float64 step": lambda p, state: state[p].__setitem__(
        "step", fastoptim.from_numpy(np.array(3.0))),
    "state shares the param": lambda p, state: state[p].__setitem__("exp_avg", p),
    "read-only state": lambda p, state: state[p].__setitem__(
        "exp_avg", fastoptim.from_numpy(_read_only(np.zeros(6, np.float32)))),
}


@pytest.mark.parametrize("how", list(DECLINES))
def test_shortcut_declines_without_writing(how):
    p, state = _adam_setup()
    DECLINES[how](p, state)
    before = _arrays(p, state)
    assert _adam([p], state) is False
    for a, b in zip(before, _arrays(p, state)):
        np.testing.assert_array_equal(a, b)


def test_shortcut_declines_a_repeated_param_and_the_class_steps_it_twice():
    p, state = _adam_setup()
    before = _arrays(p, state)
    assert _adam([p, p], state) is False
    np.testing.assert_array_equal(p.detach().numpy(), before[0])
    # The general path then steps it twice, as torch's loop does.
    q = fastoptim.from_numpy(np.ones(3, np.float32)).requires_grad_()
    with pytest.warns(UserWarning, match="duplicate parameters"):
        opt = optim.SGD([q, q], lr=0.5)
    for _ in range(2):
        q.grad = fastoptim.from_numpy(np.ones(3, np.float32))
        opt.step()
    np.testing.assert_array_equal(q.detach().numpy(), np.full(3, -1.0, np.float32))


def test_shortcut_declines_non_tensor_params_and_non_dict_state():
    p, state = _adam_setup()
    assert _adam([p.detach().numpy()], state) is False
    assert _adam([p], list(state.items())) is False


def test_params_without_grad_are_skipped():
    p, state = _adam_setup()
    q = fastoptim.from_numpy(np.ones(2, np.float32)).requires_grad_()  # no grad, no state
    assert _adam([q, p, q], state) is True
    np.testing.assert_array_equal(q.detach().numpy(), np.ones(2, np.float32))
    assert float(state[p]["step"].numpy()) == 4.0


def test_tensor_lr_takes_the_general_path():
    p = fastoptim.from_numpy(np.ones(3, np.float32)).requires_grad_()
    opt = optim.Adam([p], lr=fastoptim.tensor(0.1))
    for _ in range(3):
        p.grad = fastoptim.from_numpy(np.ones(3, np.float32))
        opt.step()
    assert float(opt.state[p]["step"].numpy()) == 3.0


def test_length_mismatch_raises_and_never_crashes():
    # Regression: a length error raised before the work area was set up freed a garbage pointer.
    code = textwrap.dedent("""
        import numpy as np
        from fastoptim._C import _optim
        from fastoptim.optim._descriptions import BY_NAME
        from fastoptim.optim._step import plan
        adam, sgd = plan(BY_NAME["adam"]), plan(BY_NAME["sgd"])
        a = np.zeros(3, np.float32)
        for _ in range(2000):
            for call in (
                lambda: _optim.step(adam, (0.1, 0.9, 0.9, 1e-8, 0.0, False, False, False),
                                    [a], [], ([], [], None), []),
                lambda: _optim.step(sgd, (0.1, 0.9, 0.0, 0.0, False, False), [a], [a],
                                    ([a.copy()],), None, [True, False]),
            ):
                try:
                    call()
                except ValueError as e:
                    assert "expected 1 (= len(params))" in str(e), e
                else:
                    raise AssertionError("no error")
        print("ok")
    """)
    root = pathlib.Path(fastoptim.__file__).resolve().parents[1]   # import the same fastoptim
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
