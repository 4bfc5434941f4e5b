"""fastoptim.utils: torch.utils' data loading (fastoptim.utils.data)."""
from fastoptim.utils import data  # noqa: F401
