# DLPack both ways, and the conversions of foreign tensors (torch's, or anything that speaks
# DLPack) into ours.
#
# Why it is this small: a Tensor's storage is a numpy array (see _tensor.pxd), and numpy >= 2.1
# implements the whole DLPack standard -- versioned capsules (DLManagedTensorVersioned, with its
# read-only flag) and the legacy "dltensor" capsule for consumers that ask for no max_version,
# the stream/device checks of a CPU producer, copy= -- so exporting hands our memory to numpy's
# exporter (the capsule keeps the storage alive), and importing takes numpy's importer and wraps
# the result without a copy.  What is ours:
#
# * torch's rule that a tensor requiring grad is not exported (its message);
# * a read-only source (a versioned capsule with the read-only flag, e.g. a non-writeable numpy
#   array): our Tensors are always writable (the kernels update them in place), so
#   copy=None copies -- the standard lets a consumer copy when it cannot honour the buffer --
#   and copy=False raises rather than hand out a tensor whose writes would be undefined.  numpy
#   imports a legacy capsule (which has no read-only flag) as read-only, so a legacy import is
#   a copy too: producers that speak the versioned protocol (numpy >= 2.1, torch >= 2.5, and
#   ours) share memory;
# * fastoptim.tensor(x) of such an object copies through DLPack (torch's __array__ has no copy=
#   and numpy >= 2 warns about it), and as_tensor shares memory;
# * _foreign_operand: the message when a foreign tensor meets ours in an arithmetic op.

cdef int _DL_CPU = 1    # DLDeviceType kDLCPU


cdef inline bint _speaks_dlpack(object x):
    """A foreign tensor we import by DLPack (not ours, not numpy's: those have their paths)."""
    return (not isinstance(x, (Tensor, np.ndarray, np.generic))
            and hasattr(type(x), "__dlpack__") and hasattr(type(x), "__dlpack_device__"))


cdef object _detached(object x):
    # torch refuses to export a tensor requiring grad; fastoptim.tensor(param) copies its values
    # as torch.tensor(param) does, so take them outside the graph first
    if getattr(x, "requires_grad", False) and hasattr(x, "detach"):
        return x.detach()
    return x


cdef bint _lazily_negated(object x) except -1:
    """A torch tensor with its negative bit set (torch._neg_view(t), complex z.conj().imag): its
    memory holds the negated values and torch negates on read, but torch's __dlpack__ exports
    the memory as is (torch.from_dlpack and np.from_dlpack of one give the wrong sign).
    fastoptim.tensor and as_tensor copy its values (as_tensor cannot share it); from_dlpack
    refuses it unless copy=True."""
    f = getattr(x, "is_neg", None)
    return f is not None and callable(f) and bool(f())


cdef object _negated_error(str what):
    return BufferError(f"{what}: the tensor is a lazily negated view (is_neg()): its memory "
                       "holds the negated values, so it cannot be shared; call .resolve_neg() "
                       "on it first, or pass copy=True")


cdef class _LegacyCapsule:
    """A bare DLPack capsule given to from_dlpack, dressed as a producer for numpy's importer
    (which accepts only objects with __dlpack__).  A bare capsule can only be a CPU one here:
    a consumer cannot ask a capsule where it lives, and numpy refuses any other device."""
    cdef object capsule

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if copy:
            raise BufferError("from_dlpack(capsule, copy=True): a bare capsule cannot be copied "
                              "by its producer; pass the tensor object instead")
        return self.capsule

    def __dlpack_device__(self):
        return (_DL_CPU, 0)


def from_dlpack(ext_tensor, *, device=None, copy=None):
    """A Tensor over the memory of ``ext_tensor`` (an object with ``__dlpack__``, e.g. a numpy
    array or a torch tensor, or a DLPack capsule): no copy unless ``copy=True``.

    Writes through either side are seen by the other.  A read-only source is copied when
    ``copy`` is None (our tensors are writable) and refused when ``copy=False``.
    """
    _check_device(device)
    if type(ext_tensor).__name__ == "PyCapsule":
        src = _LegacyCapsule()
        (<_LegacyCapsule>src).capsule = ext_tensor
        ext_tensor = src
    elif not hasattr(ext_tensor, "__dlpack__"):
        raise TypeError(f"from_dlpack expects an object with __dlpack__ or a DLPack capsule, "
                        f"got {type(ext_tensor).__name__}")
    elif _lazily_negated(ext_tensor):
        if not copy:
            raise _negated_error("from_dlpack")
        ext_tensor = ext_tensor.resolve_neg()
    # numpy's importer: versioned capsule if the producer offers one, legacy otherwise
    arr = np.from_dlpack(ext_tensor, copy=copy)
    if not arr.flags.writeable:
        if copy is False:
            raise BufferError("from_dlpack(copy=False): the source is read-only, and fastoptim "
                              "tensors are writable; pass copy=None or copy=True to copy it")
        arr = np.array(arr, copy=True)
    return from_numpy(arr)


cdef object _dlpack_array(object data):
    """numpy array sharing `data`'s memory for a foreign DLPack tensor, else None (a lazily
    negated view: an array of its resolved copy, which as_tensor does not take as sharing)."""
    if not _speaks_dlpack(data):
        return None
    if _lazily_negated(data):
        data = data.resolve_neg()
    return np.from_dlpack(_detached(data))


cdef object _foreign_operand(object x):
    """The error for a foreign tensor as an operand of one of our ops, or None."""
    if not _speaks_dlpack(x):
        return None
    kind = f"{type(x).__module__}.{type(x).__name__}"
    return TypeError(
        f"unsupported operand type: {kind} mixed with a fastoptim Tensor; convert one side "
        "first: fastoptim.from_dlpack(x) or fastoptim.as_tensor(x) (shares memory), "
        "fastoptim.tensor(x) (copies), or torch.from_dlpack(t) / torch.as_tensor(t) for the "
        "fastoptim tensor")


cdef object _tensor_dlpack(Tensor self, object stream, object max_version, object dl_device,
                           object copy):
    """Tensor.__dlpack__ (see the class body)."""
    if self._requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
    return self._np.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device,
                               copy=copy)
