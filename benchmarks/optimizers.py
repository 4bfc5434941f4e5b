"""The table of benchmarked optimizers: hyperparameters, torch variants, memory traffic, twins.

Why it exists: every regime runs the same six optimizers, and honesty needs one place that says
what each contender is given.  fastoptim and torch get the same class name and the same keyword
arguments (so the same update); the NumPy twin (``fastoptim.optim._reference``) gets the same
hyperparameters; the roofline gets the same arrays the step reads and writes.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Spec:
    name: str            # key used in tables, JSON and --compare
    cls: str             # class name, identical in torch.optim and fastoptim.optim
    kwargs: dict         # hyperparameters, passed to both libraries
    torch_fused: bool    # torch 2.13 has fused=True on the CPU for this optimizer
    state: tuple         # per-param state arrays the step updates in place (besides the param)
    twin_extra: dict = field(default_factory=dict)   # twin-only arguments (torch's defaults)


SPECS = [
    Spec("sgd", "SGD", {"lr": 0.01, "momentum": 0.9}, True, ("momentum_buffer",),
         {"weight_decay": 0.0, "dampening": 0.0, "nesterov": False}),
    Spec("adam", "Adam", {"lr": 1e-3}, True, ("exp_avg", "exp_avg_sq"),
         {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}),
    Spec("adamw", "AdamW", {"lr": 1e-3, "weight_decay": 0.01}, True, ("exp_avg", "exp_avg_sq"),
         {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "amsgrad": False}),
    Spec("rmsprop", "RMSprop", {"lr": 0.01}, False, ("square_avg",),
         {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False}),
    Spec("adagrad", "Adagrad", {"lr": 0.01}, True, ("sum",),
         {"weight_decay": 0.0, "lr_decay": 0.0, "eps": 1e-10}),
    Spec("adadelta", "Adadelta", {"lr": 1.0}, False, ("square_avg", "acc_delta"),
         {"rho": 0.9, "eps": 1e-6, "weight_decay": 0.0}),
]
BY_NAME = {s.name: s for s in SPECS}


def torch_variants(spec):
    """torch's implementations of one optimizer on the CPU: ``{variant: extra kwargs}``."""
    out = {}
    if spec.torch_fused:
        out["fused"] = {"fused": True}
    out["foreach"] = {"foreach": True}
    out["forloop"] = {"foreach": False}
    return out


def twin_step(spec, params, grads):
    """A zero-argument callable: one step of the NumPy twin over lists of float32 arrays, with
    state created here (zeros, as the classes create it lazily)."""
    from fastoptim.optim import _reference as ref

    kw = dict(spec.kwargs, **spec.twin_extra, maximize=False)
    n = len(params)
    steps = [np.zeros(1, np.float32) for _ in range(n)]
    zeros = [[np.zeros_like(p) for p in params] for _ in spec.state]
    if spec.name == "sgd":
        bufs = [None] * n
        return lambda: ref.sgd(params, grads, bufs, **kw)
    if spec.name in ("adam", "adamw"):
        fn = getattr(ref, spec.name)
        return lambda: fn(params, grads, zeros[0], zeros[1], None, steps, **kw)
    if spec.name == "rmsprop":
        return lambda: ref.rmsprop(params, grads, zeros[0], None, None, steps, **kw)
    if spec.name == "adagrad":
        return lambda: ref.adagrad(params, grads, zeros[0], steps, **kw)
    if spec.name == "adadelta":
        return lambda: ref.adadelta(params, grads, zeros[0], zeros[1], steps, **kw)
    raise KeyError(spec.name)
