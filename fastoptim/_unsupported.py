"""What is not there says so: torch names fastoptim does not implement raise an AttributeError
that names them as unsupported and points at README.md's "Known differences".

Why: ``import fastoptim as torch`` users reach for torch names; a bare "has no attribute" reads
like a typo or a broken install.  Each fastoptim module that mirrors a torch module ends with
``__getattr__ = module_getattr(__name__)``: Python calls a module's ``__getattr__`` only when
normal lookup fails, so defined names cost nothing.  Tensor methods are handled in
fastoptim/_C/_tensor_unsupported.pxi (one descriptor per missing name in the class dict, so
lookups of the names Tensor has stay as fast as ever).  The torch names are torch 2.13's,
listed in fastoptim/_torch_names.py.
"""
from fastoptim._torch_names import NAMES

_HINT = "see \"Known differences\" in fastoptim's README.md"


def unsupported(what):
    """The message for a torch feature fastoptim does not implement."""
    return f"{what} is not supported by fastoptim ({_HINT})"


def module_getattr(module_name):
    """A module ``__getattr__`` for fastoptim module `module_name` (which mirrors torch's)."""
    torch_names = NAMES.get(module_name, frozenset())
    torch_module = "torch" + module_name[len("fastoptim"):]

    def __getattr__(name):
        if name in torch_names:
            raise AttributeError(f"module '{module_name}' has no attribute '{name}': "
                                 f"{unsupported(torch_module + '.' + name)}", name=name)
        raise AttributeError(f"module '{module_name}' has no attribute '{name}'", name=name)
    return __getattr__
