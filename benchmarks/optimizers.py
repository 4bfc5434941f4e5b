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
    # not an elementwise row (no description): its regimes, and its params as matrices
    only: tuple = ()     # the regimes it runs in (empty: all)
    matrix: bool = False # (a)-(c) params reshaped to near-square matrices (Adafactor factors)

    @property
    def description(self):
        return DESCRIPTIONS.get(self.name)

    @property
    def settings(self):
        """The param group the classes would make from ``kwargs`` (torch's defaults)."""
        import fastoptim

        p = fastoptim.nn.Parameter(fastoptim.zeros(1))
        group = getattr(fastoptim.optim, self.cls)([p], **self.kwargs).param_groups[0]
        return {k: v for k, v in group.items() if k != "params"}

    @property
    def state(self):
        """The per-param state arrays like the param that the step updates in place (besides
        the param), from the optimizer's description under these settings: what the roofline
        writes and regime (f) counts as live.  Not the 0-dim per-param scalars (NAdam's
        ``mu_product``, ASGD's ``eta`` and ``mu``: a few bytes each, no memory traffic); none
        for Adafactor, whose state is a row and a column per matrix."""
        d = self.description
        if d is None:
            return ()
        settings = self.settings
        return tuple(s.key for s in d.state if s.present(settings) and not s.scalar)

    def runs_in(self, regime):
        return not self.only or regime in self.only


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
         for d in DESCRIPTIONS.values()] + [
    # not an elementwise row: its state is a row and a column per matrix
    Spec("adafactor", "Adafactor", {"lr": 1e-2}, False, only=("a", "b", "c"), matrix=True),
]


def matrix_shape(numel):
    """The near-square (rows, cols) a matrix spec's flat param of ``numel`` is viewed as:
    16M -> 4096 x 4096, 1024 -> 32 x 32."""
    rows = 1 << (max(numel, 1).bit_length() - 1) // 2
    while numel % rows:
        rows -= 1
    return rows, numel // rows
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

    if spec.name == "adafactor":
        return _adafactor_twin(spec, params, grads)
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


def _adafactor_twin(spec, params, grads):
    from fastoptim.optim._reference_adafactor import adafactor

    g = spec.settings
    shapes = [p.shape for p in params]
    rows = [np.zeros(s[:-1] + (1,), p.dtype) if len(s) > 1 else None
            for s, p in zip(shapes, params)]
    cols = [np.zeros(s[:-2] + (1, s[-1]), p.dtype) if len(s) > 1 else None
            for s, p in zip(shapes, params)]
    variances = [None if len(s) > 1 else np.zeros_like(p) for s, p in zip(shapes, params)]
    steps = [np.zeros((), np.float32) for _ in params]
    kw = {"d": g["d"], "lr": g["lr"], "beta2_decay": g["beta2_decay"],
          "weight_decay": g["weight_decay"], "eps1": g["eps"][0], "eps2": g["eps"][1],
          "maximize": g["maximize"]}
    return lambda: adafactor(params, grads, rows, cols, variances, steps, **kw)
