"""fastoptim.utils.data against torch.utils.data: datasets, samplers, DataLoader batching and
collation, random_split, and the options refused by name.

Shuffled orders come from fastoptim's generator, so they cannot equal torch's for a seed: the
tests check that an order is a permutation, is reproduced by the same seed, differs per epoch,
and that everything not random matches torch exactly."""
import collections

import numpy as np
import pytest

import fastoptim as fo
from fastoptim.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def _torch():
    return pytest.importorskip("torch")


def _to_np(x):
    if isinstance(x, (list, tuple)):
        return [_to_np(v) for v in x]
    if isinstance(x, dict):
        return {k: _to_np(v) for k, v in x.items()}
    if hasattr(x, "numpy"):
        return (x.dtype.name if hasattr(x.dtype, "name") else str(x.dtype).split(".")[-1],
                x.numpy().tolist())
    return x


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return float(i) ** 2, i


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (10, 10, False),
                                                    (10, 20, False), (10, 20, True), (0, 4, False),
                                                    (1, 1, False), (7, 1, True)])
def test_sequential_batches_match_torch(n, batch_size, drop_last):
    torch = _torch()
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    Y = np.arange(n)
    ours = DataLoader(TensorDataset(fo.tensor(X), fo.tensor(Y)), batch_size=batch_size,
                      drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(Y)), batch_size=batch_size,
        drop_last=drop_last)
    assert len(ours) == len(theirs)
    got = [_to_np(b) for b in ours]
    want = [_to_np(b) for b in theirs]
    assert [[g[1] for g in b] for b in got] == [[w[1] for w in b] for b in want]
    assert all(isinstance(b, list) for b in ours)


def test_default_collate_matches_torch_structure():
    torch = _torch()
    Point = collections.namedtuple("Point", "x y")
    samples = [
        [{"a": 1.0, "b": (2, 3), "c": "s"}] * 3,
        [(1, 2.0, True)] * 2,
        [np.ones(3, np.float32), np.zeros(3, np.float32)],
        [Point(1, 2.5), Point(3, 4.5)],
    ]
    for batch in samples:
        ours = default_collate(batch)
        theirs = torch.utils.data.default_collate(batch)
        assert type(ours).__name__ == type(theirs).__name__
        assert str(_to_np(ours)).replace("fastoptim.", "") == \
            str(_to_np(theirs)).replace("torch.", "")
    t = default_collate([fo.tensor([1.0, 2.0]), fo.tensor([3.0, 4.0])])
    assert t.shape == (2, 2) and t.dtype is fo.float32
    assert default_collate([1.5, 2.5]).dtype is fo.float64
    assert default_collate([1, 2]).dtype is fo.int64
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal "
                                           "size"):
        default_collate([[1, 2], [1]])


def test_map_dataset_and_custom_collate():
    loader = DataLoader(Squares(5), batch_size=2)
    batches = list(loader)
    assert batches[0][0].tolist() == [0.0, 1.0] and batches[-1][1].tolist() == [4]
    loader = DataLoader(Squares(5), batch_size=2, collate_fn=lambda b: len(b))
    assert list(loader) == [2, 2, 1]
    # batch_size=None: no batching; a tuple sample comes back a list, as torch converts it
    assert list(DataLoader(Squares(3), batch_size=None)) == [[0.0, 0], [1.0, 1], [4.0, 2]]


def test_shuffle_is_a_seeded_permutation():
    X = fo.arange(50)
    ds = TensorDataset(X)

    def epoch(loader):
        return [int(v) for b in loader for v in b[0].tolist()]

    g = fo.Generator().manual_seed(123)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=g)
    e1, e2 = epoch(loader), epoch(loader)
    assert sorted(e1) == list(range(50)) and sorted(e2) == list(range(50))
    assert e1 != list(range(50)) and e1 != e2
    g2 = fo.Generator().manual_seed(123)
    loader2 = DataLoader(ds, batch_size=8, shuffle=True, generator=g2)
    assert epoch(loader2) == e1 and epoch(loader2) == e2
    fo.manual_seed(7)
    a = epoch(DataLoader(ds, batch_size=8, shuffle=True))
    fo.manual_seed(7)
    assert epoch(DataLoader(ds, batch_size=8, shuffle=True)) == a


def test_random_split_lengths_fractions_and_errors():
    torch = _torch()
    g = fo.Generator().manual_seed(0)
    parts = random_split(range(10), [3, 7], generator=g)
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    assert isinstance(parts[0], Subset)
    for fr in ([0.33, 0.33, 0.34], [0.5, 0.5], [0.1, 0.9], [1.0]):
        want = [len(p) for p in torch.utils.data.random_split(range(11), fr)]
        assert [len(p) for p in random_split(range(11), fr)] == want
    g1, g2 = fo.Generator().manual_seed(5), fo.Generator().manual_seed(5)
    assert list(random_split(range(10), [5, 5], generator=g1)[0]) == \
        list(random_split(range(10), [5, 5], generator=g2)[0])
    with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of the "
                                         "input dataset!"):
        random_split(range(10), [3, 3])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(2), [1.0, 0.0])


def test_subset_concat_and_samplers():
    ds = Squares(6)
    sub = Subset(ds, [5, 0, 2])
    assert len(sub) == 3 and sub[0] == (25.0, 5)
    cat = ConcatDataset([Squares(2), Squares(3)])
    assert len(cat) == 5 and cat[2] == (0.0, 0) and cat[-1] == (4.0, 2)
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, True)) == 2
    s = RandomSampler(range(6), generator=fo.Generator().manual_seed(1))
    assert sorted(s) == list(range(6))
    r = list(RandomSampler(range(6), replacement=True, num_samples=20,
                           generator=fo.Generator().manual_seed(1)))
    assert len(r) == 20 and all(0 <= i < 6 for i in r)


@pytest.mark.parametrize("kwargs,name", [
    (dict(num_workers=2), "num_workers=2"), (dict(pin_memory=True), "pin_memory=True"),
    (dict(timeout=5), "timeout=5"), (dict(worker_init_fn=print), "worker_init_fn"),
    (dict(persistent_workers=True), "persistent_workers=True"),
    (dict(prefetch_factor=2), "prefetch_factor=2"),
])
def test_unsupported_options_raise_naming_them(kwargs, name):
    with pytest.raises(NotImplementedError, match="unsupported: " + name):
        DataLoader(range(4), **kwargs)


def test_option_errors_match_torch():
    torch = _torch()
    for kwargs in (dict(shuffle=True, sampler=[1]), dict(batch_size=0),
                   dict(batch_sampler=[[0]], batch_size=2), dict(batch_size=None, drop_last=True)):
        with pytest.raises(ValueError) as ours:
            DataLoader(range(4), **kwargs)
        with pytest.raises(ValueError) as theirs:
            torch.utils.data.DataLoader(range(4), **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(fo.zeros(3), fo.zeros(4))


def test_generator_state_round_trip():
    g = fo.Generator().manual_seed(42)
    assert g.initial_seed() == 42
    state = g.get_state()
    a = fo.randperm(10, generator=g).tolist()
    g.set_state(state)
    assert fo.randperm(10, generator=g).tolist() == a
    assert sorted(a) == list(range(10))
    assert fo.randperm(0).tolist() == []
    with pytest.raises(TypeError, match="generator must be a fastoptim.Generator"):
        fo.randperm(3, generator=1)
