"""torch tensors as an optimizer's params: the mapping between them and our kernel views.

Why it exists, and why here (one private module the ``Optimizer`` base calls): the step bodies
and the C collection (``_optim._gather``) work on fastoptim Tensors, and other work changes them
in parallel; torch support must not fork them.  So an optimizer over torch params keeps two
faces of the same memory:

* the user's face, torch's: ``param_groups`` hold the user's torch tensors (torch code reads
  them: clipping, schedulers, ``named_parameters`` bookkeeping) and ``state`` holds torch
  tensors (so ``torch.save(opt.state_dict())`` and ``torch.optim.X.load_state_dict(ours)``
  work), keyed by the torch params;
* the kernel's face: one fastoptim Tensor VIEW per param, made once (through the buffer torch
  exports, no copy) and cached here, whose ``.grad`` is re-bound before each step to a view of
  the torch param's ``.grad``; state views are made once per state tensor.  ``step`` swaps the
  kernel's groups and state in for the duration of the class's step body, so the body and the
  C path run unchanged: one C call per group, writing the torch memory in place.

A step that changes nothing but the grads' tensors skips the sync: a C-level check
(``_optim.TorchSteady``: per param ``.grad``, ``data_ptr()``, ``shape`` and ``dtype``, and the
version tags of the state dicts) says so, and the kernel groups are the groups over the same
views.  A grad that is the same torch tensor as last step (``zero_grad(set_to_none=False)``,
or accumulation) reuses its view: nothing is allocated.  With ``set_to_none=True`` (torch's
default) autograd makes a new grad tensor every step: the same C check checks it as
``_check_grad`` does and binds a view of it (a numpy array header and a Tensor),
falling back to the sync (which raises the named error) when a check fails.  A grad that
appears or goes, a param whose storage, shape or dtype changed, or changed state, syncs: per
param, a few attribute reads and identity checks in Python.

Everything is checked before the step body runs, so a bad grad leaves params and state
untouched.

torch's version counters: torch's own optimizers write through ATen, which bumps the
``_version`` of every tensor they update in place; autograd compares it with the version a
tensor had when saved for backward ("... has been modified by an inplace operation").  Our
kernels write the memory behind torch's back, so after each successful step we bump, in one
C call (``torch._C._increment_version``, what ``torch.autograd.graph.increment_version``
calls), every tensor the step wrote: each param that had a grad and every tensor of its
state.  torch bumps once per in-place op it happens to use (Adam's param once, AdamW's
twice); we bump once per step, which is what the check needs.  The list is made at each
sync and reused by steady steps.  An inference tensor (made under ``torch.inference_mode()``)
has no counter; torch refuses to update one in place outside inference mode, and so do we,
with torch's message, before anything is written.

A closure-driven optimizer (LBFGS, ``_CLOSURE_DRIVEN``) calls the closure itself, several
times per step, between reads and writes of the params: there the closure is not run ahead
but handed to the body wrapped, so that each call runs on the torch face (the user's
``zero_grad`` clears the torch grads, autograd writes new ones) and the views' grads are then
re-bound to what it wrote (``_rebind_grads``: the per-param grad binding of a sync, no state).
Its state tensors are made fresh each step (none written in place), so only the params are
bumped, all of them (LBFGS moves every param, grad or not), and only if the body wrote them;
its history lists are popped and appended in place, so a list or dict state value is
published anew after every step (``_republish``).  The views and torch tensors over the state
keep LBFGS's ``_lbfgs.reclaim`` from reusing the state's vectors: over torch params it
allocates its new vectors (the cost of the torch face, as for the other optimizers' state).

Importing this module does not import torch: it reads ``sys.modules`` and is used only once a
torch tensor has been passed.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

import fastoptim
from fastoptim import Tensor
from fastoptim._C import _optim

__all__ = ["TorchParams", "bump_versions", "call_views", "check_param", "is_torch_tensor",
           "written_by_call"]

# torch's message (c10's VariableVersion::bump) for an in-place update of an inference tensor
# outside inference mode, word for word (its sentences are joined without spaces)
_INFERENCE_UPDATE = ("Inplace update to inference tensor outside InferenceMode is not allowed."
                     "You can make a clone to get a normal tensor before doing inplace update."
                     "See https://github.com/pytorch/rfcs/pull/17 for more details.")


def is_torch_tensor(x: Any) -> bool:
    """True for a torch tensor, without importing torch (only if the user already did)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _where(gi: int, pos: int) -> str:
    return f"parameter {pos} of parameter group {gi}"


def check_param(p: Any, gi: int, pos: int, differentiable: bool) -> None:
    """Refuse a torch param the kernels cannot update in place, naming it."""
    torch = sys.modules["torch"]
    where = _where(gi, pos)
    if p.layout != torch.strided:
        raise ValueError(f"fastoptim optimizes dense tensors only, but {where} has layout "
                         f"{p.layout}")
    if p.device.type != "cpu":
        raise ValueError(f"fastoptim optimizes CPU tensors only, but {where} is on device "
                         f"'{p.device}'")
    if p.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"fastoptim optimizes float32 and float64 tensors only, but {where} "
                         f"has dtype {p.dtype}")
    if not p.is_contiguous():
        raise ValueError(f"fastoptim optimizes contiguous tensors only, but {where} is not "
                         "contiguous (call .contiguous() on it before making the model's "
                         "parameter)")
    if p.is_neg():
        # torch._neg_view: the memory holds -p; the kernels would update it as p
        raise ValueError(f"fastoptim reads and writes a parameter's memory as is, but {where} "
                         "is a lazily negated view (is_neg()); call .resolve_neg() on it "
                         "before making the model's parameter")
    if not differentiable and not (p.is_leaf or p.retains_grad):
        raise ValueError(f"can't optimize a non-leaf Tensor ({where})")


def _view(t: Any) -> Tensor:
    """A fastoptim Tensor over a CPU torch tensor's memory (no copy)."""
    return fastoptim.from_dlpack(t.detach())


def _tensors_in(value: Any) -> list:
    """The torch tensors of a state value (a tensor, or a list/tuple/dict holding some)."""
    if is_torch_tensor(value):
        return [value]
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return []
    return [t for v in value for t in _tensors_in(v)]


def bump_versions(tensors: list) -> None:
    """Bump torch's version counter of each of ``tensors`` once (torch tensors our kernels just
    wrote in place: see the module docstring); inference tensors have none, torch skips them."""
    if tensors:
        sys.modules["torch"]._C._increment_version(tensors)


def written_by_call(lists: list, writeable: tuple) -> list:
    """The torch tensors of a functional's ``lists`` that its kernel call writes (``writeable``
    says which lists), to bump after the call; raises torch's error first if one is an
    inference tensor outside inference mode (torch refuses that in-place update)."""
    torch = sys.modules["torch"]
    out = [x for lst, w in zip(lists, writeable) if w and lst is not None
           for x in lst if isinstance(x, torch.Tensor)]
    if not torch.is_inference_mode_enabled() and any(t.is_inference() for t in out):
        raise RuntimeError(_INFERENCE_UPDATE)
    return out


class _Mirror(_optim.MirrorGrad):
    """One torch param's kernel face: its view, its grad's view (the ``MirrorGrad`` fields,
    C-level so that the steady step writes them cheaply), its state's views."""

    __slots__ = ("dtype", "inference", "ptr", "shape", "state", "state_inference",
                 "state_tensors", "state_views", "view")

    def __init__(self, p: Any) -> None:
        self.bind(p)
        self.state = None         # the torch state dict the views below mirror
        self.state_views = None   # {key: (torch value, view value)}
        self.state_tensors = []   # the torch tensors in the state, as the step writes them
        self.state_inference = False    # whether one of them is an inference tensor

    def bind(self, p: Any) -> None:
        """(Re)make the view of ``p``'s memory as it is now."""
        self.view = _view(p)
        self.view.requires_grad_(True)
        self.ptr = p.data_ptr()
        self.shape = p.shape
        # p.data = p.data.view(torch.complex64) (or int64, for a float64 param; int32 for a
        # float32 one) keeps the address and the shape: only the dtype tells
        self.dtype = p.dtype
        self.inference = p.is_inference()   # no version counter, no update outside the mode
        self.grad = None          # the torch grad the view's grad was made from
        self.grad_ptr = 0         # its data_ptr() and shape then (its memory can be swapped
        self.grad_shape = None    # in place on the same object: p.grad.data = x, set_, resize_)
        self.grad_view = None

    def set_state(self, ts: Any, views: dict) -> None:
        """Mirror the torch state dict ``ts`` by ``views`` ({key: (torch value, view)})."""
        self.state = ts
        self.state_views = views
        self.state_tensors = [t for tv, _ in views.values() for t in _tensors_in(tv)]
        self.state_inference = any(t.is_inference() for t in self.state_tensors)


class TorchParams:
    """The torch <-> kernel mapping of one optimizer (``Optimizer._torch_params``)."""

    def __init__(self) -> None:
        self.mirrors: dict[int, _Mirror] = {}        # id(torch param) -> its mirror
        self.kernel_state: defaultdict[Any, Any] = defaultdict(dict)   # keyed by views
        # the last sync, for the C-level test that the next step needs none (_optim.TorchSteady)
        self.steady = _optim.TorchSteady()
        # what the synced step writes (bump_versions after it), and whether an inference
        # tensor is among them (refused outside inference mode, before the step)
        self.written: list[Any] = []
        self.inference = False

    def add(self, p: Any) -> None:
        if id(p) not in self.mirrors:
            self.mirrors[id(p)] = _Mirror(p)

    def view_of(self, p: Any) -> Tensor:
        return self.mirrors[id(p)].view

    def views(self, params: Any) -> list[Tensor]:
        return [self.mirrors[id(p)].view for p in params]

    @staticmethod
    def torch_state(state: Any) -> Any:
        """State made for a kernel view, as torch tensors over the same memory."""
        return _torch_value(state)

    # ---------------------------------------------------------------- one step
    def run_step(self, opt: Any, call: Any, args: tuple, kwargs: dict) -> Any:
        """Run the class's step body ``call`` on the kernel's face of ``opt``."""
        if opt._CLOSURE_DRIVEN:
            return self._run_closure_step(opt, call, args, kwargs)
        torch = sys.modules["torch"]
        loss = None
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if closure is not None:
            # torch's autograd writes the grads we read: run it before the sync
            with torch.enable_grad():
                loss = closure()
            if "closure" in kwargs:
                kwargs = {**kwargs, "closure": None}
            else:
                args = (args[0], None, *args[2:])
        groups = self.steady.check(opt.param_groups, opt.state)
        steady = bool(groups)   # nothing to sync: the kernel groups over the same views
        if steady:
            inference = self.inference
        else:
            groups, inference = self._sync(opt)
        if inference and not torch.is_inference_mode_enabled():
            raise RuntimeError(_INFERENCE_UPDATE)
        saved = opt.param_groups, opt.state
        opt.param_groups, opt.state = groups, self.kernel_state
        try:
            with torch.no_grad():
                call(*args, **kwargs)
        finally:
            opt.param_groups, opt.state = saved
        if not (steady and self.steady.kernel_unchanged(self.kernel_state)):
            self._publish(opt)
            self._record(opt, groups)
        bump_versions(self.written)
        return loss

    def _run_closure_step(self, opt: Any, call: Any, args: tuple, kwargs: dict) -> Any:
        """``run_step`` for an optimizer whose step body calls the closure itself, several
        times (LBFGS): each call runs on the torch face (the user's ``opt.zero_grad()`` clears
        the torch grads, autograd writes new ones), then the views' grads are re-bound to
        what it wrote.  The body may write every param (LBFGS's ``_add_grad`` moves them
        all, grad or not): an inference tensor among them is refused before the first call,
        and every param is bumped if the body says it wrote them (``_params_written``)."""
        torch = sys.modules["torch"]
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        groups, _ = self._sync(opt)
        mirrors = [self.mirrors[id(p)] for g in opt.param_groups for p in g["params"]]
        if not torch.is_inference_mode_enabled() and any(
                m.inference or m.state_inference for m in mirrors):
            raise RuntimeError(_INFERENCE_UPDATE)
        torch_face = opt.param_groups, opt.state

        def on_torch_face():
            kernel_face = opt.param_groups, opt.state
            opt.param_groups, opt.state = torch_face
            try:
                with torch.enable_grad():
                    loss = closure()
            finally:
                opt.param_groups, opt.state = kernel_face
            self._rebind_grads(torch_face[0])
            return loss

        if callable(closure):
            if "closure" in kwargs:
                kwargs = {**kwargs, "closure": on_torch_face}
            else:
                args = (args[0], on_torch_face, *args[2:])
        opt.param_groups, opt.state = groups, self.kernel_state
        opt._params_written = False
        try:
            with torch.no_grad():
                loss = call(*args, **kwargs)
        finally:
            opt.param_groups, opt.state = torch_face
            self._publish(opt)
        if opt._params_written:
            bump_versions([p for g in opt.param_groups for p in g["params"]])
        return loss

    def _rebind_grads(self, groups: list[dict[str, Any]]) -> None:
        """After a closure call inside a step: the views' grads are the torch grads now."""
        for gi, group in enumerate(groups):
            for pos, p in enumerate(group["params"]):
                m = self.mirrors[id(p)]
                if p.data_ptr() != m.ptr or p.shape != m.shape or p.dtype is not m.dtype:
                    raise RuntimeError(f"the closure replaced the memory of {_where(gi, pos)} "
                                       "(p.data = ..., resize_ or set_) during the step; "
                                       "fastoptim's LBFGS reads and writes the params it "
                                       "started the step with")
                _bind_grad(m, p, gi, pos)

    def _record(self, opt: Any, groups: list[dict[str, Any]]) -> None:
        """Note this sync (``self.steady``), so that a step that changes nothing skips it."""
        params = [p for g in opt.param_groups for p in g["params"]]
        mirrors = [self.mirrors[id(p)] for p in params]
        grads = [p.grad for p in params]
        written = []
        inference = False
        for p, g, m in zip(params, grads, mirrors):
            if g is not None:       # the kernels skip a param without a grad, as torch does
                written.append(p)
                written += m.state_tensors
                inference = inference or m.inference or m.state_inference
        self.written, self.inference = written, inference
        self.steady.record(params, grads, [m.view for m in mirrors],
                           [m.ptr for m in mirrors], [m.shape for m in mirrors],
                           [m.dtype for m in mirrors], [m.grad_ptr for m in mirrors],
                           [m.grad_shape for m in mirrors],
                           opt.state, self.kernel_state, opt.param_groups, groups, mirrors,
                           sys.modules["torch"].strided)

    def _sync(self, opt: Any) -> tuple[list[dict[str, Any]], bool]:
        """Check every grad, re-bind the views' grads and state; the kernel's groups, and
        whether the step would write an inference tensor."""
        mirrors = self.mirrors
        tstate = opt.state
        kstate = self.kernel_state
        groups = []
        inference = False
        for gi, group in enumerate(opt.param_groups):
            views = []
            for pos, p in enumerate(group["params"]):
                m = mirrors[id(p)]
                if p.data_ptr() != m.ptr or p.shape != m.shape or p.dtype is not m.dtype:
                    # p.data = ... rebound the storage, or a view or resize_ changed the shape
                    # (or a view the dtype) at the same address: a new view of it (checked as
                    # at construction)
                    check_param(p, gi, pos, True)
                    kstate.pop(m.view, None)
                    m.bind(p)
                    m.grad = m.grad_view = None
                    m.set_state(None, {})
                v = m.view
                g = _bind_grad(m, p, gi, pos)
                ts = tstate.get(p)
                if ts is None:
                    kstate.pop(v, None)
                    m.set_state(None, {})
                elif ts is not m.state or len(ts) != len(m.state_views) or any(
                        ts.get(k) is not tv for k, (tv, _) in m.state_views.items()):
                    m.set_state(ts, {k: (tv, _kernel_value(tv)) for k, tv in ts.items()})
                    kstate[v] = {k: kv for k, (_, kv) in m.state_views.items()}
                if g is not None:
                    inference = inference or m.inference or m.state_inference
                views.append(v)
            kg = dict(group)
            kg["params"] = views
            groups.append(kg)
        return groups, inference

    def _publish(self, opt: Any) -> None:
        """Give the state the step made (as Tensors) to the torch side, sharing memory."""
        tstate = opt.state
        for group in opt.param_groups:
            for p in group["params"]:
                m = self.mirrors[id(p)]
                ks = self.kernel_state.get(m.view)
                if not ks:
                    continue
                views = m.state_views if m.state is not None else {}
                if len(views) == len(ks) and not any(
                        _republish(ks.get(k), old) for k, old in views.items()):
                    continue
                ts = tstate[p]
                new = {}
                for k, kv in ks.items():
                    old = views.get(k)
                    tv = _torch_value(kv) if _republish(kv, old) else old[0]
                    ts[k] = tv
                    new[k] = (tv, kv)
                m.set_state(ts, new)

    def load_state(self, state: Any) -> Any:
        """Loaded state (Tensors, cast for the kernels) as the torch state that shares it."""
        out = defaultdict(dict)
        for k, v in state.items():
            out[k] = _torch_value(v) if id(k) in self.mirrors else v
        return out


def call_views(op: str, names: tuple, lists: list) -> list | None:
    """The functionals' lists (``fastoptim.optim.functional``) with every torch tensor in them
    replaced by a fastoptim view of its memory (no copy: the kernel then updates the torch
    tensors in place); None when there is none.  A torch tensor the kernels cannot reach
    (another device, sparse, complex) is refused here, named."""
    if "torch" not in sys.modules:
        return None
    torch = sys.modules["torch"]
    if not any(isinstance(x, torch.Tensor) for lst in lists if lst is not None for x in lst):
        return None
    out = []
    for name, lst in zip(names, lists):
        if lst is None:
            out.append(None)
            continue
        views = []
        for i, x in enumerate(lst):
            if isinstance(x, torch.Tensor):
                if x.device.type != "cpu" or x.layout != torch.strided or x.is_complex():
                    raise TypeError(f"{op}: {name}[{i}] is a torch tensor on {x.device} with "
                                    f"layout {x.layout} and dtype {x.dtype}; fastoptim updates "
                                    "dense real CPU tensors only")
                x = _view(x)
            views.append(x)
        out.append(views)
    return out


def _bind_grad(m: _Mirror, p: Any, gi: int, pos: int) -> Any:
    """Point the view's grad at a view of ``p.grad`` as it is now (checked when new); returns
    ``p.grad``."""
    v = m.view
    g = p.grad
    if g is None:
        v.grad = None
    elif (g is not m.grad or g.data_ptr() != m.grad_ptr or g.shape != m.grad_shape
          or g.dtype is not m.dtype):
        _check_grad(p, g, gi, pos)
        m.grad = g
        m.grad_ptr, m.grad_shape = g.data_ptr(), g.shape
        m.grad_view = _view(g)
        v.grad = m.grad_view
    elif v.grad is not m.grad_view:
        v.grad = m.grad_view
    return g


def _check_grad(p: Any, g: Any, gi: int, pos: int) -> None:
    torch = sys.modules["torch"]
    where = _where(gi, pos)
    if g.layout != torch.strided:
        raise RuntimeError(f"fastoptim does not support sparse gradients ({where})")
    if g.device.type != "cpu":
        raise RuntimeError(f"the grad of {where} is on device '{g.device}'; fastoptim "
                           "optimizes CPU tensors only")
    if g.shape != p.shape:
        raise RuntimeError(f"the grad of {where} has shape {list(g.shape)}, but the parameter "
                           f"has shape {list(p.shape)}")
    if g.dtype != p.dtype:
        raise RuntimeError(f"the grad of {where} has dtype {g.dtype}, but the parameter has "
                           f"dtype {p.dtype}")
    if not g.is_contiguous():
        raise RuntimeError(f"the grad of {where} is not contiguous; fastoptim reads contiguous "
                           "grads only")
    if g.is_neg():
        # torch._neg_view: the memory holds -g; the kernels would read it as g
        raise RuntimeError(f"the grad of {where} is a lazily negated view (is_neg()); "
                           "fastoptim reads a grad's memory as is: call .resolve_neg() on it")


def _republish(kv: Any, old: tuple | None) -> bool:
    """Whether the kernel state value ``kv`` needs a new torch value: it is not the one
    ``old`` = (torch value, kernel value) mirrors, or it is a list or dict, which the step
    may have changed in place (LBFGS pops and appends its history lists)."""
    return old is None or old[1] is not kv or isinstance(kv, (list, dict))


def _kernel_value(v: Any) -> Any:
    """A torch state value as what the kernel reads (a view for tensors, recursively)."""
    if is_torch_tensor(v):
        if v.device.type != "cpu" or v.layout != sys.modules["torch"].strided:
            raise ValueError(f"optimizer state must be dense CPU tensors, got one on "
                             f"{v.device} with layout {v.layout}")
        if not v.is_contiguous():
            raise ValueError("optimizer state must be contiguous tensors (the kernel updates "
                             "them in place), got a non-contiguous one")
        if v.is_neg():
            raise ValueError("optimizer state must not be lazily negated views (is_neg(): the "
                             "kernel updates the memory as is); call .resolve_neg() on it")
        return _view(v)
    if isinstance(v, dict):
        return {k: _kernel_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_kernel_value(x) for x in v)
    return v


def _torch_value(v: Any) -> Any:
    """A kernel state value (Tensors, recursively) as torch tensors over the same memory."""
    if isinstance(v, Tensor):
        return sys.modules["torch"].from_dlpack(v)
    if isinstance(v, dict):
        return {k: _torch_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_torch_value(x) for x in v)
    return v
