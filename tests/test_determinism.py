"""Bit-identical training trajectories whatever the thread count, and for one seed in any process.

Why: fastoptim promises that results do not depend on OMP_NUM_THREADS (each element's update is
independent, reductions run in a fixed order) and that a seed fixes a run. Both are cheap to
break without noticing: a parallel reduction, a dict iterated in hash order, state created in
set order. Each case runs in its own process (the OpenMP thread count is fixed at startup):
OMP_NUM_THREADS=1 against 2, and two processes with the same seed but different
PYTHONHASHSEED. Every optimizer class runs in a few configurations, on layouts big enough
(> FO_OMP_MIN_ELEMS = 512Ki elements) that the threaded kernels and team mode run, which the
2-thread process checks it did. A trajectory is reduced to the SHA-256 of every param and state
tensor after each step, so any differing bit anywhere fails. numpy's BLAS (matmul) is pinned to
one thread in every process: its results do depend on its thread count.
"""
import textwrap

import pytest
from _children import collect, start

_TRAJECTORIES = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import fastoptim
    from fastoptim import nn, optim
    from fastoptim._C import _optim

    CONFIGS = [
        ("SGD", {"lr": 0.1}),
        ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5, "maximize": True}),
        ("Adam", {}),
        ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
        ("Adam", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
        ("AdamW", {}),
        ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
        ("RMSprop", {}),
        ("RMSprop", {"lr": 1e-3, "weight_decay": 0.1, "centered": True, "momentum": 0.1}),
        ("Adagrad", {}),
        ("Adagrad", {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1,
                     "initial_accumulator_value": 0.1}),
        ("Adadelta", {}),
        ("Adadelta", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ]
    # name: (shapes, dtype). "many" has 70 tensors: team mode (TEAM_MIN_TENSORS = 64).
    LAYOUTS = {"big-f32": ([(540_000,), (1000,), ()], fastoptim.float32),
               "big-f64": ([(540_000,), (7, 3)], fastoptim.float64),
               "many-f32": ([(8192,)] * 70, fastoptim.float32)}
    STEPS = 3

    def digest(h, t):
        h.update(np.ascontiguousarray(t.detach().numpy()).tobytes())

    def trajectory(name, kwargs, shapes, dtype, seed):
        fastoptim.manual_seed(seed)
        params = [nn.Parameter(fastoptim.randn(*s, dtype=dtype)) for s in shapes]
        opt = getattr(optim, name)(params, **kwargs)
        out = []
        for step in range(STEPS):
            for p in params:
                p.grad = fastoptim.randn(*p.shape, dtype=dtype)
            opt.step()
            h = hashlib.sha256()
            for p in params:
                digest(h, p)
            for p in params if step == STEPS - 1 else ():  # the state once, at the end
                for key, value in sorted(opt.state[p].items()):
                    h.update(key.encode())
                    digest(h, value) if hasattr(value, "detach") else h.update(repr(value).encode())
            out.append(h.hexdigest()[:16])
        return out

    def mlp_trajectory(seed):
        # A whole training step (forward, backward through matmuls, step) at threaded sizes.
        fastoptim.manual_seed(seed)
        model = nn.Sequential(nn.Linear(1024, 640), nn.ReLU(), nn.Linear(640, 8))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        x, y = fastoptim.randn(32, 1024), fastoptim.randn(32, 8)
        out = []
        for step in range(STEPS):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            h = hashlib.sha256()
            for p in model.parameters():
                digest(h, p)
            out.append(h.hexdigest()[:16])
        return out

    seed = int(sys.argv[1])
    teams_before = _optim._team_step_count()
    result = {f"{name}{kwargs}@{layout}": trajectory(name, kwargs, shapes, dtype, seed)
              for name, kwargs in CONFIGS for layout, (shapes, dtype) in LAYOUTS.items()}
    result["mlp"] = mlp_trajectory(seed)
    result["control: seed + 1"] = trajectory("Adam", {}, [(540_000,)], fastoptim.float32,
                                             seed + 1)
    print(json.dumps({"threads": _optim._get_num_threads(),
                      "team_steps": _optim._team_step_count() - teams_before,
                      "trajectories": result}))
""")


def _start(threads, hash_seed, seed=0):
    # numpy's OpenBLAS sizes its thread pool from OMP_NUM_THREADS too, and its matmul's bits
    # depend on it (the MLP's forward differs at 1 and 2 threads): it is pinned, so that what
    # varies is fastoptim's own threading. README "Reliability" says so.
    return start(_TRAJECTORIES, str(seed), OMP_NUM_THREADS=str(threads),
                 PYTHONHASHSEED=str(hash_seed), OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.fixture(scope="module")
def runs():
    procs = {"1 thread": _start(1, hash_seed=1), "2 threads": _start(2, hash_seed=2),
             "2 threads again": _start(2, hash_seed=3)}
    return collect(procs)


def test_two_thread_run_took_the_threaded_paths(runs):
    assert runs["1 thread"]["threads"] == 1
    assert runs["2 threads"]["threads"] == 2
    assert runs["2 threads"]["team_steps"] > 0  # the "many" layouts ran in team mode


@pytest.mark.parametrize("other", ["2 threads", "2 threads again"])
def test_trajectories_are_bit_identical(runs, other):
    want, got = runs["1 thread"]["trajectories"], runs[other]["trajectories"]
    assert list(got) == list(want)
    differing = [case for case in want if got[case] != want[case]]
    assert differing == [], f"{len(differing)} of {len(want)} trajectories differ"


def test_trajectories_depend_on_the_data(runs):
    # The control: the digests are not constant, so equal digests above mean equal bits.
    trajectories = runs["1 thread"]["trajectories"]
    control = trajectories["control: seed + 1"]
    assert control != trajectories["Adam{}@big-f32"]
    assert len({tuple(t) for t in trajectories.values()}) == len(trajectories)
    assert all(len(set(t)) == len(t) for t in trajectories.values())  # every step moves
