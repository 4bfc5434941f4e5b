"""Building one timed contender from its description: (regime, optimizer, contender name, mode).

Why it exists: the same contender must be buildable next to the others (in-process timing) or
alone in a fresh process (``isolated.py``), from a description that fits in a JSON line.  Nothing
here imports fastoptim or torch at module level: a builder imports the one library its contender
needs, so a process that times a torch contender never loads fastoptim (nor its OpenMP runtime,
nor the wait policy fastoptim sets at import), and one that times fastoptim never loads torch.

Contender names: ``fastoptim``; ``torch:fused`` / ``torch:foreach`` / ``torch:forloop`` (every
CPU implementation torch has; the report takes the fastest) and ``torch:default`` (regime e's
optimizer-free row); ``numpy`` (the NumPy twin of the kernel); and the yardsticks ``roofline``
(regime a) and ``flat`` (regimes b, c).  In the regimes on torch tensors (``ta`` ... ``te``)
``fastoptim`` is fastoptim's optimizer over torch's parameters, so its process imports torch.
"""

import importlib
from dataclasses import dataclass

import numpy as np
from optimizers import BY_NAME, matrix_shape, torch_variants, twin_step
from timing import Contender


@dataclass(frozen=True)
class Mode:
    a_numel: int        # (a) elements of the one big param
    b_count: int        # (b), (c) number of params ...
    b_numel: int        # ... and elements of each
    f_numel: int        # (f) elements of the param whose step's memory is measured
    warmup: int
    repeats: int
    sample_s: float     # target duration of one timing sample (fast calls are batched)
    slow_repeats: int   # samples of the NumPy twin on large arrays
    settle_s: float     # pause between torch and fastoptim samples when threads > 1 (timing.py)
    rounds: int         # isolated timing: fresh processes per contender (isolated.py) ...
    warm_s: float       # ... each warmed up for >= ``warmup`` calls and >= warm_s seconds


MODES = {
    "full": Mode(16 << 20, 1000, 1024, 16 << 20, 2, 11, 0.025, 3, 0.15, 6, 0.05),
    "quick": Mode(4 << 20, 1000, 1024, 4 << 20, 1, 3, 0.004, 1, 0.15, 3, 0.02),
    "smoke": Mode(1 << 15, 20, 256, 1 << 15, 1, 1, 0.0, 1, 0.0, 1, 0.0),
}

# (ta), (tb), (tc), (te): the sizes of (a), (b), (c) and (e)'s MLP, params being torch tensors
# for both contenders ("fastoptim" is then fastoptim's optimizer over torch's tensors); only the
# step is timed, on grads set once
ON_TORCH = ("ta", "tb", "tc", "te")
TIMED = ("a", "b", "c", "d", "e") + ON_TORCH   # the timed regimes; (f) measures memory
# timed one process per contender by default: every timed regime.  The ones on torch tensors
# too: timed interleaved in one process, each contender's sample started on caches the others
# had filled (tb: four contenders' 12 MB each, over a 32 MiB L3), while (b) timed each alone
ISOLATE_DEFAULT = "a,b,c,d,e,ta,tb,tc,te"
FWDBWD = "fwd+bwd"                  # the optimizer-free task of regime (e)
# regime (d) with an LR scheduler stepping every iteration: row name -> (optimizer, class, kwargs)
SCHEDULED = {
    "sgd+StepLR": ("sgd", "StepLR", {"step_size": 30, "gamma": 0.999}),
    "sgd+OneCycleLR": ("sgd", "OneCycleLR", {"max_lr": 0.01, "total_steps": 10**9}),
}
EMA = "ema"   # regime (b)'s params averaged by AveragedModel(get_ema_multi_avg_fn()), no step
# regime (e)'s MLP as a classifier: CrossEntropyLoss on class indices, Adam's step (issue 13)
CLASSIFIER = "adam+CrossEntropyLoss"
MLP = (784, 256, 10)
BATCH = 64


def spec_of(optimizer):
    if optimizer in (FWDBWD, EMA):
        return None
    if optimizer in SCHEDULED:
        return BY_NAME[SCHEDULED[optimizer][0]]
    if optimizer == CLASSIFIER:
        return BY_NAME["adam"]
    return BY_NAME[optimizer]


def library(name, regime=None):
    """The libraries a process timing contender ``name`` of ``regime`` loads: ``torch``,
    ``fastoptim`` (which also runs its C yardsticks and the NumPy twins), or, for fastoptim's
    optimizer over torch's tensors (the regimes ``ON_TORCH``), ``fastoptim+torch``."""
    if name.startswith("torch:"):
        return "torch"
    return "fastoptim+torch" if regime in ON_TORCH else "fastoptim"


def names(regime, optimizer, mode, with_torch):
    """``[(name, max_repeats)]``: the contenders of one timed row, in timing order."""
    spec = spec_of(optimizer)
    if regime in ON_TORCH and not with_torch:
        return []           # no torch: no torch tensors to step
    out = [("fastoptim", None)]
    if with_torch:
        variants = torch_variants(spec) if spec is not None else {"default": {}}
        out += [(f"torch:{v}", None) for v in variants]
    if regime in ON_TORCH:
        return out
    if regime == "a":
        out += [("roofline", None), ("numpy", mode.slow_repeats)]
    elif regime in ("b", "c") and optimizer != EMA:
        out.append(("flat", None))
        if regime == "b":
            out.append(("numpy", max(mode.slow_repeats, mode.repeats // 2)))
    return out


def sizes(regime, mode):
    if regime in ON_TORCH:
        return sizes(regime[1], mode)
    if regime == "a":
        return {"numel": mode.a_numel}
    if regime in ("b", "c"):
        return {"params": mode.b_count, "numel": mode.b_numel}
    if regime == "d":
        return {"in": 10, "out": 1}
    return {"layers": list(MLP), "batch": BATCH}


# ---- the arrays every contender starts from ------------------------------------------------

_DATA = {}


def data(count, numel, seed=0):
    """``count`` (param, grad) float32 pairs of ``numel`` elements: the values every contender
    starts from (each gets its own copies).  The last set is kept, so the contenders of one row
    (and the processes forked from one that already made it) share the generation."""
    key = (count, numel, seed)
    if key not in _DATA:
        _DATA.clear()
        rng = np.random.default_rng(seed)
        ps = [rng.standard_normal(numel, dtype=np.float32) for _ in range(count)]
        gs = [rng.standard_normal(numel, dtype=np.float32) for _ in range(count)]
        _DATA[key] = (ps, gs)
    return _DATA[key]


def prepare(regime, mode):
    """Make the row's arrays now (in a process about to fork contender processes)."""
    if regime in ON_TORCH:
        regime = regime[1]
    if regime == "a":
        data(1, mode.a_numel)
    elif regime in ("b", "c"):
        data(mode.b_count, mode.b_numel)


def params(lib, ps, gs):
    """Parameters of ``lib`` (fastoptim or torch) holding copies of ``ps``, with grads ``gs``."""
    out = []
    for p, g in zip(ps, gs):
        t = lib.nn.Parameter(lib.from_numpy(p.copy()))
        t.grad = lib.from_numpy(g.copy())
        out.append(t)
    return out


def shared_params(lib, prows, grows):
    """fastoptim Parameters over ``prows`` (their grads over ``grows``) without copies: rows of
    one buffer, say, to time a layout (``bench_layouts``, ``bench_hugepages``,
    ``bench_many_split``)."""
    out = []
    for p, g in zip(prows, grows):
        t = lib.nn.Parameter(lib.from_numpy(p))
        t.grad = lib.from_numpy(g)
        out.append(t)
    return out


def _linear_loop(lib, spec, extra, scheduler=None):
    """The seed's loop on ``lib`` (fastoptim or torch): one call = one full iteration, ending
    with ``scheduler.step()`` when a ``(class name, kwargs)`` is given."""
    lib.manual_seed(0)
    model = lib.nn.Linear(10, 1)
    criterion = lib.nn.MSELoss()
    opt = getattr(lib.optim, spec.cls)(model.parameters(), **spec.kwargs, **extra)
    randn = lib.randn
    if scheduler is not None:
        sched = getattr(lib.optim.lr_scheduler, scheduler[0])(opt, **scheduler[1])

        def scheduled_iteration():
            x = randn(10)
            target = randn(1)
            outputs = model(x)
            loss = criterion(outputs, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return scheduled_iteration

    def iteration():
        x = randn(10)
        target = randn(1)
        outputs = model(x)
        loss = criterion(outputs, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return iteration


def _ema_update(lib, ps, gs):
    """``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn())`` over a model holding
    copies of ``ps``: one call = one ``update_parameters(model)`` (after the first, which
    copies)."""
    model = lib.nn.Module()
    for i, p in enumerate(params(lib, ps, gs)):
        model.register_parameter(f"p{i}", p)
    swa = lib.optim.swa_utils
    averaged = swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn())
    averaged.update_parameters(model)
    return lambda: averaged.update_parameters(model)


def mlp_data():
    rng = np.random.default_rng(1)
    shapes = [(MLP[1], MLP[0]), (MLP[1],), (MLP[2], MLP[1]), (MLP[2],)]
    weights = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]
    x = rng.standard_normal((BATCH, MLP[0]), dtype=np.float32)
    y = rng.standard_normal((BATCH, MLP[2]), dtype=np.float32)
    return weights, x, y


def mlp_classes():
    """Class indices in [0, 10) for the classifier row (int64, as torch's targets)."""
    return np.random.default_rng(3).integers(0, MLP[2], BATCH)


def _mlp_step(lib, spec, extra, weights, x, y, classes=None):
    """One training step of the MLP: MSE on y, or, given classes, CrossEntropyLoss on them."""
    model = lib.nn.Sequential(lib.nn.Linear(MLP[0], MLP[1]), lib.nn.ReLU(),
                              lib.nn.Linear(MLP[1], MLP[2]))
    with lib.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(lib.from_numpy(w.copy()))
    x, y, criterion = lib.from_numpy(x.copy()), lib.from_numpy(y.copy()), lib.nn.MSELoss()
    if classes is not None:
        y, criterion = lib.from_numpy(classes.copy()), lib.nn.CrossEntropyLoss()
    if spec is None:       # forward + backward alone
        def fwdbwd():
            model.zero_grad()
            criterion(model(x), y).backward()
        return fwdbwd
    opt = getattr(lib.optim, spec.cls)(model.parameters(), **spec.kwargs, **extra)

    def step():
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()
    return step


# ---- one contender -------------------------------------------------------------------------

def build(regime, optimizer, name, mode, max_repeats=None):
    """The ``Contender`` ``name`` of row (``regime``, ``optimizer``) in ``mode``."""
    spec = spec_of(optimizer)
    lib = importlib.import_module("torch" if name.startswith("torch:") else "fastoptim")
    extra = {}
    if name.startswith("torch:") and spec is not None:
        extra = torch_variants(spec)[name[6:]]
    if regime == "b" and optimizer == EMA:
        fn = _ema_update(lib, *data(mode.b_count, mode.b_numel))
    elif regime in ON_TORCH:
        fn = _step_on_torch(regime, spec, name, mode, extra)
    elif regime in ("a", "b", "c"):
        ps, gs = data(1, mode.a_numel) if regime == "a" else data(mode.b_count, mode.b_numel)
        if spec.matrix:   # the same values, as matrices
            ps, gs = ([x.reshape(matrix_shape(x.size)) for x in xs] for xs in (ps, gs))
        if name == "roofline":      # reads what the step reads (g), writes p and each state
            from fastoptim._C import _bench
            # on the step's own arrays: the optimizer built as the "fastoptim" contender builds
            # it, in a process forked from the same zygote, and stepped once so that its state
            # exists: the same allocations in the same order, so the same addresses (page
            # offsets, 4K aliasing between the arrays, huge pages) as the step it is the limit of
            ts = params(lib, ps, gs)
            opt = getattr(lib.optim, spec.cls)(ts, **spec.kwargs)
            opt.step()
            reads = [ts[0].grad.numpy()]
            writes = [ts[0].detach().numpy()] + [opt.state[ts[0]][k].numpy() for k in spec.state]

            def fn():
                _bench.roofline(reads, writes)
        elif name == "numpy":
            fn = twin_step(spec, [p.copy() for p in ps], [g.copy() for g in gs])
        else:
            if name == "flat":      # the whole row end to end in one param: (b), (c) yardstick
                ps, gs = [np.concatenate(ps)], [np.concatenate(gs)]   # (matrices stack)
            ts = params(lib, ps, gs)
            groups = [{"params": [t]} for t in ts] if regime == "c" and name != "flat" else ts
            fn = getattr(lib.optim, spec.cls)(groups, **spec.kwargs, **extra).step
    elif regime == "d":
        sched = SCHEDULED.get(optimizer)
        fn = _linear_loop(lib, spec, extra, sched[1:] if sched else None)
    elif regime == "e":
        classes = mlp_classes() if optimizer == CLASSIFIER else None
        fn = _mlp_step(lib, spec, extra, *mlp_data(), classes=classes)
    else:
        raise KeyError(regime)
    return Contender(name, fn, max_repeats if max_repeats is not None else 10**9)


def _step_on_torch(regime, spec, name, mode, extra):
    """The step of torch.optim (``torch:*``) or of fastoptim.optim (``fastoptim``) over the same
    torch tensors, grads set once."""
    import torch
    if regime == "te":
        weights = mlp_data()[0]
        rng = np.random.default_rng(2)
        ps, gs = weights, [rng.standard_normal(w.shape, dtype=np.float32) for w in weights]
    else:
        ps, gs = data(1, mode.a_numel) if regime == "ta" else data(mode.b_count, mode.b_numel)
    ts = params(torch, ps, gs)
    groups = [{"params": [t]} for t in ts] if regime == "tc" else ts
    lib = importlib.import_module("fastoptim") if name == "fastoptim" else torch
    return getattr(lib.optim, spec.cls)(groups, **spec.kwargs, **extra).step


def set_threads(lib_name, n):
    """Give the library ``lib_name`` names (``library``) ``n`` threads; return the count it
    reports (``fastoptim+torch``: both get ``n``, and fastoptim's count is returned once torch's
    is checked to be the same)."""
    if lib_name == "torch":
        import torch
        torch.set_num_threads(n)
        return torch.get_num_threads()
    if lib_name == "fastoptim+torch":
        if set_threads("torch", n) != n:
            raise RuntimeError(f"torch would not take {n} threads")
    from fastoptim._C import _optim
    _optim._set_num_threads(n)
    return _optim._get_num_threads()
