"""fastoptim.utils: torch.utils' data loading (fastoptim.utils.data)."""
from fastoptim._unsupported import module_getattr as _module_getattr  # noqa: E402
from fastoptim.utils import data  # noqa: F401

# a torch name not defined here: an AttributeError saying it is unsupported (README)
__getattr__ = _module_getattr(__name__)
