"""torch.return_types: the named (values, indices) pairs that max(dim) and min(dim) return.

They are built next to the reductions that make them (fastoptim/_C/_tensor_reduce.pxi); this
module gives them their torch spelling, ``fastoptim.return_types.max``.
"""
from fastoptim._C._tensor import _RT_MAX as max  # noqa: A001
from fastoptim._C._tensor import _RT_MIN as min  # noqa: A001

__all__ = ["max", "min"]
