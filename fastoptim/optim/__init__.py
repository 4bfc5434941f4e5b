"""``fastoptim.optim``: torch.optim's core optimizers and schedulers, same API and numbers.

The classes keep torch's bookkeeping in Python; ``functional`` holds the math (one fused C
kernel call per param group).
"""

from . import functional, lr_scheduler, swa_utils
from ._adafactor import Adafactor
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .lbfgs import LBFGS
from .muon import Muon
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "SGD",
    "Adafactor",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "LBFGS",
    "Muon",
    "Optimizer",
    "RMSprop",
    "functional",
    "lr_scheduler",
    "swa_utils",
]
