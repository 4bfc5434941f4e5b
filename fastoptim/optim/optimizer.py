"""The ``Optimizer`` base class: param groups, lazy state, hooks and state dicts.

This file exists so that every optimizer class (and any user subclass written against
``torch.optim.Optimizer``) gets torch 2.13's bookkeeping -- construction checks and their exact
messages, ``state_dict``/``load_state_dict`` layout, hooks, ``repr``, pickling -- while the
numbers are computed in one C call per run of equal groups.

How a class's ``step`` reaches C (``_step.grouped_step``, shared by the built-in classes and
driven by each one's row in ``_descriptions``): runs of consecutive groups with equal settings
are merged (``_batched_groups``), and each run is updated. The steady-state shortcut
(``_optim.group_step``) reads params, grads and state straight from the group and
``self.state`` at C level and declines, having written nothing, when there is state to create
or anything unusual. Then the general path runs, torch's: the lists are collected
(``_collect_lazy`` here, making the lazy state of new params, packed by
``_state._fresh_state``, installed only once the kernel has succeeded) and ``_step.run`` calls
the kernel.

Two places deliberately go beyond torch:

* ``load_state_dict`` accepts dicts written by ``torch.optim`` (values may be torch tensors,
  numpy arrays, fastoptim Tensors or Python numbers), and our ``state_dict()`` loads into
  ``torch.optim`` after ``torch.as_tensor`` on each array.
* Loading is strict and atomic: for the built-in optimizers every state array must have its
  parameter's shape and the state keys must fit the optimizer kind; nothing is installed
  until everything has been checked and converted.

The hot path (``step`` with no hooks, ``zero_grad``) is kept to a couple of attribute reads per
parameter: with a 6 µs budget for a whole training iteration, nothing here may copy, allocate
per parameter beyond list appends, or enter a profiler context.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from copy import deepcopy
from itertools import chain
from typing import Any, Callable

import numpy as np

import fastoptim
from fastoptim import Tensor
from fastoptim._C._optim import StepCache, _batch_groups, _collect

from . import _torch_params
from ._state import _as_numpy, _cast_array, _cast_step, _cast_value, _new_step

__all__ = [
    "Optimizer",
    "register_optimizer_step_post_hook",
    "register_optimizer_step_pre_hook",
    "required",
]

# Hooks shared by every optimizer instance (torch's module-level registries).
_global_optimizer_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_optimizer_post_hooks: OrderedDict[int, Callable] = OrderedDict()

# torch's list, printed in the fused-dtype error; kept so the message is byte-identical.
_FUSED_DEVICES = ["mps", "cuda", "xpu", "hpu", "cpu", "mtia", "privateuseone"]


class _RequiredParameter:
    """Sentinel for a hyperparameter every param group must set (no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class RemovableHandle:
    """Handle returned by every ``register_*_hook``; ``remove()`` unregisters the hook.

    It holds its registry weakly so that a forgotten handle keeps no optimizer alive.
    """

    next_id = 0

    def __init__(self, hooks_dict: dict) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1

    def remove(self) -> None:
        hooks_dict = self.hooks_dict_ref()
        if hooks_dict is not None and self.id in hooks_dict:
            del hooks_dict[self.id]

    def __enter__(self) -> RemovableHandle:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs) -> None | (args, kwargs)`` for all optimizers."""
    handle = RemovableHandle(_global_optimizer_pre_hooks)
    _global_optimizer_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs) -> None`` to run after every optimizer's step."""
    handle = RemovableHandle(_global_optimizer_post_hooks)
    _global_optimizer_post_hooks[handle.id] = hook
    return handle


def _typename(obj: Any) -> str:
    # torch.typename's rules, with our Tensor.type() ('fastoptim.FloatTensor') for tensors.
    if isinstance(obj, Tensor) or (hasattr(obj, "type") and hasattr(obj, "is_leaf")):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    if module in {"", "builtins"}:
        return qualname
    return module + "." + qualname


def _use_grad_for_differentiable(func: Callable) -> Callable:
    """Run ``step`` with grad mode = ``defaults['differentiable']`` (off, normally).

    The update must not be recorded by autograd; the closure re-enables grad itself.
    """
    from fastoptim._C._tensor import _swap_grad_mode

    @functools.wraps(func)
    def _use_grad(self, *args, **kwargs):
        prev = _swap_grad_mode(self.defaults["differentiable"])
        try:
            return func(self, *args, **kwargs)
        finally:
            _swap_grad_mode(prev)

    # profile_hook_step calls the body directly (one Python frame less on every step)
    _use_grad._fo_step_body = func
    return _use_grad


def _check_fused_flags(fused, foreach, differentiable) -> None:
    """torch's flag-combination errors, in its order, for the optimizers that take ``fused``."""
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _device_dtype_check_for_fused(p: Tensor) -> None:
    # Kept for parity with torch's lazy check; every fastoptim Tensor lives on the CPU.
    if not p.is_floating_point():
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of "
            f"supported devices: {_FUSED_DEVICES} but {p.dtype} and cpu"
        )


def _to_scalar(x: Any) -> Any:
    """A 1-element Tensor hyperparameter becomes 0-dim (torch squeezes tensor betas)."""
    if isinstance(x, Tensor) and x.dim() != 0:
        return fastoptim.from_numpy(np.array(x._np.reshape(()), copy=True))
    return x


def _check_layout(state_dict: Any) -> None:
    """The shape of an optimizer state dict, checked before anything reads it: a dict with
    ``'state'`` (a dict) and ``'param_groups'`` (a list of dicts, each with a ``'params'``
    list). A missing key raises torch's KeyError; a wrong type a TypeError naming it."""
    if not isinstance(state_dict, dict):
        raise TypeError("state_dict must be a dict with 'state' and 'param_groups', "
                        f"but got {type(state_dict).__name__}")
    state, groups = state_dict["state"], state_dict["param_groups"]
    if not isinstance(state, dict):
        raise TypeError("loaded state dict's 'state' must be a dict of per-parameter state, "
                        f"but got {type(state).__name__}")
    if not isinstance(groups, (list, tuple)):
        raise TypeError("loaded state dict's 'param_groups' must be a list of dicts, "
                        f"but got {type(groups).__name__}")
    for i, g in enumerate(groups):
        if not isinstance(g, dict) or not isinstance(g.get("params"), (list, tuple)):
            raise TypeError(f"loaded state dict's param_groups[{i}] must be a dict with a "
                            f"'params' list, but got {type(g).__name__}"
                            + (f" with params {g.get('params')!r}" if isinstance(g, dict)
                               else ""))


class Optimizer:
    r"""Base class for all optimizers, with torch 2.13's API and behaviour.

    Args:
        params (iterable): an iterable of Tensors, of ``(name, Tensor)`` pairs (as from
            ``named_parameters()``), or of dicts defining parameter groups.
        defaults (dict): default hyperparameters, used where a group does not set them.

    Parameters must come in a deterministic order (not a set): state dicts refer to them by
    position. ``state`` is a ``defaultdict(dict)`` keyed by the parameter objects themselves.

    ``load_state_dict`` is stricter than torch's: see the module docstring.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._patch_step_function()

        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be "
                "an iterable of Tensors or dicts, but got " + _typename(params)
            )

        self.state: defaultdict[Any, Any] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        # torch params: their kernel views (_torch_params); None over fastoptim Tensors
        self._torch_params: _torch_params.TorchParams | None = None
        # the shared step's record of each run of groups' last gather (_step.grouped_step), one
        # made ahead so that a one-group step looks nothing up; never pickled or copied
        self._step_caches: list[StepCache] = [StepCache()]

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        # Hooks are deliberately not pickled (nor deep-copied), as in torch.
        return {
            "defaults": self.defaults,
            "state": self.state,
            "param_groups": self.param_groups,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in (
            "_optimizer_step_pre_hooks",
            "_optimizer_step_post_hooks",
            "_optimizer_state_dict_pre_hooks",
            "_optimizer_state_dict_post_hooks",
            "_optimizer_load_state_dict_pre_hooks",
            "_optimizer_load_state_dict_post_hooks",
        ):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        if "_step_caches" not in self.__dict__:   # unpickled or copied: records start empty
            self._step_caches = [StepCache()]
        if "_torch_params" not in self.__dict__:  # unpickled: views are not pickled
            self._torch_params = None
            torch_ps = [p for g in self.param_groups for p in g["params"]
                        if _torch_params.is_torch_tensor(p)]
            if torch_ps:
                self._torch_params = _torch_params.TorchParams()
                for p in torch_ps:
                    self._torch_params.add(p)
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)

    def _steps_to_tensors(self) -> None:
        """Old dicts stored ``step`` (and the 0-dim state a description names: NAdam's
        ``mu_product``, ASGD's ``eta`` and ``mu``) as a number; the kernels need a 0-dim
        float32 Tensor, as torch's ``__setstate__`` makes."""
        tp = self.__dict__.get("_torch_params")
        d = self._DESCRIPTION
        keys = ("step", *sorted(d.scalar_keys)) if d is not None else ("step",)
        for s in self.state.values():
            for k in keys:
                if isinstance(s, dict) and k in s and not isinstance(s[k], Tensor):
                    if tp is not None and _torch_params.is_torch_tensor(s[k]):
                        continue  # over torch params the state is torch's (a view of our kind)
                    s[k] = _new_step(float(s[k]))
                    if tp is not None:
                        s[k] = tp.torch_state(s[k])

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append("\n")
            lines.append(f"Parameter Group {i}\n")
            for key in sorted(group.keys()):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}\n")
        lines.append(")")
        return "".join(lines)

    # ------------------------------------------------------------------ step hooks
    def _optimizer_step_code(self) -> None:
        """Entry point for profilers, called after each hooked ``step`` (a no-op)."""

    @staticmethod
    def profile_hook_step(func: Callable) -> Callable:
        """Wrap ``step`` so that the global and per-optimizer step hooks run around it.

        torch also opens a profiler ``record_function`` here. We have no profiler, and with no
        hook registered the wrapper is a straight call: it must cost next to nothing.
        """

        from fastoptim._C._tensor import _swap_grad_mode

        body = getattr(func, "_fo_step_body", None)  # set by _use_grad_for_differentiable

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            self = args[0]
            if not (
                self._optimizer_step_pre_hooks
                or self._optimizer_step_post_hooks
                or _global_optimizer_pre_hooks
                or _global_optimizer_post_hooks
            ):
                if self._torch_params is not None:
                    return self._torch_params.run_step(self, func, args, kwargs)
                if body is None:
                    return func(*args, **kwargs)
                # func is body under _use_grad_for_differentiable: do its grad switch inline
                prev = _swap_grad_mode(self.defaults["differentiable"])
                try:
                    return body(*args, **kwargs)
                finally:
                    _swap_grad_mode(prev)
            for pre_hook in chain(
                _global_optimizer_pre_hooks.values(), self._optimizer_step_pre_hooks.values()
            ):
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(
                            f"{func} must return None or a tuple of (new_args, new_kwargs), "
                            f"but got {result}."
                        )
            if self._torch_params is not None:
                out = self._torch_params.run_step(self, func, args, kwargs)
            else:
                out = func(*args, **kwargs)
            self._optimizer_step_code()
            for post_hook in chain(
                self._optimizer_step_post_hooks.values(), _global_optimizer_post_hooks.values()
            ):
                post_hook(self, args, kwargs)
            return out

        return wrapper

    def _fused_dtype_check_once(self, group: dict[str, Any]) -> None:
        """torch's lazy ``fused`` check (SGD, Adagrad): once, at the first step, on the params
        that have a grad."""
        if group["fused"] and getattr(self, "_need_device_dtype_check_for_fused", True):
            for p in group["params"]:
                if p.grad is not None:
                    _device_dtype_check_for_fused(p)
            self._need_device_dtype_check_for_fused = False

    def _patch_step_function(self) -> None:
        # Wrap the class's step once (not per instance), exactly where torch does.
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{self.__class__.__name__}.zero_grad"
        if not getattr(self.__class__.step, "hooked", None):
            self.__class__.step = self.profile_hook_step(self.__class__.step)
            self.__class__.step.hooked = True

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs) -> None | (new_args, new_kwargs)``."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs) -> None``, run after ``step``."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    @staticmethod
    def _register(hooks: OrderedDict, hook: Callable, prepend: bool) -> RemovableHandle:
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Register ``hook(optimizer) -> None``, run before ``state_dict`` packs anything."""
        return self._register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Register ``hook(optimizer, state_dict) -> state_dict | None``."""
        return self._register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Register ``hook(optimizer, state_dict) -> state_dict | None`` (gets a shallow copy)."""
        return self._register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Register ``hook(optimizer) -> None``, run after the loaded state is installed."""
        return self._register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """Return ``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index]}]}``.

        Params are numbered in order of first appearance across groups. State tensors are the
        live ones (no copy), as in torch; deep-copy the result if you keep training.
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)

        param_mappings: dict[int, int] = {}
        start_index = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start_index):
                param_mappings.setdefault(id(p), i)
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {
            (param_mappings[id(k)] if id(k) in param_mappings else k): v
            for k, v in self.state.items()
        }
        state_dict = {"state": packed_state, "param_groups": param_groups}

        for post_hook in self._optimizer_state_dict_post_hooks.values():
            hook_result = post_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        return state_dict

    # A built-in optimizer's row in ``_descriptions`` (None for user subclasses).
    _DESCRIPTION = None

    # True for an optimizer whose step body calls the closure itself, maybe several times
    # (LBFGS); over torch params _torch_params then runs each call on the torch face
    _CLOSURE_DRIVEN = False

    def _expected_state_keys(self, group: dict[str, Any]):
        """``(required, optional)`` per-param state keys for ``group``, or None if unknown.

        Built-in optimizers read their description; with None (user subclasses) loading checks
        neither keys nor shapes, as torch does.
        """
        d = self._DESCRIPTION
        return None if d is None else d.expected_state_keys(group)

    def _check_and_cast_state(self, param, value, gi: int, pos: int, key_id, group) -> Any:
        """Validate one param's loaded state against the optimizer kind and convert it."""
        spec = self._expected_state_keys(group)
        if spec is None:
            return _cast_value(param, value)
        where = f"parameter {pos} of parameter group {gi} (state dict index {key_id!r})"
        if not isinstance(value, dict):
            raise ValueError(  # noqa: TRY004 (a bad value in the dict, as the errors below)
                f"loaded state dict has state of type {type(value).__name__} for {where}; "
                f"{self.__class__.__name__} expects a dict of state tensors"
            )
        if len(value) == 0:
            return {}  # no state yet: created lazily at the next step with a grad
        required_keys, optional_keys = spec
        allowed = tuple(required_keys) + tuple(optional_keys)
        for k in value:
            if k not in allowed:
                raise ValueError(
                    f"loaded state dict has unexpected state {k!r} for {where}; "
                    f"{self.__class__.__name__} expects {list(allowed)}"
                )
        for k in required_keys:
            if k not in value:
                raise ValueError(
                    f"loaded state dict is missing state {k!r} for {where}; "
                    f"{self.__class__.__name__} expects {list(allowed)}"
                )
        out = {}
        for k, v in value.items():
            if k == "step":
                out[k] = _cast_step(v)
            elif v is None:
                out[k] = None  # old SGD dicts: a None buffer means "first step"
            else:
                shape = tuple(_as_numpy(v).shape)
                if k in self._DESCRIPTION.scalar_keys:   # a 0-dim tensor (NAdam's mu_product)
                    if shape != ():
                        raise ValueError(
                            f"loaded state dict has state {k!r} of shape {shape} for {where}, "
                            "but it must be a 0-dim tensor"
                        )
                elif shape != tuple(param.shape):
                    raise ValueError(
                        f"loaded state dict has state {k!r} of shape {shape} for {where}, "
                        f"but the parameter has shape {tuple(param.shape)}"
                    )
                out[k] = _cast_array(param, v)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state produced by ``state_dict()`` here or by ``torch.optim``.

        Hyperparameters come from the loaded groups (only ``params`` are kept). Floating state
        is cast to each param's dtype; ``step`` becomes a 0-dim float32 Tensor (numbers from
        old dicts included). Unlike torch, state shapes and keys are checked for the built-in
        optimizers, and on any error the optimizer is left exactly as it was.

        Create an LR scheduler *before* calling this: constructing one rewrites ``lr``.
        """
        _check_layout(state_dict)
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            hook_result = pre_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
                _check_layout(state_dict)

        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])

        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )

        # Positional matching, as torch: saved index -> (param, group number, position).
        id_map: dict[Any, tuple] = {}
        for gi, (g, s) in enumerate(zip(groups, saved_groups)):
            for pos, (k, p) in enumerate(zip(s["params"], g["params"])):
                id_map.setdefault(k, (p, gi, pos))

        # The loaded hyperparameters win; the state spec depends on them (amsgrad, momentum..).
        param_groups = []
        for g, ng in zip(groups, saved_groups):
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in ng:
                ng["param_names"] = g["param_names"]
            param_groups.append(ng)

        # Build everything before touching self, so that any error leaves us unchanged.
        tp = self._torch_params
        state: defaultdict[Any, Any] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param, gi, pos = id_map[k]
                # over torch params, the cast reads the param's kernel view (its dtype)
                like = param if tp is None else tp.view_of(param)
                state[param] = self._check_and_cast_state(like, v, gi, pos, k, param_groups[gi])
            else:
                state[k] = v
        if tp is not None:
            state = tp.load_state(state)  # torch tensors sharing the cast arrays

        saved = dict(self.__dict__)
        try:
            self.__setstate__({"state": state, "param_groups": param_groups})
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    # ------------------------------------------------------------------ grads and groups
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every optimized Tensor.

        With ``set_to_none`` (the default) grads become None, so params that get no gradient
        in the next backward are skipped by ``step``. Otherwise each grad is detached and
        zeroed in place (the same Tensor object is kept), and zero grads are still stepped.
        """
        if set_to_none:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad = None
            return
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.grad_fn is not None and hasattr(g, "detach_"):
                    g.detach_()
                elif g.grad_fn is not None:
                    g = p.grad = g.detach()
                else:
                    g.requires_grad_(False)
                g.zero_()

    def step(self, closure: Callable | None = None):
        """Perform one optimization step; subclasses implement it."""
        raise NotImplementedError

    def _collect_lazy(self, params, keys, outs, params_with_grad, grads, make):
        """``_collect`` over a whole group, with the lazy first state of the params that have
        none: ``make(i)`` makes it (packed, ``_state._fresh_state``) for every such param from
        index ``i`` on, the first time one is met, and its arrays join the lists. The new state
        is returned, NOT installed: the caller installs it (``_install``) once the step has
        succeeded, so that a step that fails leaves no state behind (torch's would)."""
        state = self.state
        fresh = {}
        # C-level collection; it stops at a param whose state must be made first, and resumes
        # there over the state as it will be (the new state not yet installed)
        i = 0
        while (i := _collect(params, state, i, keys, True, params_with_grad, grads,
                             outs)) >= 0:
            new = make(i)
            if params[i] not in new:
                raise AssertionError(f"no first state was made for parameter {i}")
            fresh.update(new)
            state = {**self.state, **fresh}
        return fresh

    def _install(self, fresh) -> None:
        """Install the first state ``_collect_lazy`` made, after a successful step."""
        if fresh:
            state = self.state
            for p, st in fresh.items():
                state[p].update(st)

    def _batched_groups(self, names: tuple[str, ...]) -> list[dict[str, Any]]:
        """``param_groups`` with each run of consecutive groups whose values under ``names``
        are equal merged into one group: the first group's settings over all the run's params,
        in order. ``step`` then makes one kernel call per run instead of one per group.

        ``names`` must cover every setting the update or ``_init_group`` reads. The kernels
        update each tensor independently with its own step count, so a merged call computes
        exactly what the separate calls would; state is still created param by param in group
        order. Checked on every step: edits to a group (an LR scheduler's ``lr``) take effect
        at once (the last result is returned again while no group changed, see
        ``_optim._batch_groups``). Values are compared only when plain (numbers, flags, None,
        and tuples of those, such as ``betas``); a group holding anything else (a Tensor lr, a numpy
        scalar) is never merged, so no value's own ``==`` runs. Equality is ``==``: ``1``,
        ``1.0`` and ``True`` reach the kernel as the same double; ``0.0`` and ``-0.0`` also
        count as equal (they could differ only in the sign of an exactly-zero result). The
        loop is ``_optim._batch_groups``, at C level: it runs over every group on every step.
        """
        return _batch_groups(self.param_groups, names, self._step_caches[0])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (e.g. unfrozen layers while fine-tuning); missing keys default."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")

        # Everything is checked on local values first: a refused group leaves the optimizer
        # and the caller's dict as they were (torch's edits the dict before its checks).
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. "
                "Please use a list instead."
            )
        else:
            params = list(params)

        tensors = []
        names = []
        for param in params:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        if names and len(names) != len(tensors):
            raise ValueError(
                "all optimizer params should be with/without names. "
                "Some param names are missing"
            )
        has_names = bool(names) or "param_names" in param_group

        differentiable = self.defaults.get("differentiable", None)
        gi = len(self.param_groups)
        torch_flags = [_torch_params.is_torch_tensor(p) for p in tensors]
        if any(torch_flags):
            self._check_torch_group(tensors, torch_flags, gi, differentiable)
        elif self._torch_params is not None and tensors:
            raise TypeError(
                "an optimizer cannot mix torch and fastoptim tensors: parameter 0 of parameter "
                f"group {gi} is {_typename(tensors[0])}, but the optimizer's params are torch "
                "tensors (convert with torch.from_dlpack / fastoptim.from_dlpack)"
            )
        for param in (() if any(torch_flags) else tensors):
            if not isinstance(param, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, "
                    "but one of the params is " + _typename(param)
                )
            if not differentiable and not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        missing = {}
        for name, default in self.defaults.items():
            if name not in param_group:
                if default is required:
                    raise ValueError(
                        "parameter group didn't specify a value of required optimization "
                        f"parameter {name}"
                    )
                missing[name] = default

        # Tensors hash by identity, so sets here compare objects, never values.
        if len(tensors) != len(set(tensors)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )

        param_set: set = set()
        for group in self.param_groups:
            param_set.update(group["params"])
            if has_names != ("param_names" in group):
                current = "with names" if has_names else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {current} to the optimizer"
                )
        if not param_set.isdisjoint(tensors):
            raise ValueError("some parameters appear in more than one parameter group")

        param_group["params"] = tensors
        if names:
            param_group["param_names"] = names
        param_group.update(missing)
        if any(torch_flags):
            if self._torch_params is None:
                self._torch_params = _torch_params.TorchParams()
            for p in tensors:
                self._torch_params.add(p)
        self.param_groups.append(param_group)

    def _check_torch_group(self, tensors, torch_flags, gi, differentiable) -> None:
        """torch params: all of one kind, and each one the kernels can update in place."""
        mixed = not all(torch_flags) or (
            self._torch_params is None and len(self.param_groups) > 0
        )
        if mixed:
            pos = torch_flags.index(False) if not all(torch_flags) else 0
            raise TypeError(
                "an optimizer cannot mix torch and fastoptim tensors: parameter "
                f"{pos} of parameter group {gi} is {_typename(tensors[pos])}, unlike the "
                "others (convert with torch.from_dlpack / fastoptim.from_dlpack)"
            )
        for pos, p in enumerate(tensors):
            _torch_params.check_param(p, gi, pos, differentiable)
