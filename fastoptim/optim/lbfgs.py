r"""``LBFGS``: torch 2.13's L-BFGS (closure-driven, optional strong-Wolfe line search).

Why this file exists: LBFGS is not an elementwise update. A ``step(closure)`` runs up to
``max_iter`` iterations over ONE flat vector holding every param (torch's ``_gather_flat_grad``,
``_add_grad``, ``_directional_evaluate``), keeps a history of ``(y, s)`` pairs and calls the
closure many times. So it has no row in ``_descriptions`` (no kernel struct, no per-param state)
and does not use ``_grouped_step``.

Design: a line-by-line transcription of ``torch/optim/lbfgs.py`` (same branches, same order of
operations) where every vector is a flat numpy array of the params' dtype and every scalar that
torch keeps as a 0-dim tensor (``ys``, ``ro[i]``, ``al[i]``, ``H_diag``, ``gtd``) is a numpy scalar
of that dtype -- numpy's scalar promotion (NEP 50) then matches torch's 0-dim-tensor promotion,
so float32 runs compute their scalars in float32 exactly where torch does. The vector work is
five C kernels (``fastoptim._C._lbfgs``, csrc/optim_lbfgs.c), each one pass or one call where
torch makes several ops: ``gather`` (the flat grad into a reused vector, with ``max|g|``),
``pair`` (``y``, ``s``, ``y.s``, ``y.y``), ``gather_pair`` (the two in one pass, with ``q = -g``
and ``s.q``: what an iteration does after its closure, ahead of the next iteration's top),
``direction`` (the whole two-loop recursion, each axpy fused with the dot after it, then
``g.d``) and ``add_grad`` (every param, with ``max|d t|``). Per element they round as torch
does (``add_(x, alpha=a)`` is one fma); their dots sum in double. An iteration allocates
nothing once warm: vectors made during a step are recycled as the step drops them, and those
handed out in the state are recycled too once nothing but the optimizer can reach them
(``_Vectors``, ``_lbfgs.reclaim``): with a full history, the oldest pair's buffers take the
newest pair, a ring. A vector someone holds (a state Tensor kept, a view of it, a state dict)
is never written again, as torch's fresh tensors are not. The strong-Wolfe search is torch's
Python over numpy (its cost is the closure calls). The plain NumPy twins of the kernels are in
``_reference_lbfgs``.

State: as torch, everything lives in ``self.state[first param]`` with torch's keys (``d``, ``t``,
``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``n_iter``,
``func_evals``, ``al``); arrays and 0-dim scalars are stored as fastoptim Tensors, numbers as
numbers, so ``state_dict()`` loads into ``torch.optim.LBFGS`` after ``torch.as_tensor`` on each
tensor, and a dict written by torch loads here (the base class casts it to the param dtype).

Over torch params (``_torch_params``), ``_params`` is read through ``param_groups`` so that the
step body works on the kernel views swapped in for the step; the closure it is given re-binds
their grads after each call, and ``_params_written`` tells it whether to bump the versions.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import fastoptim
from fastoptim import Tensor
from fastoptim._C import _lbfgs

from ._torch_params import is_torch_tensor
from .optimizer import Optimizer, _to_scalar

__all__ = ["LBFGS"]


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """torch's ``_cubic_interpolate`` (from torch/optim polyinterp.lua), the same branches."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """torch's ``_strong_wolfe`` (from torch/optim lswolfe.lua): bracketing, then zoom with
    cubic interpolation. Returns ``(f_new, g_new, t, ls_func_evals)``."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket = [t]
            bracket_f = [f_new]
            bracket_g = [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev = tmp
        f_prev = f_new
        g_prev = g_new.copy()
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket = [0, t]
        bracket_f = [f, f_new]
        bracket_g = [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.copy()
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.copy()
            bracket_gtd[low_pos] = gtd_new

    t = bracket[low_pos]
    f_new = bracket_f[low_pos]
    g_new = bracket_g[low_pos]
    return f_new, g_new, t, ls_func_evals


class _Vectors:
    """The flat vectors a step writes in place: the spare ones, and those made this step.

    torch makes ``d`` and every history vector fresh each iteration (``prev_flat_grad`` it
    overwrites in place), so a user (or a second optimizer loaded from our state dict) who holds
    one sees its values forever.  Here no vector held outside is ever written again, and a
    vector is reused only once nothing but the optimizer can reach it:

    * one made during the current step is recycled as soon as the step drops it (``give``: the
      previous direction, the previous ``prev_flat_grad``, a pair evicted or rejected) -- the
      state has not seen it;
    * one from the state (handed out at the end of an earlier step) is recycled when the step
      drops it and ``reclaim`` (``_lbfgs.reclaim``) finds no reference to its memory but the
      optimizer's own list slot: the usual case, so once the history is full the oldest pair's
      buffers become the newest pair's (a ring) and a steady iteration allocates nothing.  A
      Tensor kept by a user, a ``numpy()`` view of it, a state dict listing it: each adds a
      reference, and that vector is left alone.

    New vectors come from ``spare`` before any allocation (``made`` counts the allocations).
    Each starts at its own offset within a 4 KiB page (``_place``): the passes stream three or
    four vectors at once, and two at the same offset modulo 4096 bytes make the CPU's loads from
    one wait on its stores to the other (4K aliasing: 10-15% of a recursion's time measured
    here with every vector at one offset; malloc's offsets, which differ from run to run, land
    anywhere between).  ``seal`` at the end of a step: everything still owned is in the state.
    """

    __slots__ = ("n", "dtype", "spare", "owned", "made", "pad", "slot")

    def __init__(self, n: int, dtype) -> None:
        self.n, self.dtype = n, np.dtype(dtype)
        self.spare: list[np.ndarray] = []
        self.owned: dict[int, np.ndarray] = {}   # made this step (the dict keeps them alive)
        self.made = 0
        self.pad = (4096 + 64) // self.dtype.itemsize   # room for any offset in a page
        self.slot = 0

    def _place(self, buf: np.ndarray) -> np.ndarray:
        """The vector inside ``buf`` (``n + pad`` elements) that starts at the next slot's
        offset: 320 bytes (five cache lines) further into the page than the last one's."""
        want = (self.slot * 320) % 4096
        self.slot += 1
        start = (want - buf.__array_interface__["data"][0]) % 4096 // self.dtype.itemsize
        return buf[start:start + self.n]

    def take(self) -> np.ndarray:
        if self.spare:
            a = self.spare.pop()
        else:
            a = self._place(np.empty(self.n + self.pad, self.dtype))
            self.made += 1
        self.owned[id(a)] = a
        return a

    def give(self, a) -> None:
        """``a`` is no longer used: reuse it if this step made it (never one from the state)."""
        if a is not None and self.owned.get(id(a)) is a:
            del self.owned[id(a)]
            self.spare.append(a)

    def reclaim(self, holder: list, i: int) -> None:
        """Drop ``holder[i]``, a Tensor from the state, and reuse its memory if nothing else
        can reach it (the caller holds no reference to its array any more)."""
        a = _lbfgs.reclaim(holder, i)
        if a is None or a.ndim != 1 or a.dtype != self.dtype:
            return
        if a.size == self.n + self.pad:   # one of ours (the owner of a placed vector)
            self.spare.append(self._place(a))
        elif a.size == self.n:            # a loaded state's own vector
            self.spare.append(a)

    def seal(self) -> None:
        self.owned.clear()
        del self.spare[_MAX_SPARE:]


# spare vectors kept between steps.  An iteration has four out (the gathered grad and the next
# pair's y, s, q, taken before the pair is known to be kept) before it frees the evicted pair,
# the previous d and prev_flat_grad; in a step's first iterations the previous d and
# prev_flat_grad are the state's, which come back only at the step's end: two more.
_MAX_SPARE = 6


class _History:
    """The curvature pairs: numpy arrays for the kernels, and torch's state lists of Tensors.

    ``dirs``/``stps``/``ro`` are what the kernels read, oldest first.  ``dir_ts``/``stp_ts``
    are the state's own ``old_dirs``/``old_stps`` lists, mutated in place as torch mutates its
    lists: their entries are the Tensors of the first ``handed`` pairs (those found in the
    state when the step began); an eviction pops from both, and ``publish`` appends the pairs
    made during the step (at the step's end, or when the closure raises -- the state then holds
    the history as torch's in-place lists do; not after the first iteration's ``reset``, whose
    new lists torch keeps local until the end).  ``ro``'s Tensors are made anew by
    ``publish``.
    """

    __slots__ = ("dirs", "stps", "ro", "dir_ts", "stp_ts", "handed", "fresh")

    def __init__(self, state, dtype) -> None:
        self.dir_ts, self.dirs = _state_list(state.get("old_dirs"), dtype)
        self.stp_ts, self.stps = _state_list(state.get("old_stps"), dtype)
        ro = state.get("ro")
        self.ro = None if ro is None else [_from_state(v, dtype) for v in ro]
        self.handed = 0 if self.dirs is None else len(self.dirs)
        self.fresh = False

    def reset(self) -> None:
        """torch's first iteration: new, empty lists."""
        self.dirs, self.stps, self.ro, self.dir_ts, self.stp_ts = [], [], [], [], []
        self.handed = 0
        self.fresh = True   # (torch's new lists reach the state only at the step's end)

    def evict_oldest(self, vec: _Vectors) -> None:
        """torch's ``old_dirs.pop(0); old_stps.pop(0); ro.pop(0)``, its vectors recycled."""
        if self.handed:
            del self.dirs[0], self.stps[0]
            vec.reclaim(self.dir_ts, 0)
            vec.reclaim(self.stp_ts, 0)
            self.handed -= 1
        else:
            vec.give(self.dirs.pop(0))
            vec.give(self.stps.pop(0))
        self.ro.pop(0)

    def publish(self, state) -> None:
        """The history into the state, with torch's keys (None where torch has None)."""
        if self.dirs is None:
            state["old_dirs"] = state["old_stps"] = state["ro"] = None
            return
        self.dir_ts.extend(_to_state(v) for v in self.dirs[self.handed:])
        self.stp_ts.extend(_to_state(v) for v in self.stps[self.handed:])
        self.handed = len(self.dirs)
        state["old_dirs"] = self.dir_ts
        state["old_stps"] = self.stp_ts
        state["ro"] = [_to_state(v) for v in self.ro]


def _state_list(lst, dtype):
    """``(tensors, arrays)`` of a history list from the state (``(None, None)`` if absent):
    the list itself when each entry is a Tensor over an array the kernels can read as it is,
    else a new list of Tensors over converted arrays (a state loaded in another dtype)."""
    if lst is None:
        return None, None
    arrays = [_from_state(v, dtype) for v in lst]
    if type(lst) is not list or not all(
            isinstance(v, Tensor) and v._np is a for v, a in zip(lst, arrays)):
        lst = [_to_state(a) for a in arrays]
    return lst, arrays


def _to_state(value):
    """A flat array or a dtype scalar as a fastoptim Tensor (torch keeps tensors there)."""
    if isinstance(value, np.ndarray):
        return fastoptim.from_numpy(value)
    if isinstance(value, np.generic):
        return fastoptim.from_numpy(np.array(value))
    return value


def _from_state(value, dtype):
    """The inverse: Tensors (ours, or loaded) as numpy arrays / scalars of ``dtype``."""
    if isinstance(value, Tensor):
        arr = value._np
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
        return arr[()] if arr.ndim == 0 else arr
    return value


class LBFGS(Optimizer):
    r"""L-BFGS, torch 2.13's (heavily inspired by minFunc), same iterates and state.

    Each ``step(closure)`` runs up to ``max_iter`` iterations. With ``g`` the flat gradient of
    all params, the direction is ``d = -H g`` where ``H`` is the limited-memory inverse-Hessian
    estimate from the last ``history_size`` pairs ``s = t d``, ``y = g_new - g_old`` (kept when
    ``y.s > 1e-10``), applied by the two-loop recursion with initial scale ``H_diag = y.s/y.y``::

        q = -g;  for i newest..oldest: a_i = rho_i s_i.q;  q -= a_i y_i
        r = H_diag q;  for i oldest..newest: b_i = rho_i y_i.r;  r += (a_i - b_i) s_i

    The first iteration uses ``d = -g`` and ``t = min(1, 1/|g|_1) lr``, later ones ``t = lr``;
    with ``line_search_fn='strong_wolfe'`` ``t`` comes from a strong-Wolfe search (c1=1e-4,
    c2=0.9) with cubic interpolation. Stops on ``max_iter``, ``max_eval`` closure calls,
    ``max|g| <= tolerance_grad``, or changes below ``tolerance_change``.

    Reference: Nocedal, "Updating quasi-Newton matrices with limited storage" (1980); Liu and
    Nocedal, "On the limited memory BFGS method for large scale optimization" (1989).

    Args:
        params: iterable of Tensors (one group only: LBFGS has no per-parameter options).
        lr (float): learning rate (default: 1).
        max_iter (int): maximal number of iterations per ``step`` (default: 20).
        max_eval (int): maximal number of closure calls per ``step`` (default: max_iter * 1.25).
        tolerance_grad (float): termination tolerance on first-order optimality (default: 1e-7).
        tolerance_change (float): termination tolerance on function value/parameter changes
            (default: 1e-9).
        history_size (int): update history size (default: 100).
        line_search_fn (str): ``'strong_wolfe'`` or None (default: None).

    Example:
        >>> opt = fastoptim.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); return loss
        >>> opt.step(closure)
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if (isinstance(lr, Tensor) or is_torch_tensor(lr)) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)

        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

        self._numel_cache = None
        self._vectors = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._numel_cache = None
        self._vectors = None

    # the step body calls the closure itself (over torch params: _torch_params re-binds the
    # grads after each call, and bumps the params' versions if _add_grad/_set_param ran)
    _CLOSURE_DRIVEN = True
    _params_written = False

    @property
    def _params(self) -> list:
        """The params the step reads and writes: over torch params, during a step, the
        kernel views ``_torch_params`` swaps into ``param_groups``."""
        return self.param_groups[0]["params"]

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(p.numel() for p in self._params)
        return self._numel_cache

    def _dtype(self):
        """The one dtype of every param (the flat vector has one)."""
        dtype = self._params[0]._np.dtype
        for p in self._params:
            if p._np.dtype != dtype:
                raise TypeError(
                    "LBFGS: every param must have the same dtype (fastoptim keeps them in one "
                    f"flat vector), got {dtype} and {p._np.dtype}"
                )
        return dtype

    def _scratch(self, dtype) -> _Vectors:
        v = self._vectors
        n = self._numel()
        if v is None or v.n != n or v.dtype != dtype:
            v = self._vectors = _Vectors(n, dtype)
        return v

    def _grads(self):
        """The params' grads as C-contiguous arrays (None for a param without one), and their
        sizes: what the gathering kernels read."""
        grads, numels = [], []
        for p in self._params:
            g = p.grad
            numels.append(p._np.size)
            if g is None:
                grads.append(None)
            else:
                ga = g._np
                grads.append(ga if ga.flags.c_contiguous else np.ascontiguousarray(ga))
        return grads, numels

    def _gather_flat_grad_into(self, flat: np.ndarray) -> float:
        """torch's ``_gather_flat_grad`` into ``flat`` (zeros for a param without a grad), one
        C call; returns ``max|flat|`` (torch's ``flat_grad.abs().max()``, NaN if one)."""
        return _lbfgs.gather(*self._grads(), flat)

    def _gather_flat_grad(self) -> np.ndarray:
        """All grads as one new flat vector (zeros for a param without a grad)."""
        flat = np.empty(self._numel(), self._dtype())
        self._gather_flat_grad_into(flat)
        return flat

    def _add_grad(self, step_size, update: np.ndarray) -> float:
        """``p += step_size * update[segment]`` for every param, in place, one C call; returns
        ``max|update * step_size|`` (torch's ``d.mul(t).abs().max()`` of the stop test)."""
        self._params_written = True
        return _lbfgs.add_grad([p._np for p in self._params], update, float(step_size))

    def _clone_param(self) -> list[np.ndarray]:
        return [p._np.copy() for p in self._params]

    def _set_param(self, params_data) -> None:
        self._params_written = True
        for p, pdata in zip(self._params, params_data, strict=True):
            np.copyto(p._np, pdata)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def step(self, closure: Callable):  # type: ignore[override]
        """Perform a single optimization step (up to ``max_iter`` iterations).

        Args:
            closure (Callable): a closure that reevaluates the model and returns the loss.
        """
        with fastoptim.no_grad():
            return self._step(closure)

    def _step(self, closure):
        if len(self.param_groups) != 1:
            raise AssertionError(
                f"Expected exactly one param_group, but got {len(self.param_groups)}"
            )
        user_closure = closure

        def closure():
            with fastoptim.enable_grad():
                return user_closure()

        group = self.param_groups[0]
        lr = _to_scalar(group["lr"])
        if isinstance(lr, Tensor):
            lr = lr._np[()]
        elif is_torch_tensor(lr):   # a numpy scalar of its dtype too: it promotes as torch's
            lr = lr.detach().reshape(()).numpy()[()]
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]
        dtype = self._dtype()
        T = dtype.type   # torch's 0-dim tensors of the params' dtype: numpy scalars of it

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        if self._numel() == 0:  # torch's flat_grad.abs().max() of no elements
            raise RuntimeError(
                "max(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        vec = self._scratch(dtype)
        try:
            return self._iterate(state, closure, orig_loss, loss, current_evals, vec, T, lr,
                                 max_iter, max_eval, tolerance_grad, tolerance_change,
                                 line_search_fn, history_size)
        finally:
            vec.seal()

    def _iterate(self, state, closure, orig_loss, loss, current_evals, vec, T, lr, max_iter,
                 max_eval, tolerance_grad, tolerance_change, line_search_fn, history_size):
        """torch's loop, line by line; the vector work is the kernels of ``_lbfgs``, in
        place on vectors from ``vec``."""
        dtype = vec.dtype
        flat_grad = vec.take()
        opt_cond = T(self._gather_flat_grad_into(flat_grad)) <= tolerance_grad
        if opt_cond:
            vec.give(flat_grad)
            return orig_loss

        d = _from_state(state.get("d"), dtype)
        t = _from_state(state.get("t"), dtype)
        hist = _History(state, dtype)
        H_diag = _from_state(state.get("H_diag"), dtype)
        prev_flat_grad = _from_state(state.get("prev_flat_grad"), dtype)
        prev_loss = state.get("prev_loss")
        al = None
        if "al" in state:
            al = [_from_state(v, dtype) for v in state["al"]]
        # the two-loop's al[i], written by the kernel; torch's list gets them at the end
        al_buf = np.zeros(max(history_size, len(hist.dirs or ())), dtype)
        al_written = 0
        pending = None   # (y, s, q, y.s, y.y, s.q) from gather_pair, for the next iteration

        try:
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1

                # direction (the first: d = -g, as the recursion over no pairs with H = 1)
                q = sq = None
                if state["n_iter"] == 1:
                    hist.reset()
                    H_diag = 1
                else:
                    if pending is not None:   # the pair, computed with the gather before
                        y, s, q, ys, yy, sq = pending
                        pending = None
                    else:
                        y, s = vec.take(), vec.take()
                        ys, yy = _lbfgs.pair(flat_grad, prev_flat_grad, d, float(t), y, s)
                    ys = T(ys)
                    if ys > 1e-10:
                        if len(hist.dirs) == history_size:
                            hist.evict_oldest(vec)
                        hist.dirs.append(y)
                        hist.stps.append(s)
                        hist.ro.append(1.0 / ys)
                        H_diag = ys / T(yy)
                    else:
                        vec.give(y)
                        vec.give(s)
                        sq = None   # s.q was the rejected pair's: the recursion starts anew
                    del y, s
                    if al is None:
                        al = [None] * history_size
                    if len(hist.dirs) > len(al):   # torch's al[i] = ... past its list
                        raise IndexError("list assignment index out of range")
                    al_written = len(hist.dirs)
                vec.give(d)
                if q is not None:   # -g, written by gather_pair: the recursion starts from it
                    d = q
                else:               # (the warmest vector: the previous d's, just given)
                    d = vec.take()
                del q
                gtd = T(_lbfgs.direction(flat_grad, hist.dirs, hist.stps, hist.ro,
                                         float(H_diag), d, al_buf, sq))

                # torch copies flat_grad into prev_flat_grad; the vector itself becomes it
                if prev_flat_grad is not flat_grad:
                    vec.give(prev_flat_grad)
                prev_flat_grad = flat_grad
                prev_loss = loss

                # step length
                if state["n_iter"] == 1:
                    t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr
                else:
                    t = lr

                # directional derivative (gtd = g.d, from the recursion's last pass)
                if gtd > -tolerance_change:
                    break

                ls_func_evals = 0
                if line_search_fn is not None:
                    if line_search_fn != "strong_wolfe":
                        raise RuntimeError("only 'strong_wolfe' is supported")
                    x_init = self._clone_param()

                    def obj_func(x, t, d):
                        return self._directional_evaluate(closure, x, t, d)

                    loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                        obj_func, x_init, t, d, loss, flat_grad, gtd,
                        max_ls=max_eval - current_evals,
                    )
                    step_max = self._add_grad(t, d)
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                else:
                    step_max = self._add_grad(t, d)
                    if n_iter != max_iter:
                        loss = float(closure())
                        # the gather, and the next iteration's pair with it (unused if the
                        # loop stops here: then its vectors go back)
                        flat_grad = vec.take()
                        pending = (vec.take(), vec.take(), vec.take())
                        gmax, ys, yy, sq = _lbfgs.gather_pair(
                            *self._grads(), flat_grad, prev_flat_grad, d, float(t), *pending)
                        pending += (ys, yy, sq)
                        opt_cond = T(gmax) <= tolerance_grad
                        ls_func_evals = 1

                current_evals += ls_func_evals
                state["func_evals"] += ls_func_evals

                if n_iter == max_iter:
                    break
                if current_evals >= max_eval:
                    break
                if opt_cond:
                    break
                if T(step_max) <= tolerance_change:   # torch: d.mul(t).abs().max()
                    break
                if abs(loss - prev_loss) < tolerance_change:
                    break
        except BaseException:
            # the state as torch leaves it: its history lists are popped and appended in
            # place, and each iteration copy_()s the grad into the state's prev_flat_grad
            if not hist.fresh:
                hist.publish(state)
            if state.get("prev_flat_grad") is not None and prev_flat_grad is not None:
                state["prev_flat_grad"] = _to_state(prev_flat_grad)
            raise
        finally:
            if al is not None:
                for i in range(min(al_written, len(al))):
                    al[i] = al_buf[i]
                state["al"] = [_to_state(v) for v in al]

        if pending is not None:
            for v in pending[:3]:
                vec.give(v)
            del v, pending
        if flat_grad is not prev_flat_grad:
            vec.give(flat_grad)
        # the previous step's d and prev_flat_grad leave the state: reclaimed if nobody has them
        stale = [state.get("d"), state.get("prev_flat_grad")]
        state["d"] = _to_state(d)
        state["t"] = _to_state(t)
        hist.publish(state)
        state["H_diag"] = _to_state(H_diag)
        state["prev_flat_grad"] = _to_state(prev_flat_grad)
        state["prev_loss"] = prev_loss
        del d, prev_flat_grad, flat_grad
        for i in (1, 0):
            if stale[i] is None:
                del stale[i]
            else:
                vec.reclaim(stale, i)
        return orig_loss
