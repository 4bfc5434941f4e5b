"""``fastoptim.optim``: torch.optim's core optimizers and schedulers, same API and numbers.

The classes keep torch's bookkeeping in Python; ``functional`` holds the math (one fused C
kernel call per param group).
"""

from . import functional, lr_scheduler, swa_utils
from ._adafactor import Adafactor
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = [
    "SGD",
    "Adafactor",
    "Adadelta",
    "Adagrad",
    "Adam",
    "Adamax",
    "AdamW",
    "LBFGS",
    "Muon",
    "Optimizer",
    "RMSprop",
    "RAdam",
    "Rprop",
    "NAdam",
    "ASGD",
    "functional",
    "lr_scheduler",
    "swa_utils",
]

from fastoptim._unsupported import module_getattr as _module_getattr  # noqa: E402

# a torch name not defined here: an AttributeError saying it is unsupported (README)
__getattr__ = _module_getattr(__name__)
