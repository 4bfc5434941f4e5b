"""The NumPy twin of LBFGS's compiled vector work: the two-loop recursion written plainly.

``fastoptim.optim.lbfgs._two_loop`` runs it with BLAS dots and the fused C axpy
(``_lbfgs.axpy``) in place on one vector; this is the obvious allocating transcription of
torch's loop (``q = q - a_i y_i``), for the tests to hold the two against each other and as the
documentation of what the compiled path computes.
"""

import numpy as np


def lbfgs_direction(flat_grad, old_dirs, old_stps, ro, H_diag):
    """``d = -H flat_grad`` from the history ``(y_i, s_i, rho_i)``, oldest first."""
    num_old = len(old_dirs)
    al = [None] * num_old
    q = -flat_grad
    for i in range(num_old - 1, -1, -1):
        al[i] = np.dot(old_stps[i], q) * ro[i]
        q = q - al[i] * old_dirs[i]
    r = q * H_diag
    for i in range(num_old):
        be_i = np.dot(old_dirs[i], r) * ro[i]
        r = r + (al[i] - be_i) * old_stps[i]
    return r, al


def axpy(alpha, x, y):
    """``y + alpha * x`` (a new array; the kernel fuses it into one rounding)."""
    return y + np.asarray(alpha, dtype=y.dtype) * x
