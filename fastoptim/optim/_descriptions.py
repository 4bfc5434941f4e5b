"""Each built-in optimizer described once: the row that the classes, the functionals, the tests
and the benchmarks read, and that a test holds against the C header, the Cython mirror and the
stubs.

Why it exists: an optimizer used to be restated by position in a dozen places (the header's
prototype, ``kernels.pxd``, the Cython glue, the ``.pyi``, the functional, the class's settings
tuple, four test tables, the benchmark table).  Now its facts live in one :class:`Description`:

* ``name``: the public functional (``fastoptim.optim.functional.<name>``) and the module of
  the class; ``cls``: the class in ``fastoptim.optim``; ``kernel``: the C kernel family
  (``fo_<kernel>_update_f32``, its struct ``fo_<kernel>_hyper``, its generated filler in the
  glue), shared by Adam and AdamW.
* ``scalars`` then ``flags``: the fields of ``fo_<kernel>_hyper``, by name and in the struct's
  order (doubles, then ints).  Each says where a param group keeps it (``betas[0]`` for
  ``beta1``; a tuple setting's fields are adjacent and in order).  AdamW fixes
  ``decoupled_weight_decay`` to True.
* ``state``: the per-param state arrays, in the kernel's order, with torch's state key, the
  functional's list name, and which setting creates it (``when``: a hyperparameter that must
  be truthy, or ``momentum>0`` style comparisons, or None for always); ``scalar``: a 0-dim
  tensor per param rather than an array like it (NAdam's ``mu_product``, ASGD's ``eta`` and
  ``mu``: created float32, cast to the param's dtype by loading, as torch's); ``init``: what a
  lazy first state is filled with (a number, or ``"lr"``: the group's lr at that step, as
  Rprop's ``step_size`` and ASGD's ``eta``).
* ``step``: whether ``state['step']`` (a 0-dim float32 counter) exists; ``first_step``: how the
  state of a param's first step is made -- ``"zeros"`` (lazy zeros, torch's rule for most),
  ``"from_grad"`` (SGD: the momentum buffer is the first decayed grad, filled by the kernel),
  ``"eager"`` (Adagrad: made in the constructor, filled with the constructor default named by
  ``fill_from``); ``fused_check``: when torch's ``fused=True`` dtype check runs.
* ``also_reads``: the other group settings a step reads (``fused`` checks), so that batching
  equal groups (``Optimizer._batched_groups``) compares everything the update depends on.

Who reads a row: the shared step of every class and the functionals' plumbing
(``_step.py``: ``grouped_step``, ``run``, and ``plan``, which turns the row into the glue's
``_optim.Plan``), the generic glue entries ``_optim.step`` / ``_optim.group_step`` (through
that plan: which state lists the settings create, their keys and names), state loading
(``Optimizer._expected_state_keys``), the tests and the benchmarks.

How to add an optimizer (say ``adamax``), touching only its own pieces:

1. its kernel: ``csrc/optim_adamax.inc`` + ``.c`` (a ctx struct holding the arrays and a
   ``fo_adamax_hyper h``; a segment function; ``fo_multi_tensor_run``) defining
   ``fo_adamax_update_f32/_f64`` and the positional wrappers ``fo_adamax_step_f32/_f64``;
2. its header entry: ``fo_adamax_hyper`` and the four prototypes in ``csrc/fastoptim.h``, mirrored
   in ``fastoptim/kernels.pxd``;
3. nothing in the glue: its filler (the struct's fields by name, from the hyperparameters in
   this row's order), its runner (the two update calls, state lists in the prototype's
   order), its ``fo_adamax_advance`` call (per-tensor scalar state only) and its registration
   are generated from this row at build time (``_kernel_glue.py``, into the build directory;
   ``_optim.pyx`` includes them).  Only if torch divides by a per-step scalar that can be
   zero (Adam's ``1 - beta1**t``): its test ``_adamax_zero`` and ``_register_zero`` line in
   ``fastoptim/_C/_optim.pyx``;
4. its row in ``DESCRIPTIONS`` below; its class file ``fastoptim/optim/adamax.py`` (torch's
   constructor checks and messages, defaults, ``__setstate__``, docstring, and
   ``step = grouped_step(_DESCRIPTION)``) exported in ``fastoptim/optim/__init__.py``; its
   public functional in ``functional.py`` (torch's signature; its body passes the
   hyperparameters by name, the state lists in this row's order, to ``_step.run``);
5. its NumPy twin in ``fastoptim/optim/_reference.py``;
6. its test rows: hyperparameter sets in ``tests/optim_table.py``.
``tests/test_descriptions.py`` then checks that 1, 2 and 4 agree with the row (the header's
prototypes take the arrays in the order the generated runner passes them), that the build
compiled the glue the rows generate, and that the optimizer's name appears in the library's
code nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BY_CLASS", "BY_NAME", "DESCRIPTIONS", "WHOLE_STEP", "Description", "Hyper",
           "StateArray", "WholeStepDescription"]


@dataclass(frozen=True)
class Hyper:
    """One field of a kernel's ``fo_<kernel>_hyper`` struct and where a group keeps it."""

    name: str                  # the struct field (and the functional's keyword)
    group_key: str             # the param group's key
    index: int | None = None   # position inside a tuple setting (``betas``), else None

    def read(self, group: dict[str, Any]) -> Any:
        value = group[self.group_key]
        return value if self.index is None else value[self.index]


@dataclass(frozen=True)
class StateArray:
    """One per-param state array, in the kernel's order."""

    key: str                   # torch's state key: ``state[p][key]``
    list_name: str             # the kernel's list argument (C prototype, functional)
    when: str | None = None    # None: always; "centered": that setting truthy; "momentum!=0",
                               # "momentum>0": that comparison with zero
    scalar: bool = False       # a 0-dim tensor per param (else an array like the param)
    init: float | str = 0.0    # the first state's value; "lr": the group's lr at that step

    def present(self, group: dict[str, Any]) -> bool:
        """Whether a group with these settings has this state (``group.get``: loaded dicts may
        lack a setting, torch's ``__setstate__`` defaults it to falsy)."""
        if self.when is None:
            return True
        for op in ("!=", ">"):
            if op in self.when:
                key, _ = self.when.split(op)
                value = group.get(key, 0)
                return value != 0 if op == "!=" else value > 0
        return bool(group.get(self.when, False))


@dataclass(frozen=True)
class Description:
    name: str
    cls: str
    kernel: str
    scalars: tuple[Hyper, ...]
    flags: tuple[Hyper, ...]
    state: tuple[StateArray, ...]
    step: bool
    first_step: str
    also_reads: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()   # flags this class fixes (AdamW's decoupling)
    torch_order: tuple[str, ...] = ()         # torch's state key order, where not the kernel's
    fused_check: str | None = None            # torch's fused=True dtype check: "once" (at the
                                              # first step), "lazy" (as state is made), None
    fill_from: str | None = None              # the constructor default first state is filled
                                              # with (Adagrad's initial_accumulator_value)

    @property
    def hyper(self) -> tuple[Hyper, ...]:
        """Every field of ``fo_<kernel>_hyper``, in the struct's order."""
        return self.scalars + self.flags

    @property
    def scalar_keys(self) -> frozenset[str]:
        """The state keys that hold one 0-dim tensor per param."""
        return frozenset(s.key for s in self.state if s.scalar)

    @property
    def group_keys(self) -> tuple[str, ...]:
        """Every group setting a step reads (the batching key), each once, in order."""
        keys = dict.fromkeys(h.group_key for h in self.hyper)
        keys.update(dict.fromkeys(self.also_reads))
        return tuple(keys)

    def state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state arrays a group with these settings keeps, in the kernel's order."""
        return tuple(s.key for s in self.state if s.present(group))

    def expected_state_keys(self, group: dict[str, Any]) -> tuple[tuple[str, ...],
                                                                   tuple[str, ...]]:
        """``(required, optional)`` state keys for loading: the step counter and the arrays
        these settings create are required; the arrays other settings would create may be
        present (torch keeps a buffer when a setting is turned off)."""
        order = {k: n for n, k in enumerate(("step", *self.torch_order))}
        every = sorted((s.key for s in self.state), key=lambda k: order.get(k, len(order)))
        if self.first_step == "from_grad":   # SGD: a buffer may be absent (None) or missing
            return (), tuple(every)
        present = self.state_keys(group)
        required = (("step",) if self.step else ()) + tuple(k for k in every if k in present)
        return required, tuple(k for k in every if k not in present)


_LR = Hyper("lr", "lr")
_WD = Hyper("weight_decay", "weight_decay")
_EPS = Hyper("eps", "eps")
_MAXIMIZE = Hyper("maximize", "maximize")

_ADAM_STATE = (
    StateArray("exp_avg", "exp_avgs"),
    StateArray("exp_avg_sq", "exp_avg_sqs"),
    StateArray("max_exp_avg_sq", "max_exp_avg_sqs", "amsgrad"),
)
_ADAM_SCALARS = (_LR, Hyper("beta1", "betas", 0), Hyper("beta2", "betas", 1), _EPS, _WD)
_ADAM_FLAGS = (Hyper("amsgrad", "amsgrad"), _MAXIMIZE,
               Hyper("decoupled_weight_decay", "decoupled_weight_decay"))

DESCRIPTIONS: tuple[Description, ...] = (
    Description(
        name="sgd", cls="SGD", kernel="sgd",
        scalars=(_LR, Hyper("momentum", "momentum"), Hyper("dampening", "dampening"), _WD),
        flags=(Hyper("nesterov", "nesterov"), _MAXIMIZE),
        state=(StateArray("momentum_buffer", "momentum_buffers", "momentum!=0"),),
        step=False, first_step="from_grad", also_reads=("fused",), fused_check="once",
    ),
    Description(
        name="adam", cls="Adam", kernel="adam", scalars=_ADAM_SCALARS, flags=_ADAM_FLAGS,
        state=_ADAM_STATE, step=True, first_step="zeros", also_reads=("fused",),
        fused_check="lazy",
    ),
    Description(
        name="adamw", cls="AdamW", kernel="adam", scalars=_ADAM_SCALARS, flags=_ADAM_FLAGS,
        state=_ADAM_STATE, step=True, first_step="zeros", also_reads=("fused",),
        fused_check="lazy", fixed=(("decoupled_weight_decay", True),),
    ),
    Description(
        name="rmsprop", cls="RMSprop", kernel="rmsprop",
        scalars=(_LR, Hyper("alpha", "alpha"), _EPS, _WD, Hyper("momentum", "momentum")),
        flags=(Hyper("centered", "centered"), _MAXIMIZE),
        state=(StateArray("square_avg", "square_avgs"),
               StateArray("grad_avg", "grad_avgs", "centered"),
               StateArray("momentum_buffer", "momentum_buffers", "momentum>0")),
        step=True, first_step="zeros", torch_order=("square_avg", "momentum_buffer", "grad_avg"),
    ),
    Description(
        name="adagrad", cls="Adagrad", kernel="adagrad",
        scalars=(_LR, _WD, Hyper("lr_decay", "lr_decay"), _EPS), flags=(_MAXIMIZE,),
        state=(StateArray("sum", "state_sums"),),
        step=True, first_step="eager", also_reads=("fused",), fused_check="once",
        fill_from="initial_accumulator_value",
    ),
    Description(
        name="adadelta", cls="Adadelta", kernel="adadelta",
        scalars=(_LR, Hyper("rho", "rho"), _EPS, _WD), flags=(_MAXIMIZE,),
        state=(StateArray("square_avg", "square_avgs"), StateArray("acc_delta", "acc_deltas")),
        step=True, first_step="zeros",
    ),
    Description(
        name="adamax", cls="Adamax", kernel="adamax",
        scalars=(_LR, Hyper("beta1", "betas", 0), Hyper("beta2", "betas", 1), _EPS, _WD),
        flags=(_MAXIMIZE,),
        state=(StateArray("exp_avg", "exp_avgs"), StateArray("exp_inf", "exp_infs")),
        step=True, first_step="zeros",
    ),
    Description(
        name="radam", cls="RAdam", kernel="radam",
        scalars=(_LR, Hyper("beta1", "betas", 0), Hyper("beta2", "betas", 1), _EPS, _WD),
        flags=(Hyper("decoupled_weight_decay", "decoupled_weight_decay"), _MAXIMIZE),
        state=(StateArray("exp_avg", "exp_avgs"), StateArray("exp_avg_sq", "exp_avg_sqs")),
        step=True, first_step="zeros",
    ),
    Description(
        name="rprop", cls="Rprop", kernel="rprop",
        scalars=(Hyper("etaminus", "etas", 0), Hyper("etaplus", "etas", 1),
                 Hyper("step_size_min", "step_sizes", 0), Hyper("step_size_max", "step_sizes", 1)),
        flags=(_MAXIMIZE,),
        # step_size starts at the group's lr: the only place lr enters
        state=(StateArray("prev", "prevs"), StateArray("step_size", "step_sizes", init="lr")),
        step=True, first_step="zeros", also_reads=("lr",),
    ),
    Description(
        name="nadam", cls="NAdam", kernel="nadam",
        scalars=(_LR, Hyper("beta1", "betas", 0), Hyper("beta2", "betas", 1), _EPS, _WD,
                 Hyper("momentum_decay", "momentum_decay")),
        flags=(Hyper("decoupled_weight_decay", "decoupled_weight_decay"), _MAXIMIZE),
        state=(StateArray("exp_avg", "exp_avgs"), StateArray("exp_avg_sq", "exp_avg_sqs"),
               StateArray("mu_product", "mu_products", scalar=True, init=1.0)),
        step=True, first_step="zeros", torch_order=("mu_product", "exp_avg", "exp_avg_sq"),
    ),
    Description(
        name="asgd", cls="ASGD", kernel="asgd",
        scalars=(_LR, Hyper("lambd", "lambd"), Hyper("alpha", "alpha"), Hyper("t0", "t0"), _WD),
        flags=(_MAXIMIZE,),
        # mu starts at 1, eta at the group's lr (rounded to float32, as torch's as_tensor)
        state=(StateArray("ax", "axs"), StateArray("mu", "mus", scalar=True, init=1.0),
               StateArray("eta", "etas", scalar=True, init="lr")),
        step=True, first_step="zeros", torch_order=("eta", "mu", "ax"),
    ),
)

BY_NAME: dict[str, Description] = {d.name: d for d in DESCRIPTIONS}
BY_CLASS: dict[str, Description] = {d.cls: d for d in DESCRIPTIONS}


@dataclass(frozen=True)
class WholeStepDescription:
    """An optimizer that is NOT an elementwise kernel row (no ``fo_<kernel>_hyper`` struct, no
    multi-tensor kernel, not stepped by ``_grouped_step``): what is still true of it, for the
    readers that enumerate every optimizer (the tests).

    ``kind``: ``"closure"`` -- one flat vector over all params, several closure calls per step,
    global state kept under the first param (LBFGS); ``"matrix"`` -- per-param state, but each
    update is a matrix computation over the whole param (Muon); ``"factored"`` -- per-param
    state whose shapes are not the param's (row and column factors for params of two or more
    dims, ``variance`` for the others), updated with per-param reductions (Adafactor).
    ``state``: torch's state keys, in the order torch writes them (for "factored": every key
    either kind of param may have).
    """

    cls: str
    kind: str
    state: tuple[str, ...]


WHOLE_STEP: tuple[WholeStepDescription, ...] = (
    WholeStepDescription(
        cls="LBFGS", kind="closure",
        state=("func_evals", "n_iter", "al", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
               "prev_flat_grad", "prev_loss"),
    ),
    WholeStepDescription(cls="Muon", kind="matrix", state=("momentum_buffer",)),
    WholeStepDescription(cls="Adafactor", kind="factored",
                         state=("step", "row_var", "col_var", "variance")),
)
