r"""``Muon``: torch 2.13's Muon (momentum, then Newton-Schulz orthogonalisation of 2-D updates).

Why this file exists: Muon is not an elementwise kernel row. Each param's update is a matrix
computation over the whole param (five Newton-Schulz iterations of three matrix products), so it
has no row in ``_descriptions`` beyond a small ``WholeStepDescription`` (kind ``"matrix"``).

torch computes the orthogonalisation in **bfloat16** (``grad.bfloat16()``, then bf16 ``@`` and
``addmm``), whatever the param dtype, and adds the bf16 result to the param. To give torch's
numbers we emulate that: every product runs in float32 through numpy's BLAS (``matmul`` with
``out=`` into per-shape work buffers, so a warm step allocates nothing per iteration) and each
op's result is rounded to bfloat16 (round-to-nearest-even, kept in float32 storage), as torch's
CPU bf16 kernels accumulate in float32 and round their output once. The emulation is not bitwise:
BLAS and oneDNN sum in different orders, so some elements land one bf16 ulp apart, and the
iteration spreads that. Agreement with torch is therefore at bfloat16 level (about 1e-2
relative on the orthogonalised update, i.e. ``lr * 1e-2`` on the param per step), in float64 as
in float32; the NumPy twin (``_reference_muon``) is matched much more tightly.

The momentum part (``buf.lerp_(grad, 1 - momentum)``, the Nesterov ``grad.lerp(buf, momentum)``),
the decoupled weight decay and the final ``add_`` run in the param's dtype, in torch's order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastoptim import Tensor
from fastoptim._C._lbfgs import axpy

from .optimizer import Optimizer, _to_scalar

__all__ = ["Muon", "muon"]

EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5
_BF16_MASK = np.uint32(0xFFFF0000)


def _round_bf16(x: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Round a float32 array in place to the nearest bfloat16 (ties to even), as torch's
    float -> bfloat16 conversion; ``scratch`` is a uint32 array of the same shape."""
    u = x.view(np.uint32)
    np.right_shift(u, 16, out=scratch)
    np.bitwise_and(scratch, 1, out=scratch)
    np.add(scratch, 0x7FFF, out=scratch)
    np.add(u, scratch, out=u)
    np.bitwise_and(u, _BF16_MASK, out=u)
    return x


class _Work:
    """Float32 work buffers for the Newton-Schulz iteration of one (m, n) shape, m <= n."""

    def __init__(self, m: int, n: int) -> None:
        self.x = np.empty((m, n), np.float32)
        self.y = np.empty((m, n), np.float32)
        self.ux = np.empty((m, n), np.uint32)
        self.a = np.empty((m, m), np.float32)
        self.b = np.empty((m, m), np.float32)
        self.t = np.empty((m, m), np.float32)
        self.ua = np.empty((m, m), np.uint32)


def _scalar_bf16(v: float) -> np.float32:
    s = np.array([v], np.float32)
    return _round_bf16(s, np.empty(1, np.uint32))[0]


def _zeropower_via_newtonschulz(grad: np.ndarray, ns_coefficients, ns_steps: int, eps: float,
                                work: dict | None = None) -> np.ndarray:
    """torch's quintic Newton-Schulz orthogonalisation of a 2-D ``grad``, in emulated bfloat16.

    Returns a float32 array (bf16 values) of ``grad``'s shape; it may be a transposed view of a
    work buffer, valid until the next call with the same ``work``.
    """
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = (float(v) for v in ns_coefficients)
    transposed = grad.shape[0] > grad.shape[1]
    m, n = (grad.shape[1], grad.shape[0]) if transposed else grad.shape
    key = (m, n)
    if work is None:
        work = {}
    w = work.get(key)
    if w is None:
        w = work[key] = _Work(m, n)
    x, y = w.x, w.y
    # grad.bfloat16() (double -> float -> bfloat16, as c10's conversion), then .T if tall
    np.copyto(x, grad.T if transposed else grad, casting="same_kind")
    _round_bf16(x, w.ux)
    # X.div_(X.norm().clamp(min=eps)): the norm accumulates in float, rounds to bf16
    norm = _scalar_bf16(float(np.sqrt(np.dot(x.reshape(-1), x.reshape(-1)))))
    norm = max(norm, _scalar_bf16(eps))
    np.divide(x, norm, out=x)
    _round_bf16(x, w.ux)
    fa, fb, fc = np.float32(a), np.float32(b), np.float32(c)
    for _ in range(ns_steps):
        # gram = X @ X.T
        np.matmul(x, x.T, out=w.a)
        _round_bf16(w.a, w.ua)
        # gram_update = addmm(gram, gram, gram, beta=b, alpha=c) = b*gram + c*(gram @ gram);
        # gram is exactly symmetric (numpy computes X @ X.T with syrk and mirrors it), so
        # gram @ gram.T is the same product, and numpy runs it as syrk too: half the work
        np.matmul(w.a, w.a.T, out=w.b)
        np.multiply(w.b, fc, out=w.b)
        np.multiply(w.a, fb, out=w.t)
        np.add(w.b, w.t, out=w.b)
        _round_bf16(w.b, w.ua)
        # X = addmm(X, gram_update, X, beta=a) = a*X + gram_update @ X
        np.matmul(w.b, x, out=y)
        np.multiply(x, fa, out=x)
        np.add(x, y, out=x)
        _round_bf16(x, w.ux)
    return x.T if transposed else x


def _adjust_lr(lr: float, adjust_lr_fn: str | None, param_shape) -> float:
    """torch's learning-rate adjustment by the param's shape (A, B)."""
    A, B = param_shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        adjusted_ratio = math.sqrt(max(1, A / B))
    elif adjust_lr_fn == "match_rms_adamw":
        adjusted_ratio = 0.2 * math.sqrt(max(A, B))
    else:
        adjusted_ratio = 1.0
    return lr * adjusted_ratio


def _np(x) -> np.ndarray:
    return x._np if isinstance(x, Tensor) else x


def muon(params, grads, muon_momentum_bufs, *, foreach: bool | None = None, lr: float,
         weight_decay: float, momentum: float, nesterov: bool, ns_coefficients,
         ns_steps: int, eps: float, adjust_lr_fn: str | None, has_complex: bool = False,
         _work: dict | None = None) -> None:
    r"""Functional Muon (torch's ``torch.optim._muon.muon``): updates ``params`` and
    ``muon_momentum_bufs`` in place. Lists of fastoptim Tensors or numpy arrays (float32 or
    float64, 2-D). See :class:`Muon` for the rule."""
    if foreach is not None and foreach:
        raise RuntimeError("Foreach is not supported for Muon yet")
    lr = _to_scalar(lr)
    if isinstance(lr, Tensor):
        lr = float(lr._np)
    if has_complex:
        raise ValueError("Complex parameters are not supported")
    work = {} if _work is None else _work
    for i, param in enumerate(params):
        p = _np(param)
        g = _np(grads[i])
        if g.ndim != 2:
            raise ValueError("Param gradient must be a 2D matrix")
        buf = _np(muon_momentum_bufs[i])
        tmp = work.get(("tmp", p.shape, p.dtype))
        if tmp is None:
            tmp = work[("tmp", p.shape, p.dtype)] = np.empty(p.shape, p.dtype)
        # buf.lerp_(grad, 1 - momentum)
        _lerp(buf, g, 1 - momentum, buf, tmp)
        if nesterov:
            upd = work.get(("upd", p.shape, p.dtype))
            if upd is None:
                upd = work[("upd", p.shape, p.dtype)] = np.empty(p.shape, p.dtype)
            update = _lerp(g, buf, momentum, upd, tmp)
        else:
            update = buf
        ortho = _zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps, work)
        adjusted_lr = _adjust_lr(lr, adjust_lr_fn, p.shape)
        np.multiply(p, 1 - lr * weight_decay, out=p)
        np.copyto(tmp, ortho)
        axpy(-adjusted_lr, tmp, p)


def _lerp(start, end, weight, out, tmp):
    """torch's ``start.lerp(end, weight)`` (ATen's two branches) into ``out``."""
    np.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        np.multiply(tmp, weight, out=tmp)
        np.add(start, tmp, out=out)
    else:
        np.multiply(tmp, weight - 1, out=tmp)
        np.add(end, tmp, out=out)
    return out


class Muon(Optimizer):
    r"""Muon, torch 2.13's: momentum, then an orthogonalised update, for 2-D params only.

    For each 2-D param with a grad ``g`` (``B`` the momentum buffer, zero at first)::

        B = B.lerp(g, 1 - momentum)             # = momentum * B + (1 - momentum) * g
        U = g.lerp(B, momentum) if nesterov else B
        O = NS_k(U)                              # k quintic Newton-Schulz steps, bfloat16:
                                                 # X = U / max(|U|_F, eps); k times:
                                                 #   A = X X^T; X = a X + (b A + c A A) X
        p = p * (1 - lr * weight_decay)
        p = p - adjust(lr, shape) * O            # 'original': sqrt(max(1, rows/cols));
                                                 # 'match_rms_adamw': 0.2 * sqrt(max(rows, cols))

    (the transpose is orthogonalised when rows > cols). Like torch, the orthogonalisation is
    computed in bfloat16 (emulated here over float32 BLAS; see the module docstring for how
    close that is to torch's own bf16 kernels).

    Papers: K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024,
    https://kellerjordan.github.io/posts/muon/); J. Liu et al., "Muon is Scalable for LLM
    Training" (2025, arXiv:2502.16982) for ``match_rms_adamw``.

    Args:
        params: iterable of 2-D Tensors or param-group dicts (use e.g. AdamW for the others).
        lr (float or 1-element Tensor): learning rate (default: 1e-3).
        weight_decay (float): decoupled weight decay (default: 0.1).
        momentum (float): momentum factor (default: 0.95).
        nesterov (bool): Nesterov momentum (default: True).
        ns_coefficients (tuple of 3 floats): (a, b, c) (default: (3.4445, -4.775, 2.0315)).
        eps (float): floor of the Frobenius norm (default: 1e-7).
        ns_steps (int): Newton-Schulz steps, < 100 (default: 5).
        adjust_lr_fn (str or None): ``'original'`` (None) or ``'match_rms_adamw'``.

    Example:
        >>> opt = fastoptim.optim.Muon([p for p in model.parameters() if p.ndim == 2], lr=0.02)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
        eps: float = EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ["original", "match_rms_adamw"]:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {p.size()}"
                    )
        self._work: dict = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._work = {}

    def _init_group(self, group, params_with_grad, grads, muon_momentum_bufs) -> bool:
        from fastoptim import zeros_like

        for p in group["params"]:
            if p.grad is None:
                continue
            params_with_grad.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_like(p.grad)
            muon_momentum_bufs.append(state["momentum_buffer"])
        return False

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` re-evaluates and returns the loss."""
        import fastoptim

        loss = None
        if closure is not None:
            with fastoptim.enable_grad():
                loss = closure()
        with fastoptim.no_grad():
            for group in self.param_groups:
                params_with_grad: list = []
                grads: list = []
                bufs: list = []
                has_complex = self._init_group(group, params_with_grad, grads, bufs)
                muon(params_with_grad, grads, bufs, lr=group["lr"],
                     weight_decay=group["weight_decay"], momentum=group["momentum"],
                     nesterov=group["nesterov"], ns_coefficients=group["ns_coefficients"],
                     eps=group["eps"], ns_steps=group["ns_steps"],
                     adjust_lr_fn=group["adjust_lr_fn"], has_complex=has_complex,
                     _work=self._work)
        return loss

