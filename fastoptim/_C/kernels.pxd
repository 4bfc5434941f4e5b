# cython: language_level=3
"""The kernels' declarations for fastoptim's own Cython glue: the public mirror of fastoptim.h,
fastoptim/kernels.pxd, re-exported so that ``from fastoptim._C.kernels cimport ...`` keeps
working.  Declare nothing here: add to fastoptim/kernels.pxd (and the header).
"""
from fastoptim.kernels cimport *
