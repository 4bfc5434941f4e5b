from collections.abc import Iterable, Sequence

import numpy as np

KERNEL_DTYPES: tuple[np.dtype, np.dtype]

class Pieces:
    npieces: int
    buffer: np.ndarray
    def __init__(self, buffer: np.ndarray, pieces: Iterable[tuple[int, int, int]]) -> None: ...
    def pack(self, srcs: list[np.ndarray | None]) -> None: ...
    def unpack(self, dsts: list[np.ndarray | None], divisor: int) -> None: ...

def pack_numpy(buffer: np.ndarray, pieces: Sequence[tuple[int, int, int]],
               srcs: Sequence[np.ndarray | None]) -> None: ...
def unpack_numpy(buffer: np.ndarray, pieces: Sequence[tuple[int, int, int]],
                 dsts: Sequence[np.ndarray | None], divisor: int) -> None: ...
