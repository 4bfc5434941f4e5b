from collections.abc import Sequence
from typing import Any

import numpy as np

def step(params: Sequence[Any], grads: Sequence[Any], row_vars: Sequence[Any],
         col_vars: Sequence[Any], variances: Sequence[Any], state_steps: Sequence[Any], *,
         lr: float, beta2_decay: float, eps1: float, eps2: float, d: float,
         weight_decay: float, maximize: bool, work: np.ndarray | None = None,
         cache: StepCache | None = None) -> np.ndarray: ...

class StepCache:
    """The gather of one Adafactor call, kept between steps (work buffer, struct arrays, the
    last overlap proof)."""
    work: np.ndarray | None
    def _info(self) -> tuple[int, int]: ...

def group_steps(groups: list[dict[str, Any]], state: dict[Any, Any], cache: StepCache) -> bool: ...
def _steady_steps() -> int: ...
