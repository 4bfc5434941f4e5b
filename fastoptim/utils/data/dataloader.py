"""DataLoader and default_collate (torch.utils.data's names), in the main process only.

A DataLoader draws index batches from a sampler (sequential, or a fresh random permutation
each epoch when shuffle=True) and collates the samples as torch's default_collate does:
tensors and NumPy arrays are stacked (one NumPy call at C level, no element loops in Python),
Python floats/ints/bools become float64/int64/bool tensors, and tuples, lists, dicts and
namedtuples are collated field by field.  A TensorDataset with the default collate is indexed
once per batch (t[indices]), which gives the same batch as stacking its rows.

Not supported, and refused by name: worker processes (num_workers > 0) and the options that
only mean something with them or with an accelerator (pin_memory, timeout, worker_init_fn,
multiprocessing_context, prefetch_factor, persistent_workers, pin_memory_device)."""
import collections.abc

import numpy as np

from fastoptim._C._tensor import Tensor, from_numpy, tensor
from fastoptim.utils.data.dataset import IterableDataset, TensorDataset
from fastoptim.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)


def default_collate(batch):
    """Merge a list of samples into a batch, as torch.utils.data.default_collate."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return from_numpy(np.stack([t.numpy(force=True) for t in batch]))
    if isinstance(elem, np.ndarray) and elem.dtype.kind in "biuf":
        return from_numpy(np.ascontiguousarray(np.stack(batch)))
    if isinstance(elem, np.generic) and elem.dtype.kind in "biuf":
        return from_numpy(np.array(batch))
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, float):
        return tensor(batch, dtype="float64")
    if isinstance(elem, int):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return type(elem)({k: default_collate([d[k] for d in batch]) for k in elem}) \
            if not isinstance(elem, dict) or type(elem) is dict else \
            {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, dicts "
                    f"or lists; found {type(elem)}")


def default_convert(data):
    """What a loader with batch_size=None returns per sample: arrays become tensors."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return from_numpy(data)
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return [default_convert(d) for d in data]
    return data


class DataLoader:
    """Batches of a dataset: ``for x, y in DataLoader(TensorDataset(X, Y), batch_size=64,
    shuffle=True, generator=g)``.  Shuffled orders come from fastoptim's generator (reproducible
    under a seed, but not torch's order for the same seed)."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        unsupported = []
        if num_workers != 0:
            unsupported.append(f"num_workers={num_workers!r}")
        if pin_memory:
            unsupported.append("pin_memory=True")
        if timeout != 0:
            unsupported.append(f"timeout={timeout!r}")
        if worker_init_fn is not None:
            unsupported.append("worker_init_fn")
        if multiprocessing_context is not None:
            unsupported.append("multiprocessing_context")
        if prefetch_factor is not None:
            unsupported.append(f"prefetch_factor={prefetch_factor!r}")
        if persistent_workers:
            unsupported.append("persistent_workers=True")
        if pin_memory_device:
            unsupported.append(f"pin_memory_device={pin_memory_device!r}")
        if unsupported:
            raise NotImplementedError(
                "fastoptim's DataLoader loads in the main process only (num_workers=0, no "
                f"pinned memory); unsupported: {', '.join(unsupported)}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        self.dataset = dataset
        self.num_workers = 0
        self.pin_memory = False
        self.timeout = 0
        self.worker_init_fn = None
        self.prefetch_factor = None
        self.generator = generator
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            if sampler is not None and shuffle:
                raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle \
                else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        elif batch_size is not None and self._iterable:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) \
                    or batch_size <= 0:
                raise ValueError("batch_size should be a positive integer value, but got "
                                 f"batch_size={batch_size}")
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (self._iterable and batch_size)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self):
        if self._iterable:
            return self._iter_iterable()
        if self.batch_sampler is None:
            return (self.collate_fn(self.dataset[i]) for i in self.sampler)
        return self._iter_batches()

    def _iter_batches(self):
        fast = type(self.dataset) is TensorDataset and self.collate_fn is default_collate
        getitems = getattr(self.dataset, "__getitems__", None)
        for idx in self.batch_sampler:
            if fast:
                key = np.asarray(idx, dtype=np.int64)
                yield [t[key] for t in self.dataset.tensors]
            elif callable(getitems):
                yield self.collate_fn(getitems(idx))
            else:
                yield self.collate_fn([self.dataset[i] for i in idx])

    def _iter_iterable(self):
        if not self._auto_collation:
            for x in self.dataset:
                yield self.collate_fn(x)
            return
        batch = []
        for x in self.dataset:
            batch.append(x)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)


_ = Sampler
