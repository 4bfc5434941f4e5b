# Printing: repr(tensor) as torch prints it.

# ---------------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------------

def _format_tensor(Tensor t):
    arr = t._np
    d = _dtype_of(arr)
    if d.is_floating_point and arr.size:
        finite = arr[np.isfinite(arr)]
        integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        amax = float(np.abs(finite).max()) if finite.size else 0.0
        nz = np.abs(finite[finite != 0])
        amin = float(nz.min()) if nz.size else 0.0
        sci = finite.size > 0 and (
            amax >= 1e8 or (amin > 0 and (amin < 1e-4 or amax / amin > 1000.0)))
        spec = "{:.0f}." if integral and not sci else "{:.4e}" if sci else "{:.4f}"

        def one(v):
            return spec.format(v) if np.isfinite(v) else str(v)
        # torch right-aligns every element to the widest finite one ("[ 1.5000, -2.2500]")
        shown = _printed(arr)
        width = max([len(one(v)) for v in np.unique(shown[np.isfinite(shown)])] or [1])
        fmt = {"float_kind": lambda v: one(v).rjust(width)}
        body = np.array2string(arr, separator=", ", prefix="tensor(", formatter=fmt,
                               threshold=1000, edgeitems=3).replace(", ..., ", ",  ..., ")
    else:
        body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000,
                               edgeitems=3)
        if d is bool_:
            body = body.replace("True", "True").replace("False", "False")
    extras = []
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(_shp(arr))}")
    if d is not _default_dtype and d is not int64 and d is not bool_:
        extras.append(f"dtype={d!r}")
    if t._op != N_LEAF:
        extras.append(f"grad_fn=<{t._node_name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _printed(arr):
    """The elements repr shows: all of them, or the 3 leading and trailing ones per dim when
    numpy summarises (more than 1000 elements)."""
    if arr.size <= 1000:
        return arr.reshape(-1)
    for ax in range(arr.ndim):
        if arr.shape[ax] > 6:
            arr = np.concatenate([arr.take(range(3), axis=ax),
                                  arr.take(range(arr.shape[ax] - 3, arr.shape[ax]), axis=ax)],
                                 axis=ax)
    return arr.reshape(-1)


