"""How ZeRO-1 splits parameters between ranks: torch's sorted-greedy rule, with no MPI.

It lives outside ``fastoptim.distributed`` so that it imports (and is tested) where mpi4py is
missing: ``import fastoptim.distributed`` itself needs mpi4py.

The rule is ``torch.distributed.optim.ZeroRedundancyOptimizer._partition_parameters``: groups in
order; within a group, params sorted by size (largest first, ties in the group's order); each
goes to the rank holding the fewest elements so far (the lowest such rank on ties). The running
sizes carry over from group to group, so adding a group later never moves an earlier param.
Every rank gets one group per global group (possibly with no params), a shallow copy of the
global group with ``params`` replaced, so hyperparameters line up group by group.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["partition_parameters"]


def partition_parameters(param_groups: list[dict[str, Any]], world_size: int) -> list[list[dict]]:
    """Split ``param_groups`` over ``world_size`` ranks; ``result[rank]`` is that rank's groups.

    Args:
        param_groups: an optimizer's ``param_groups`` (dicts with a ``params`` list; anything
            with ``numel()`` counts as a param).
        world_size: the number of ranks (>= 1).
    """
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    per_rank: list[list[dict]] = [[] for _ in range(world_size)]
    sizes = [0] * world_size
    for group in param_groups:
        params_per_rank: list[list] = [[] for _ in range(world_size)]
        # sorted() is stable: equal sizes keep the group's order, as in torch
        for param in sorted(group["params"], key=lambda t: t.numel(), reverse=True):
            rank = sizes.index(min(sizes))
            params_per_rank[rank].append(param)
            sizes[rank] += param.numel()
        for rank, params in enumerate(params_per_rank):
            rank_group = copy.copy(group)
            rank_group["params"] = params
            per_rank[rank].append(rank_group)
    return per_rank
