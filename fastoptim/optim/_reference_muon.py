"""The NumPy twin of Muon's update: torch's ``_single_tensor_muon`` written plainly (allocating),
with the same bfloat16 emulation (float32 products, each op's result rounded to bf16).

``fastoptim.optim.muon`` runs the same math into preallocated work buffers with ``out=``; the
tests hold the two against each other, and this is the documentation of what it computes.
"""

import math

import numpy as np


def bf16(x):
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + (0x7FFF + ((u >> 16) & 1))) & 0xFFFF0000).astype(np.uint32).view(np.float32)


def newton_schulz(g, coefficients=(3.4445, -4.775, 2.0315), steps=5, eps=1e-7):
    a, b, c = (np.float32(v) for v in coefficients)
    x = bf16(g.astype(np.float32))
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    norm = bf16(np.float32(np.sqrt(np.sum(x.astype(np.float64) ** 2))))[()]
    x = bf16(x / max(norm, bf16(np.float32(eps))[()]))
    for _ in range(steps):
        gram = bf16(x @ x.T)
        upd = bf16(c * (gram @ gram) + b * gram)
        x = bf16(a * x + upd @ x)
    return x.T if tall else x


def muon_step(p, g, buf, lr, weight_decay, momentum, nesterov, coefficients, steps, eps,
              adjust_lr_fn):
    """One step for one param; returns the new ``(p, buf)``."""
    buf = buf + (1 - momentum) * (g - buf)
    update = g + momentum * (buf - g) if nesterov else buf
    o = newton_schulz(update, coefficients, steps, eps)
    rows, cols = p.shape
    if adjust_lr_fn in (None, "original"):
        ratio = math.sqrt(max(1, rows / cols))
    else:
        ratio = 0.2 * math.sqrt(max(rows, cols))
    p = p * (1 - lr * weight_decay)
    return p - (lr * ratio) * o.astype(p.dtype), buf
