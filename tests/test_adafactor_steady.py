"""Adafactor's steady step (``_adafactor.group_steps``): taken when it should be, and a change
between steps is always seen.

Why: the class's steady step reads every group's params, grads and state at C level and keeps,
between steps, the byte ranges of the last call it proved overlap-free (a call over the same
ranges is not proven again).  A change it missed would step stale or aliased memory -- a silent
wrong answer.  Each test makes one kind of change between steady steps and holds the run
against the same run with the steady step declined (the general path: torch's ``_init_group``
and the functional's checked call), bit for bit, or, for a change the general path refuses,
checks that both raise the same error and write nothing.
"""

import copy

import numpy as np
import pytest

import fastoptim
from fastoptim._C import _adafactor
from fastoptim.optim import Adafactor

SHAPES = [(4, 6), (3, 2, 5), (7,), (), (1, 9), (6, 1)]


def tensor(values, dtype=np.float32):
    return fastoptim.from_numpy(np.array(values, dtype=dtype, copy=True))


def setup(kwargs=None, groups=1, dtype=np.float32):
    rng = np.random.default_rng(0)
    ps = [fastoptim.nn.Parameter(tensor(rng.standard_normal(s), dtype)) for s in SHAPES]
    for p in ps:
        p.grad = tensor(rng.standard_normal(tuple(p.shape)), dtype)
    if groups == 1:
        spec = ps
    else:
        spec = [{"params": ps[:3]}, {"params": ps[3:], "lr": 0.05, "eps": (1e-4, 1e-2),
                                     "maximize": True, "weight_decay": 0.1}]
    return Adafactor(spec, **(kwargs or {})), ps


def snapshot(opt):
    ps = [p for g in opt.param_groups for p in g["params"]]
    state = {i: {k: np.array(v._np, copy=True) for k, v in opt.state[p].items()}
             for i, p in enumerate(ps) if p in opt.state}
    return [np.array(p._np, copy=True) for p in ps], state


def run(change, monkeypatch, steady, kwargs=None, groups=1, dtype=np.float32):
    """Params and state after 2 steps, ``change(opt, ps)``, 2 steps; and how many steps the
    steady path took after the change."""
    if not steady:
        monkeypatch.setattr(_adafactor, "group_steps", lambda *a: False)
    opt, ps = setup(kwargs, groups, dtype)
    for _ in range(2):
        opt.step()
    change(opt, ps)
    before = _adafactor._steady_steps()
    for _ in range(2):
        opt.step()
    taken = _adafactor._steady_steps() - before
    monkeypatch.undo()
    return snapshot(opt), taken


def assert_same(a, b):
    (pa, sa), (pb, sb) = a, b
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for k in sa[i]:
            assert np.array_equal(sa[i][k], sb[i][k]), (i, k)


def _new_grads(opt, ps):
    rng = np.random.default_rng(5)
    for p in ps:
        p.grad = tensor(rng.standard_normal(tuple(p.shape)), p._np.dtype)


def _grads_in_place(opt, ps):
    for p in ps:
        p.grad._np[...] *= -0.5


def _grad_none(opt, ps):
    ps[1].grad = None
    ps[3].grad = None


def _param_rebound(opt, ps):
    ps[0].data = tensor(np.full(SHAPES[0], 0.25))


def _param_replaced(opt, ps):
    q = fastoptim.nn.Parameter(tensor(np.ones(SHAPES[2])))
    q.grad = tensor(np.full(SHAPES[2], 0.5))
    opt.param_groups[0]["params"][2] = q
    opt.state[q] = copy.deepcopy(opt.state[ps[2]])


def _state_replaced(opt, ps):
    st = opt.state[ps[0]]
    st["row_var"] = tensor(st["row_var"]._np * 3.0)
    st["step"] = tensor(np.float32(7.0))
    opt.state[ps[2]]["variance"] = tensor(opt.state[ps[2]]["variance"]._np + 1.0)


def _state_edited_in_place(opt, ps):
    opt.state[ps[1]]["col_var"]._np[...] = 2.0
    opt.state[ps[3]]["step"]._np[...] = 40.0


def _state_loaded(opt, ps):
    sd = copy.deepcopy(opt.state_dict())
    for st in sd["state"].values():
        st["step"] = tensor(np.float32(10.0))
        for k in ("row_var", "col_var", "variance"):
            if k in st:
                st[k] = tensor(st[k]._np * 0.5)
    opt.load_state_dict(sd)


def _settings_changed(opt, ps):
    g = opt.param_groups[0]
    g["lr"], g["weight_decay"], g["d"], g["beta2_decay"] = 0.3, 0.2, 1.5, -0.5
    g["eps"], g["maximize"] = (1e-5, 1e-2), True


def _eps1_back_to_none(opt, ps):
    for g in opt.param_groups:
        g["eps"] = (None, 1e-3)


def _group_added(opt, ps):
    q = fastoptim.nn.Parameter(tensor(np.ones((3, 3))))
    q.grad = tensor(np.full((3, 3), 0.5))
    opt.add_param_group({"params": [q], "lr": 0.02})


def _tensor_lr(opt, ps):
    opt.param_groups[0]["lr"] = fastoptim.tensor([0.02])


def _int_settings(opt, ps):
    opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"] = 1, 0


CHANGES = [_new_grads, _grads_in_place, _grad_none, _param_rebound, _param_replaced,
           _state_replaced, _state_edited_in_place, _state_loaded, _settings_changed,
           _eps1_back_to_none, _group_added, _tensor_lr, _int_settings]
# the changes after which a steady step must still be taken (the others need the general path
# at least once: new state to make, a Tensor lr)
STEADY_AFTER = {_new_grads, _grads_in_place, _grad_none, _param_rebound, _param_replaced,
                _state_replaced, _state_edited_in_place, _state_loaded, _settings_changed,
                _eps1_back_to_none, _int_settings}


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__[1:])
def test_a_change_between_steady_steps_is_seen(change, groups, monkeypatch):
    got, taken = run(change, monkeypatch, True, groups=groups)
    want, none = run(change, monkeypatch, False, groups=groups)
    assert none == 0
    assert_same(got, want)
    if change in STEADY_AFTER:
        assert taken == 2
    elif change is _group_added:
        assert taken == 1           # the new param's first step makes its state, then steady
    else:
        assert taken == 0


def test_float64_and_mixed_dtypes(monkeypatch):
    for dtype in (np.float64,):
        got, taken = run(_new_grads, monkeypatch, True, dtype=dtype)
        want, _ = run(_new_grads, monkeypatch, False, dtype=dtype)
        assert taken == 2
        assert_same(got, want)

    def mixed(steady):
        if not steady:
            monkeypatch.setattr(_adafactor, "group_steps", lambda *a: False)
        rng = np.random.default_rng(1)
        ps = [fastoptim.nn.Parameter(tensor(rng.standard_normal(s), dt))
              for s, dt in (((5, 4), np.float64), ((5, 4), np.float32), ((3,), np.float64))]
        opt = Adafactor(ps)     # eps1: float64's machine epsilon (the first param's dtype)
        for _ in range(3):
            for p in ps:
                p.grad = fastoptim.from_numpy(rng.standard_normal(tuple(p.shape))
                                              .astype(p._np.dtype))
            opt.step()
        monkeypatch.undo()
        return snapshot(opt)

    assert_same(mixed(True), mixed(False))


def _refused_changes():
    def dtype_change(opt, ps):         # state stays float32: the general path refuses it
        ps[0].data = tensor(ps[0]._np, np.float64)
        ps[0].grad = tensor(ps[0].grad._np, np.float64)

    def grad_is_param(opt, ps):        # an overlap, after steps proven overlap-free
        ps[1].grad = ps[1].detach()

    def state_aliases_param(opt, ps):
        opt.state[ps[2]]["variance"] = ps[2].detach()

    def bad_state_shape(opt, ps):
        opt.state[ps[0]]["row_var"] = tensor(np.zeros((4, 6)))

    def state_missing_key(opt, ps):
        del opt.state[ps[2]]["variance"]

    return [(dtype_change, TypeError, "dtype"), (grad_is_param, ValueError, "overlap"),
            (state_aliases_param, ValueError, "overlap"),
            (bad_state_shape, ValueError, "row_vars"),
            (state_missing_key, TypeError, "variances")]


@pytest.mark.parametrize("change,err,msg", _refused_changes(), ids=lambda x: getattr(
    x, "__name__", None))
def test_a_refused_change_raises_as_the_general_path_and_writes_nothing(change, err, msg,
                                                                        monkeypatch):
    outcomes = []
    for steady in (True, False):
        if not steady:
            monkeypatch.setattr(_adafactor, "group_steps", lambda *a: False)
        opt, ps = setup()
        for _ in range(2):
            opt.step()
        change(opt, ps)
        before = snapshot(opt)
        with pytest.raises(err, match=msg) as e:
            opt.step()
        assert_same(snapshot(opt), before)
        outcomes.append((type(e.value), str(e.value)))
        monkeypatch.undo()
    assert outcomes[0] == outcomes[1]


def test_the_steady_step_is_taken_and_remembers_its_overlap_proof():
    opt, ps = setup()
    opt.step()                          # the first step makes the state: the general path
    n = _adafactor._steady_steps()
    opt.step()
    assert _adafactor._steady_steps() == n + 1
    tensors, spans = opt._cache._info()
    assert tensors == len(ps)
    # param, grad and step, then row_var and col_var (2+ dims) or variance
    assert spans == sum(5 if len(s) >= 2 else 4 for s in SHAPES)
    opt.step()
    assert _adafactor._steady_steps() == n + 2


def test_functional_cache_keeps_its_work_buffer_and_results_match_a_fresh_call():
    rng = np.random.default_rng(4)
    shapes = [(8, 3), (5,)]
    a = [rng.standard_normal(s) for s in shapes]
    b = copy.deepcopy(a)
    st_a = [[np.zeros((8, 1)), None], [np.zeros((1, 3)), None], [None, np.zeros(5)],
            [np.zeros((), np.float32), np.zeros((), np.float32)]]
    st_b = copy.deepcopy(st_a)
    kw = dict(lr=0.01, beta2_decay=-0.8, eps1=1e-3, eps2=1e-3, d=1.0, weight_decay=0.0,
              maximize=False)
    cache = _adafactor.StepCache()
    works = set()
    for _ in range(3):
        g = [rng.standard_normal(s) for s in shapes]
        works.add(id(_adafactor.step(a, g, *st_a, cache=cache, **kw)))
        _adafactor.step(b, g, *st_b, **kw)
    assert len(works) == 1 and cache.work is not None
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
