"""One process, started without mpiexec (MPI's singleton mode): the wrappers are the plain
optimizer, bit for bit, and errors raise as they would without them."""

import numpy as np
from _common import SIZE, arrays, done, model, train

import fastoptim as fo
from fastoptim.distributed import DistributedOptimizer, ZeroRedundancyOptimizer

assert SIZE == 1, SIZE
for cls, kwargs in ((fo.optim.SGD, {"lr": 0.1, "momentum": 0.9}), (fo.optim.Adam, {"lr": 0.01})):
    ref = model()
    train(ref, cls(ref.parameters(), **kwargs), 4, local=False)
    for wrap in (lambda m, cls=cls, kwargs=kwargs: DistributedOptimizer(
                     cls(m.parameters(), **kwargs)),
                 lambda m, cls=cls, kwargs=kwargs: ZeroRedundancyOptimizer(
                     m.parameters(), cls, **kwargs),
                 lambda m, cls=cls, kwargs=kwargs: DistributedOptimizer(
                     ZeroRedundancyOptimizer(m.parameters(), cls, **kwargs))):
        m = model()
        opt = wrap(m)
        train(m, opt, 4, local=False)
        for a, b in zip(arrays(m), arrays(ref)):
            assert np.array_equal(a, b)
    opt.consolidate_state_dict(0)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == list(range(len(list(m.parameters()))))

m = model()
opt = DistributedOptimizer(fo.optim.SGD(m.parameters(), lr=0.1))


def closure():
    raise KeyError("mine")


try:
    opt.step(closure)
except KeyError:
    pass
else:
    raise AssertionError("no error")
done("single")
