"""Type stubs for fastoptim._C._bench (hand-written; keep in step with _bench.pyx).

The benchmark suite's memory-roofline yardstick; not part of the public API.
"""
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

def roofline_simd() -> str: ...
def roofline(
    reads: Sequence[npt.NDArray[np.floating]],
    writes: Sequence[npt.NDArray[np.floating]],
    *,
    baseline: bool = False,
) -> None: ...
