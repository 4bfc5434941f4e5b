"""fastoptim.nn.functional: stateless ops (torch.nn.functional's names), each one fused C node
where torch has one (linear = addmm, mse_loss = MseLoss, cross_entropy = log_softmax + NllLoss
in one node, the other losses, softmax and the activations).

The losses and softmax live in fastoptim/_C/_tensor_loss.pxi, the activations in
_tensor_nnops.pxi; what is composed here from Tensor ops (dropout, layer_norm, batch_norm,
embedding) is written in torch's order of operations, so autograd gives torch's gradients."""
import math

from fastoptim._C._tensor import (  # noqa: F401
    Tensor,
    _uniform_with,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    elu,
    gelu,
    huber_loss,
    l1_loss,
    leaky_relu,
    linear,
    log_softmax,
    mse_loss,
    nll_loss,
    no_grad,
    silu,
    smooth_l1_loss,
    softmax,
    softplus,
)


def relu(input, inplace=False):
    if inplace:
        return input.clamp_(min=0)
    return input.relu()


def tanh(input):
    return input.tanh()


def sigmoid(input):
    return input.sigmoid()


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only).
    The mask comes from fastoptim's generator (manual_seed), so it is reproducible but not
    the mask torch would draw."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        mask = input.detach() * 0.0
    else:
        u = _uniform_with(None, *input.shape, dtype=input.dtype)
        mask = (u >= p).to(input.dtype) * (1.0 / (1.0 - p))
    if inplace:
        with no_grad():
            return input.mul_(mask)
    return input * mask


def _check_shape_tail(input, normalized_shape):
    n = len(normalized_shape)
    if tuple(input.shape[input.dim() - n:]) != tuple(normalized_shape) or input.dim() < n:
        raise RuntimeError(
            f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size"
            f"{list(input.shape)}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) dims
    (biased variance, as torch)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    _check_shape_tail(input, normalized_shape)
    k = len(normalized_shape)
    lead = tuple(input.shape[:input.dim() - k])
    x = input.reshape(*lead, -1) if k != 1 else input
    mean = x.mean(-1, keepdim=True)
    xc = x - mean
    var = (xc * xc).mean(-1, keepdim=True)
    y = xc / (var + eps).sqrt()
    if k != 1:
        y = y.reshape(*input.shape)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise over the batch (and length) dims per channel (dim 1): batch statistics in
    training (and the running estimates updated in place with the unbiased variance), the
    running estimates in evaluation."""
    if input.dim() not in (2, 3):
        raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")
    C = input.shape[1]
    shape = (1, C) if input.dim() == 2 else (1, C, 1)
    if training:
        n = input.numel() // C
        if n <= 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size {list(input.shape)}")
        x = input if input.dim() == 2 else input.transpose(1, 2).reshape(-1, C)
        mean = x.mean(0)
        xc = x - mean
        var = (xc * xc).mean(0)
        if running_mean is not None:
            with no_grad():
                running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                running_var.mul_(1 - momentum).add_(var.detach() * (momentum * n / (n - 1)))
        mean = mean.reshape(*shape)
        var = var.reshape(*shape)
    else:
        mean = running_mean.reshape(*shape)
        var = running_var.reshape(*shape)
    y = (input - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(*shape)
    if bias is not None:
        y = y + bias.reshape(*shape)
    return y


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of `weight` at the int64 indices `input` (dense gradient, summed over repeats;
    the padding_idx row gets none)."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding(): max_norm, scale_grad_by_freq and sparse are not "
                                  "supported by fastoptim")
    if input.is_floating_point():
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following "
                           "scalar types: Long, Int; but got torch.FloatTensor instead (while "
                           "checking arguments for embedding)")
    out = weight[input]
    if padding_idx is not None and weight.requires_grad:
        keep = (input != padding_idx).to(weight.dtype).unsqueeze(-1)
        out = out * keep + out.detach() * (1.0 - keep)
    return out


__all__ = [
    "linear", "mse_loss", "softplus", "relu", "tanh", "sigmoid", "l1_loss", "Tensor", "softmax",
    "log_softmax", "cross_entropy", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "smooth_l1_loss", "huber_loss", "leaky_relu", "gelu",
    "elu", "silu", "dropout", "layer_norm", "batch_norm", "embedding",
]
_ = math

from fastoptim._unsupported import module_getattr as _module_getattr  # noqa: E402

# a torch name not defined here: an AttributeError saying it is unsupported (README)
__getattr__ = _module_getattr(__name__)
