"""fastoptim.cuda: the answers torch.cuda gives on a machine without CUDA.

fastoptim runs on the CPU only, so scripts written for either device take their CPU branch
(``device = "cuda" if torch.cuda.is_available() else "cpu"``).  Seeding calls are accepted and
do nothing, as torch's are when CUDA is absent; anything that needs a GPU raises.
"""

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all", "is_initialized"]


def is_available() -> bool:
    """False: fastoptim has no CUDA backend."""
    return False


def device_count() -> int:
    """0: no CUDA devices."""
    return 0


def is_initialized() -> bool:
    """False: there is no CUDA state to initialise."""
    return False


def manual_seed(seed: int) -> None:
    """Accepted and ignored (no CUDA generator exists), as torch.cuda.manual_seed without CUDA."""
    int(seed)


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored, as torch.cuda.manual_seed_all without CUDA."""
    int(seed)
