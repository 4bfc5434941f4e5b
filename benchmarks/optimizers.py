"""The table of benchmarked optimizers: hyperparameters, torch variants, memory traffic, twins.

Why it exists: every regime runs every described optimizer, and honesty needs one place that says
what each contender is given.  fastoptim and torch get the same class name and the same keyword
arguments (so the same update); the NumPy twin (``fastoptim.optim._reference``) gets the same
hyperparameters; the roofline gets the same arrays the step reads and writes.  What state each
keeps and how its twin is called come from the optimizers' descriptions
(``fastoptim.optim._descriptions``), not from this table.
"""

from dataclasses import dataclass

import numpy as np

from fastoptim.optim._descriptions import BY_NAME as DESCRIPTIONS


@dataclass(frozen=True)
class Spec:
    name: str            # key used in tables, JSON and --compare (the description's name)
    cls: str             # class name, identical in torch.optim and fastoptim.optim
    kwargs: dict         # hyperparameters, passed to both libraries
    torch_fused: bool    # torch 2.13 has fused=True on the CPU for this optimizer

    @property
    def description(self):
        return DESCRIPTIONS[self.name]

    @property
    def settings(self):
        """The param group the classes would make from ``kwargs`` (torch's defaults)."""
        import fastoptim

        p = fastoptim.nn.Parameter(fastoptim.zeros(1))
        group = getattr(fastoptim.optim, self.cls)([p], **self.kwargs).param_groups[0]
        return {k: v for k, v in group.items() if k != "params"}

    @property
    def state(self):
        """The per-param state arrays the step updates in place (besides the param), from the
        optimizer's description under these settings."""
        return self.description.state_keys(self.settings)


# The settings each optimizer is benchmarked with, where not its defaults.
_KWARGS = {
    "sgd": {"lr": 0.01, "momentum": 0.9},
    "adam": {"lr": 1e-3},
    "adamw": {"lr": 1e-3, "weight_decay": 0.01},
    "rmsprop": {"lr": 0.01},
    "adagrad": {"lr": 0.01},
    "adadelta": {"lr": 1.0},
}
# Every described optimizer, in the descriptions' order; torch 2.13 has a fused CPU kernel for
# exactly those whose class takes ``fused`` (the description reads it).
SPECS = [Spec(d.name, d.cls, _KWARGS.get(d.name, {}), "fused" in d.also_reads)
         for d in DESCRIPTIONS.values()]
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
    the state the description says these settings keep, made here as the classes make it
    (its first values; SGD's buffers from the first grad), and the settings' hyperparameters by
    name."""
    from fastoptim.optim import _reference as ref

    d = spec.description
    settings = spec.settings
    n = len(params)
    lists = []
    for s in d.state:
        fill = float(settings["lr"]) if s.init == "lr" else s.init
        if not s.present(settings):
            lists.append(None)
        elif d.first_step == "from_grad":
            lists.append([None] * n)
        elif s.scalar:
            lists.append([np.array(fill, np.float32) for _ in params])
        else:
            lists.append([np.full_like(p, fill) for p in params])
    if d.step:
        lists.append([np.zeros(1, np.float32) for _ in range(n)])
    fixed = dict(d.fixed)
    kw = {h.name: h.read(settings) for h in d.hyper if h.name not in fixed}
    fn = getattr(ref, d.name)
    return lambda: fn(params, grads, *lists, **kw)
