"""nn's loss modules beyond MSELoss: thin holders of their arguments over the fused
functional forms (fastoptim.nn.functional, C kernels in csrc/tensor_loss.c), with torch's
signatures and defaults.  The reduction argument is checked once, by modules._Loss (MSELoss's
base too).  The forward of NLLLoss, CrossEntropyLoss, BCELoss and BCEWithLogitsLoss is a
compiled function (fastoptim/_C/_tensor_loss.pxi), so that a call of one runs no Python frame:
on a small batch the frame and the keyword arguments were a visible part of a step."""
from fastoptim._C._tensor import (
    _bce_forward,
    _bce_with_logits_forward,
    _cross_entropy_forward,
    _nll_loss_forward,
)
from fastoptim.nn import functional as F
from fastoptim.nn.modules import _Loss


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    forward = _bce_forward      # F.binary_cross_entropy(input, target, self.weight, ...)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    forward = _bce_with_logits_forward   # F.binary_cross_entropy_with_logits(input, target, ...)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    forward = _nll_loss_forward   # F.nll_loss(input, target, self.weight, ...)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    forward = _cross_entropy_forward   # F.cross_entropy(input, target, self.weight, ...)
