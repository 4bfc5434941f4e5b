# Tensor methods torch has and fastoptim does not: each missing name is a descriptor in
# Tensor's class dict whose __get__ raises an AttributeError naming it as unsupported (see
# fastoptim/_unsupported.py for why).  Not a Tensor.__getattr__: a class with __getattr__ loses
# CPython's fast method lookup for every attribute it does have, on the hot path of every op.

from cpython.object cimport PyTypeObject

cdef extern from "Python.h":
    void PyType_Modified(PyTypeObject *t)


cdef class _Unsupported:
    """Stands for a torch Tensor attribute fastoptim does not implement."""
    cdef str _name

    def __init__(self, name):
        self._name = name

    def __get__(self, obj, objtype):
        from fastoptim._unsupported import unsupported
        raise AttributeError(f"'Tensor' object has no attribute '{self._name}': "
                             f"{unsupported('Tensor.' + self._name)}", name=self._name)


def _install_unsupported():
    from fastoptim._torch_names import NAMES
    cdef dict d = <dict>(<PyTypeObject*>Tensor).tp_dict
    for name in NAMES["fastoptim.Tensor"]:
        if name not in d and not hasattr(Tensor, name):
            d[name] = _Unsupported(name)
    PyType_Modified(<PyTypeObject*>Tensor)


_install_unsupported()
