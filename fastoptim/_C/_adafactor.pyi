from collections.abc import Sequence
from typing import Any

import numpy as np

def step(params: Sequence[Any], grads: Sequence[Any], row_vars: Sequence[Any],
         col_vars: Sequence[Any], variances: Sequence[Any], state_steps: Sequence[Any], *,
         lr: float, beta2_decay: float, eps1: float, eps2: float, d: float,
         weight_decay: float, maximize: bool, work: np.ndarray | None = None) -> np.ndarray: ...
