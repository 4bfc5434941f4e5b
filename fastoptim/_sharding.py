"""How data parallelism splits work, with no MPI: ZeRO-1's split of parameters between ranks
(torch's sorted-greedy rule), and ``DistributedOptimizer``'s cut of the grads into buckets.

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

__all__ = ["bucket_pieces", "partition_parameters"]


def bucket_pieces(sizes: list[int],
                  chunk: int) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """Tensors of ``sizes`` elements laid end to end in one flat buffer, cut into buckets of
    ``chunk`` elements (the last one shorter; a tensor may span buckets): per bucket
    ``(start, stop, pieces)``, ``pieces`` ``(k, lo, hi)`` meaning elements ``lo:hi`` of tensor
    ``k``, laid end to end from ``start``."""
    total = sum(sizes)
    starts = list(range(0, total, chunk))
    pieces: list[list[tuple[int, int, int]]] = [[] for _ in starts]
    offset = 0
    for k, n in enumerate(sizes):
        lo = 0
        while lo < n:
            b = (offset + lo) // chunk
            hi = min(n, (b + 1) * chunk - offset)
            pieces[b].append((k, lo, hi))
            lo = hi
        offset += n
    return [(s, min(s + chunk, total), p) for s, p in zip(starts, pieces)]


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
