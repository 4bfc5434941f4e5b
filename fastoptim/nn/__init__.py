"""fastoptim.nn: the modules, losses and initialisers the textbook training loop needs."""
from fastoptim._unsupported import module_getattr as _module_getattr  # noqa: E402
from fastoptim.nn import (  # noqa: F401
    functional,
    init,
    utils,  # noqa: F401,E402
)
from fastoptim.nn.layers import (  # noqa: F401
    ELU,
    GELU,
    BatchNorm1d,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    ModuleDict,
    ModuleList,
    ParameterList,
    SiLU,
    Softmax,
    Unflatten,
)
from fastoptim.nn.loss import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    NLLLoss,
    SmoothL1Loss,
)
from fastoptim.nn.modules import (  # noqa: F401
    Identity,
    Linear,
    Module,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from fastoptim.nn.parameter import Parameter  # noqa: F401

# a torch name not defined here: an AttributeError saying it is unsupported (README)
__getattr__ = _module_getattr(__name__)
