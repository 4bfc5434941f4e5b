"""fastoptim: a compiled, torch-exact drop-in for the core of torch.optim on the CPU.

``import fastoptim as torch`` gives the tensor, autograd and creation functions; ``fastoptim.nn``
the modules and losses; ``fastoptim.optim`` the optimizers and LR schedulers.  The arithmetic runs
in C kernels (csrc/) behind Cython glue (fastoptim/_C/); this package is bookkeeping only.
"""
import os as _os

# OpenMP threads that spin after a parallel region starve numpy's BLAS threads on a small
# machine (an MLP training step at 2 threads went from 0.6 ms to 5-50 ms).  Passive waiting
# costs a few microseconds of wake-up per parallel region, nothing next to the work that makes
# a region worth opening.  libgomp reads this once, when it loads: so set it before our
# extension loads it, and only if the user has not chosen a policy.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fastoptim._build_info import version as __version__  # noqa: E402,F401  (pyproject's)
from fastoptim._C._tensor import (  # noqa: E402,F401
    BoolTensor,
    DoubleTensor,
    FloatTensor,
    Generator,
    IntTensor,
    LongTensor,
    Size,
    Tensor,
    arange,
    as_tensor,
    bmm,
    bool_,
    cat,
    clamp,
    device,
    dtype,
    empty,
    empty_like,
    enable_grad,
    eye,
    float32,
    float64,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    gather,
    get_default_device,
    get_default_dtype,
    get_rng_state,
    index_select,
    initial_seed,
    int32,
    int64,
    is_grad_enabled,
    is_tensor,
    lerp,
    linspace,
    logspace,
    manual_seed,
    matmul,
    maximum,
    minimum,
    no_grad,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    set_default_device,
    set_default_dtype,
    set_grad_enabled,
    set_rng_state,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)
from fastoptim._config import get_include, get_library_dir, show_config  # noqa: E402,F401
from fastoptim.serialization import CheckpointError, load, save  # noqa: E402,F401

# torch's aliases
float = float32  # noqa: A001
double = float64
long = int64
bool = bool_  # noqa: A001


def _unary_fn(name):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"fastoptim.{name}(t) is t.{name}(), as in torch."
    return fn


exp = _unary_fn("exp")
log = _unary_fn("log")
sqrt = _unary_fn("sqrt")
abs = _unary_fn("abs")  # noqa: A001
relu = _unary_fn("relu")
tanh = _unary_fn("tanh")
sigmoid = _unary_fn("sigmoid")
from fastoptim._C._tensor import log_softmax, softmax  # noqa: E402,F401

sum = _unary_fn("sum")  # noqa: A001
mean = _unary_fn("mean")
max = _unary_fn("max")  # noqa: A001
min = _unary_fn("min")  # noqa: A001
reshape = _unary_fn("reshape")
flatten = _unary_fn("flatten")
transpose = _unary_fn("transpose")
t = _unary_fn("t")
neg = _unary_fn("neg")
add = _unary_fn("add")
sub = _unary_fn("sub")
mul = _unary_fn("mul")
div = _unary_fn("div")
squeeze = _unary_fn("squeeze")
unsqueeze = _unary_fn("unsqueeze")
clone = _unary_fn("clone")
allclose = _unary_fn("allclose")
equal = _unary_fn("equal")
isnan = _unary_fn("isnan")
isfinite = _unary_fn("isfinite")
isinf = _unary_fn("isinf")
prod = _unary_fn("prod")
std = _unary_fn("std")
var = _unary_fn("var")
norm = _unary_fn("norm")
logsumexp = _unary_fn("logsumexp")
cumsum = _unary_fn("cumsum")
argmax = _unary_fn("argmax")
argmin = _unary_fn("argmin")
any = _unary_fn("any")  # noqa: A001
all = _unary_fn("all")  # noqa: A001
eq = _unary_fn("eq")
ne = _unary_fn("ne")
lt = _unary_fn("lt")
le = _unary_fn("le")
gt = _unary_fn("gt")
ge = _unary_fn("ge")
sin = _unary_fn("sin")
cos = _unary_fn("cos")
tan = _unary_fn("tan")
asin = _unary_fn("asin")
acos = _unary_fn("acos")
atan = _unary_fn("atan")
sinh = _unary_fn("sinh")
cosh = _unary_fn("cosh")
exp2 = _unary_fn("exp2")
expm1 = _unary_fn("expm1")
log1p = _unary_fn("log1p")
log2 = _unary_fn("log2")
log10 = _unary_fn("log10")
sign = _unary_fn("sign")
floor = _unary_fn("floor")
ceil = _unary_fn("ceil")
round = _unary_fn("round")  # noqa: A001
trunc = _unary_fn("trunc")
reciprocal = _unary_fn("reciprocal")
rsqrt = _unary_fn("rsqrt")
square = _unary_fn("square")
erf = _unary_fn("erf")
# shapes and indexing (the function forms of the Tensor methods)
permute = _unary_fn("permute")
narrow = _unary_fn("narrow")
split = _unary_fn("split")
chunk = _unary_fn("chunk")
unbind = _unary_fn("unbind")
select = _unary_fn("select")
unflatten = _unary_fn("unflatten")
movedim = _unary_fn("movedim")
moveaxis = _unary_fn("moveaxis")
swapaxes = _unary_fn("swapaxes")
swapdims = _unary_fn("swapdims")
concat = concatenate = cat


def pow(input, exponent):  # noqa: A001
    """input ** exponent, element-wise and broadcasting; input or exponent may be a number."""
    if isinstance(input, Tensor):
        return input.pow(exponent)
    if isinstance(exponent, Tensor):
        return exponent.__rpow__(input)
    raise TypeError(f"pow(): expected a Tensor as input or exponent, got "
                    f"{type(input).__name__} and {type(exponent).__name__}")


mm = matmul
dot = matmul
clip = clamp

# Subpackages last: they import the names above.
from fastoptim import autograd, cuda, nn, optim, return_types, utils  # noqa: E402,F401
from fastoptim._unsupported import module_getattr as _module_getattr  # noqa: E402
from fastoptim.autograd import inference_mode, is_inference_mode_enabled  # noqa: E402,F401

# a torch name not defined here: an AttributeError saying it is unsupported (README)
__getattr__ = _module_getattr(__name__)
