"""Logistic regression in plain numpy, trained by fastoptim's Adam kernel on arrays you own.

Why it exists: fastoptim's optimizers are also a library for numeric code that has no tensors
or autograd of its own.  ``fastoptim.optim.functional`` takes plain numpy arrays: the model's
parameters, their gradients (computed here by hand) and the optimizer state all live in
arrays this script allocates and keeps; each ``functional.adam`` call is one C kernel call that
updates params and state in place (no copies, no Tensor).  examples/c/logreg.c is the same
training loop in C, calling fo_adam_step_f32 directly.

Run: ``python examples/numpy_logreg.py`` (after ``pip install .``).
"""
import numpy as np

from fastoptim.optim import functional as F


def make_data(n=512, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    w_true = rng.standard_normal(d).astype(np.float32)
    y = (x @ w_true + 0.1 * rng.standard_normal(n) > 0).astype(np.float32)
    return x, y


def loss_and_grads(w, b, x, y):
    """Mean binary cross-entropy of sigmoid(x @ w + b), and its gradients by hand."""
    z = x @ w + b[0]
    p = 1.0 / (1.0 + np.exp(-z))
    eps = np.float32(1e-7)
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    r = (p - y) / np.float32(len(y))            # dL/dz
    return float(loss), (x.T @ r).astype(np.float32), np.array([r.sum()], np.float32)


def train(epochs=200, lr=0.05):
    x, y = make_data()
    d = x.shape[1]
    # The caller owns every array: parameters, and Adam's state (first and second moments and
    # the float32 step counter, as torch keeps it).
    w, b = np.zeros(d, np.float32), np.zeros(1, np.float32)
    params = [w, b]
    exp_avgs = [np.zeros_like(w), np.zeros_like(b)]
    exp_avg_sqs = [np.zeros_like(w), np.zeros_like(b)]
    steps = [np.zeros((), np.float32), np.zeros((), np.float32)]
    losses = []
    for _ in range(epochs):
        loss, gw, gb = loss_and_grads(w, b, x, y)
        losses.append(loss)
        F.adam(params, [gw, gb], exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, beta1=0.9,
               beta2=0.999, lr=lr, weight_decay=0.0, eps=1e-8, maximize=False)
    accuracy = float(np.mean(((x @ w + b[0]) > 0) == (y > 0.5)))
    return losses, accuracy, w, b


if __name__ == "__main__":
    losses, accuracy, w, b = train()
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} after {len(losses)} Adam steps; "
          f"training accuracy {accuracy:.3f}")
