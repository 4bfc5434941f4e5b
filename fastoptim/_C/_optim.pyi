"""Type stubs for fastoptim._C._optim (hand-written; keep in step with _optim.pyx).

``step`` updates one param group in place with one C call per dtype present (any kernel: the
``Plan`` of its description says which).  Lists hold
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

class Plan:
    """A description's kernel call (made by fastoptim/optim/_step.py's ``plan``)."""
    op: str
    def __init__(
        self, kernel: str, op: str, nhyper: int, state_keys: tuple[str, ...],
        list_names: tuple[str, ...], when: tuple[tuple[int, int], ...], has_step: bool,
        from_grad: bool, scalar: tuple[bool, ...] = ...,
    ) -> None: ...

def step(
    plan: Plan,
    hyper: tuple[Any, ...],
    params: _Arrays,
    grads: _Arrays,
    states: tuple[_Arrays | None, ...],
    state_steps: _Steps | None = ...,
    buffer_is_new: Sequence[bool] | None = ...,
    *,
    run: bool = ...,
    overlaps: bool = ...
) -> None: ...

# The classes' steady-state shortcut: the same update taken straight from a param group's
# params and the optimizer's state.  True when done; False, having written nothing, when the
# caller must collect lists and call ``step`` instead.
_State: TypeAlias = dict[Any, dict[str, Any]]

def group_step(
    plan: Plan, settings: tuple[Any, ...], group_params: list[Any], state: _State
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
