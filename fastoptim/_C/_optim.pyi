"""Type stubs for fastoptim._C._optim (hand-written; keep in step with _optim.pyx).

Each ``*_step`` updates one param group in place with one C call per dtype present.  Lists hold
C-contiguous, aligned float32/float64 numpy arrays; state arrays match their param's dtype and
shape and are writeable; ``state_steps`` entries are writeable one-element float32 arrays.
Everything is validated before anything is modified.  Keyword-only ``run=False`` validates
without updating; ``overlaps=False`` skips the overlap check (the functionals use both for a
group that repeats a param: every check over the whole call, then one call per round).
"""
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

_Arrays: TypeAlias = Sequence[npt.NDArray[np.floating]]
_Steps: TypeAlias = Sequence[npt.NDArray[np.float32]]

def sgd_step(
    params: _Arrays,
    grads: _Arrays,
    momentum_buffers: _Arrays | None,
    buffer_is_new: Sequence[bool] | None,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    *,
    run: bool = ...,
    overlaps: bool = ...
) -> None: ...
def adam_step(
    params: _Arrays,
    grads: _Arrays,
    exp_avgs: _Arrays,
    exp_avg_sqs: _Arrays,
    max_exp_avg_sqs: _Arrays | None,
    state_steps: _Steps,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
    *,
    run: bool = ...,
    overlaps: bool = ...
) -> None: ...
def rmsprop_step(
    params: _Arrays,
    grads: _Arrays,
    square_avgs: _Arrays,
    grad_avgs: _Arrays | None,
    momentum_buffers: _Arrays | None,
    state_steps: _Steps,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
    *,
    run: bool = ...,
    overlaps: bool = ...
) -> None: ...
def adagrad_step(
    params: _Arrays,
    grads: _Arrays,
    state_sums: _Arrays,
    state_steps: _Steps,
    lr: float,
    weight_decay: float,
    lr_decay: float,
    eps: float,
    maximize: bool,
    *,
    run: bool = ...,
    overlaps: bool = ...
) -> None: ...
def adadelta_step(
    params: _Arrays,
    grads: _Arrays,
    square_avgs: _Arrays,
    acc_deltas: _Arrays,
    state_steps: _Steps,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    *,
    run: bool = ...,
    overlaps: bool = ...
) -> None: ...
# The classes' steady-state shortcuts: the same updates taken straight from a param group's
# params and the optimizer's state.  True when done; False, having written nothing, when the
# caller must collect lists and call the ``*_step`` above instead.
_State: TypeAlias = dict[Any, dict[str, Any]]

def sgd_group_step(
    group_params: list[Any], state: _State, lr: float, momentum: float, dampening: float,
    weight_decay: float, nesterov: bool, maximize: bool,
) -> bool: ...
def adam_group_step(
    group_params: list[Any], state: _State, lr: float, beta1: float, beta2: float, eps: float,
    weight_decay: float, amsgrad: bool, maximize: bool, decoupled_weight_decay: bool,
) -> bool: ...
def rmsprop_group_step(
    group_params: list[Any], state: _State, lr: float, alpha: float, eps: float,
    weight_decay: float, momentum: float, centered: bool, maximize: bool,
) -> bool: ...
def adagrad_group_step(
    group_params: list[Any], state: _State, lr: float, weight_decay: float, lr_decay: float,
    eps: float, maximize: bool,
) -> bool: ...
def adadelta_group_step(
    group_params: list[Any], state: _State, lr: float, rho: float, eps: float,
    weight_decay: float, maximize: bool,
) -> bool: ...
def _unwrap(
    items: Sequence[object],
    writeable: bool,
    writebacks: list[tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]],
) -> list[object]: ...
def _needs_copy(lists: Sequence[Sequence[object] | None]) -> bool: ...
def _collect(
    group_params: list[Any], state: dict[Any, dict[str, Any]], start: int,
    keys: tuple[str, ...], create: bool, params: list[Any], grads: list[Any],
    outs: tuple[list[Any], ...],
) -> int: ...
def _batch_groups(
    groups: list[dict[str, Any]], names: tuple[str, ...]
) -> list[dict[str, Any]]: ...
def _overlap_cache_clear() -> None: ...
def _overlap_cache_info() -> tuple[int, int]: ...
def _team_step_count() -> int: ...
def _set_num_threads(n: int) -> None: ...
def _get_num_threads() -> int: ...

# ---- model averaging (swa_utils.AveragedModel) ----
def _average(averaged: list[Any], model: list[Any], mode: int, weight: float) -> None: ...

# ---- learning-rate schedulers ----
def _set_general_lr_step(step: Any) -> None: ...
def _uniform_step(self: Any, epoch: int | None = None) -> None: ...
def _uniform_lr_step(sched: Any) -> bool: ...
def _write_float_lrs(groups: list[dict[str, Any]], values: list[Any]) -> list[Any] | None: ...
def _anneal_groups(
    groups: list[dict[str, Any]], start_key: str, end_key: str, cos: bool, c: float
) -> list[Any]: ...
def _set_momenta(groups: list[dict[str, Any]], momenta: list[Any], use_beta1: bool) -> None: ...
def _all_floating(tensors: list[Any]) -> bool: ...
def _unique_values(registries: list[dict[str, Any]]) -> list[Any]: ...
