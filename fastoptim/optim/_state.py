"""How optimizer state is made and loaded: new state packed per group, loaded state converted.

Why it exists: both the classes (lazy first-step state, Adagrad's eager state, SGD's new
momentum buffers) and ``load_state_dict`` (dicts from torch.optim or from us, with numbers,
numpy arrays, torch tensors or Tensors as values) need the same few conversions, and none of
them is part of the public functional API (``fastoptim.optim.functional``), which only computes.

* ``_packed_like`` / ``_fresh_state``: new state arrays of one dtype laid out back to back in one
  buffer, each placed to stream well next to its param (the measurements are below).
* ``_cast_step`` / ``_cast_array`` / ``_cast_value``: a loaded value as the 0-dim float32 step
  counter or as a state array of its param's dtype (foreign memory copied, ours aliased as torch's
  no-op ``.to()`` aliases).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import numpy as np

import fastoptim
from fastoptim import Tensor

# Packed state layout (see _packed_like).  Measured on a 16M-element param, 1 thread: RMSprop ran
# 15-20% slower with its state array 48 or 64 bytes past the param modulo 4 KiB than half a page
# away (loads of p then falsely depend on stores to the state at the same address bits, "4K
# aliasing"), and half a page was also ~10% faster than the same offset; Adam with both state
# arrays half a page from the param was as fast as any spread tried, and 7% faster than one
# third and two thirds of a page.
_PAGE = 4096
_STAGGER = _PAGE // 2   # a large view starts this far past its param, modulo a page
_STAGGER_MIN = 4096     # arrays at least this big (bytes) are placed by page offset
_LINE = 64              # smaller ones start on their own cache line


def _packed_like(like, fill=0.0):
    """New C-contiguous state arrays shaped and typed like each of ``like`` (params), filled
    with ``fill`` (left uninitialised when None): Tensors for Tensor-likes (with ``_np``), numpy
    arrays otherwise.

    Why packed: the arrays of one dtype are views laid out in order in one buffer. A kernel step
    streams each param's p, g and state; state that follows itself in memory streams faster
    than arrays scattered between other allocations (Adam, 1000 params of 1024 elements: about
    5% of the step). Where each view starts matters too: one of at least ``_STAGGER_MIN`` bytes
    starts half a page past its param's address, modulo a page (see the measurements above); a
    smaller one starts on a cache line. The padding costs less than a page per view. Each view
    is an ordinary C-contiguous array; the buffer lives as long as any of its views.
    """
    arrays = [np.asarray(getattr(p, "_np", p)) for p in like]
    out = [None] * len(arrays)
    by_dtype = {}
    for i, arr in enumerate(arrays):
        by_dtype.setdefault(np.dtype(arr.dtype), []).append(i)
    for dtype, idx in by_dtype.items():
        size = dtype.itemsize
        # (where, modulo what) each view must start: at most `modulo` bytes of padding before it
        places = [(arrays[i].__array_interface__["data"][0] + _STAGGER, _PAGE)
                  if arrays[i].nbytes >= _STAGGER_MIN else (0, _LINE) for i in idx]
        bound = sum(arrays[i].nbytes + modulo for i, (_, modulo) in zip(idx, places))
        raw = np.empty(-(-bound // size), dtype)
        base = raw.__array_interface__["data"][0]
        offsets, cur = [], 0
        for i, (want, modulo) in zip(idx, places):
            arr = arrays[i]
            # the next position at or after cur that is congruent to want, in whole elements
            cur += (want - (base + cur)) % modulo // size * size
            offsets.append(cur // size)
            cur += arr.nbytes
        if fill is not None:
            raw.fill(fill)
        for i, off in zip(idx, offsets):
            out[i] = raw[off:off + arrays[i].size].reshape(arrays[i].shape)
    if any(hasattr(p, "_np") for p in like):
        import fastoptim  # lazily: the Tensor module imports the optimizers, not vice versa

        out = [fastoptim.from_numpy(a) if hasattr(p, "_np") else a for p, a in zip(like, out)]
    return out


def _new_step(value: float = 0.0) -> Tensor:
    """A fresh ``state['step']``: a 0-dim float32 Tensor, as torch stores it."""
    return fastoptim.tensor(float(value), dtype=fastoptim.float32)


def _fresh_state(
    state: dict, params: list, start: int, keys: tuple[str, ...],
    fill: float | tuple[float, ...] = 0.0, with_grad_only: bool = True,
    scalars: frozenset[str] = frozenset(),
) -> dict[Any, dict[str, Tensor]]:
    """The lazy first state of every param of ``params[start:]`` that has a grad (any param
    unless ``with_grad_only``: Adagrad's eager state) and no state yet, made at once:
    ``{param: {"step": 0, key: tensor filled with fill, ...}}``, in torch's key order
    (``step``, then ``keys``).  ``fill`` is one value for every key or one per key; a key in
    ``scalars`` holds one 0-dim float32 tensor per param (torch's ``torch.tensor(x)`` state:
    NAdam's ``mu_product``), the others arrays like the params.

    Made at once so that it is packed (see ``_packed_like``): each key's tensors
    back to back in one buffer, and the step counters in another, instead of one allocation
    per tensor scattered between the params'. The classes call it when ``_collect`` first
    stops at a param without state, and take each param's entry when they reach it.
    """
    todo = list(dict.fromkeys(
        p for p in islice(params, start, None)
        if (p.grad is not None or not with_grad_only) and not state.get(p)
    ))
    if not todo:
        return {}
    steps = np.zeros(len(todo), np.float32)
    fills = fill if isinstance(fill, tuple) else (fill,) * len(keys)
    columns = [_scalars(len(todo), f) if key in scalars else _packed_like(todo, f)
               for key, f in zip(keys, fills)]
    return {
        p: {"step": fastoptim.from_numpy(steps[j:j + 1].reshape(())),
            **{key: col[j] for key, col in zip(keys, columns)}}
        for j, p in enumerate(todo)
    }


def _scalars(n: int, fill: float) -> list[Tensor]:
    """``n`` fresh 0-dim float32 Tensors holding ``fill`` (rounded to float32, as torch's
    ``torch.tensor(fill)``), packed in one buffer."""
    buf = np.full(n, fill, np.float32)
    return [fastoptim.from_numpy(buf[j:j + 1].reshape(())) for j in range(n)]


def _is_foreign_array(value: Any) -> bool:
    # A torch tensor (recognised without importing torch) or a numpy array/scalar.
    return isinstance(value, (np.ndarray, np.generic)) or (
        hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy")
    )


def _as_numpy(value: Any) -> np.ndarray:
    """Any array-like (fastoptim Tensor, torch tensor, numpy, number) as a numpy array."""
    if isinstance(value, Tensor):
        return value._np
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _cast_step(value: Any) -> Any:
    """Loaded ``step`` -> 0-dim float32 Tensor (torch converts numbers in ``__setstate__``)."""
    if isinstance(value, Tensor) and value.dim() == 0 and value.dtype is fastoptim.float32:
        return value  # torch's .to() is a no-op here too: the loaded state aliases the caller's
    arr = _as_numpy(value)
    if arr.size != 1:
        raise ValueError(f"state 'step' must hold one number, but has shape {tuple(arr.shape)}")
    return _new_step(float(arr.reshape(())))


def _cast_array(param: Tensor, value: Any) -> Tensor:
    """A loaded state array as a fastoptim Tensor with the param's dtype (if floating)."""
    if isinstance(value, Tensor):
        if param.is_floating_point() and value.dtype is not param.dtype:
            return value.to(param.dtype)
        return value  # same dtype: aliased, exactly like torch's no-op .to()
    arr = _as_numpy(value)
    dtype = param._np.dtype if param.is_floating_point() else arr.dtype
    # Foreign memory is copied: our kernels write in place and need owned, contiguous arrays.
    return fastoptim.from_numpy(np.array(arr, dtype=dtype, order="C", copy=True))


def _cast_value(param: Tensor, value: Any, key: Any = None) -> Any:
    """torch's recursive ``_cast`` for state of unknown layout (user subclasses)."""
    if key == "step" and (isinstance(value, Tensor) or _is_foreign_array(value)):
        return _cast_step(value)
    if isinstance(value, Tensor) or _is_foreign_array(value):
        return _cast_array(param, value)
    if isinstance(value, dict):
        return {k: _cast_value(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_value(param, v) for v in value)
    return value  # numbers, None, str (torch would mangle a str; we keep it)
