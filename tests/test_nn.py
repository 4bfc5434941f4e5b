"""fastoptim.nn against torch.nn: Module bookkeeping, Linear, Sequential, activations, MSELoss,
nn.init and gradient clipping.

Why: optimizers consume ``model.parameters()`` and state dicts; their order, names, dedup and
error behaviour must be torch's, and the layers must compute torch's numbers.
"""
import math

import numpy as np
import pytest

import fastoptim as fo
import fastoptim.nn.functional as F
from fastoptim import nn


def _torch():
    return pytest.importorskip("torch")


class Net(nn.Module):
    def __init__(self, M=nn):
        super().__init__()
        self.fc1 = M.Linear(3, 4)
        self.act = M.Tanh()
        self.block = M.Sequential(M.Linear(4, 4), M.ReLU(), M.Linear(4, 2))
        self.head = self.block[2]          # shared submodule: its params appear once

    def forward(self, x):
        return self.block(self.act(self.fc1(x)))


def _torch_net():
    torch = _torch()

    class Net(torch.nn.Module):   # same class name as ours, for repr and modules()
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(3, 4)
            self.act = torch.nn.Tanh()
            self.block = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(),
                                             torch.nn.Linear(4, 2))
            self.head = self.block[2]

        def forward(self, x):
            return self.block(self.act(self.fc1(x)))
    return Net()


# ---- Module ---------------------------------------------------------------------------------

def test_parameters_order_names_and_dedup_match_torch():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "block.0.weight", "block.0.bias",
                     "block.2.weight", "block.2.bias"]
    assert len(list(net.parameters())) == 6
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    tnet = _torch_net()
    assert names == [n for n, _ in tnet.named_parameters()]
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_modules()] == [n for n, _ in tnet.named_modules()]
    assert [type(m).__name__ for m in net.children()] == \
        [type(m).__name__ for m in tnet.children()]
    assert [type(m).__name__ for m in net.modules()] == [type(m).__name__ for m in tnet.modules()]


def test_shared_parameter_is_deduplicated():
    m = nn.Module()
    p = nn.Parameter(fo.ones(2))
    m.a = p
    m.b = p
    assert len(list(m.parameters())) == 1
    assert [n for n, _ in m.named_parameters()] == ["a"]


def test_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(fo.zeros(2))
    m.sub = nn.Linear(2, 2)
    m.plain = fo.zeros(2)                  # a plain tensor is not registered
    assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = fo.zeros(2)
    m.w = None
    assert [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    m.register_buffer("running", fo.zeros(3))
    assert "running" in m.state_dict()
    del m.sub
    assert [n for n, _ in m.named_parameters()] == []

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fo.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_zero_grad_train_eval():
    net = Net()
    net(fo.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.training and net.block[1].training
    assert net.eval() is net
    assert not net.training and not net.block[1].training
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


def test_state_dict_round_trip_and_strict_errors():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert not any(v.requires_grad for v in sd.values())
    r = b.load_state_dict(sd)
    assert r.missing_keys == [] and r.unexpected_keys == []
    for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
        assert n1 == n2 and np.array_equal(p1.detach().numpy(), p2.detach().numpy())
        assert p1.detach().numpy() is not p2.detach().numpy()
    sd2 = dict(sd)
    del sd2["fc1.bias"]
    sd2["extra"] = fo.zeros(1)
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd2)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Unexpected key(s) in state_dict: "extra"' in msg
    assert 'Missing key(s) in state_dict: "fc1.bias"' in msg
    r = b.load_state_dict(sd2, strict=False)
    assert r.missing_keys == ["fc1.bias"] and r.unexpected_keys == ["extra"]


def test_load_state_dict_size_mismatch_leaves_module_unchanged():
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sd = {k: v.clone() + 1.0 for k, v in net.state_dict().items()}
    sd["block.2.weight"] = fo.zeros(3, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for block.2.weight: copying a param "
                                           r"with shape fastoptim.Size\(\[3, 3\]\) from "
                                           r"checkpoint, the shape in current model is "
                                           r"fastoptim.Size\(\[2, 4\]\)."):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k].numpy())


def test_state_dict_loads_torch_checkpoint_and_back():
    torch = _torch()
    tnet = _torch_net()
    net = Net()
    net.load_state_dict(tnet.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(net(fo.tensor(x)).detach().numpy(),
                               tnet(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    tnet2 = _torch_net()
    tnet2.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                           for k, v in net.state_dict().items()})


def test_module_repr_matches_torch():
    _torch()
    assert repr(Net()) == repr(_torch_net())
    torch = _torch()
    assert repr(nn.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))
    assert repr(nn.MSELoss()) == repr(torch.nn.MSELoss())
    assert repr(nn.ReLU()) == repr(torch.nn.ReLU())


# ---- Linear ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fan_in,fan_out", [(1, 1), (10, 1), (3, 7), (100, 20)])
def test_linear_init_bounds(fan_in, fan_out):
    m = nn.Linear(fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)
    w = m.weight.detach().numpy()
    b = m.bias.detach().numpy()
    assert w.shape == (fan_out, fan_in) and b.shape == (fan_out,)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    if w.size >= 1000:
        # U(-bound, bound): std bound/sqrt(3)
        assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_linear_reproducible_under_manual_seed():
    fo.manual_seed(7)
    a = nn.Linear(4, 3)
    fo.manual_seed(7)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())
    c = nn.Linear(4, 3)
    assert not np.array_equal(a.weight.detach().numpy(), c.weight.detach().numpy())


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [None, fo.float64])
@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 4), (0, 4)])
def test_linear_forward(shape, dtype, bias):
    m = nn.Linear(4, 3, bias=bias, dtype=dtype)
    dt = np.float64 if dtype is fo.float64 else np.float32
    assert m.weight.dtype is (dtype or fo.float32)
    assert (m.bias is None) == (not bias)
    x = np.random.default_rng(1).standard_normal(shape).astype(dt)
    y = m(fo.tensor(x))
    w = m.weight.detach().numpy()
    expected = x @ w.T + (m.bias.detach().numpy() if bias else 0)
    assert y.shape == expected.shape and y.dtype is (dtype or fo.float32)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    y.sum().backward()
    assert m.weight.grad.shape == (3, 4)


def test_linear_bad_arguments():
    with pytest.raises(ValueError):
        nn.Linear(-1, 2)
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        nn.Linear(3, 2)(fo.zeros(4, 5))


def test_linear_matches_torch_with_same_weights():
    torch = _torch()
    m = nn.Linear(6, 4)
    t = torch.nn.Linear(6, 4)
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in m.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((9, 6)).astype(np.float32)
    ours, theirs = m(fo.tensor(x)), t(torch.tensor(x))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1.3e-6,
                               atol=1e-5)
    ours.pow(2).mean().backward()
    theirs.pow(2).mean().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1.3e-6,
                               atol=1e-5)
    np.testing.assert_allclose(m.bias.grad.numpy(), t.bias.grad.numpy(), rtol=1.3e-6, atol=1e-5)


# ---- Sequential and activations ------------------------------------------------------------------

def test_sequential():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[0], nn.Linear) and isinstance(s[-1], nn.Linear)
    assert isinstance(s[1:], nn.Sequential) and len(s[1:]) == 2
    assert [type(m).__name__ for m in s] == ["Linear", "ReLU", "Linear"]
    x = fo.randn(4, 2)
    np.testing.assert_allclose(s(x).detach().numpy(),
                               s[2](s[1](s[0](x))).detach().numpy())
    s.append(nn.Sigmoid())
    assert len(s) == 4 and [n for n, _ in s.named_children()][-1] == "3"
    from collections import OrderedDict
    s2 = nn.Sequential(OrderedDict([("lin", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in s2.named_parameters()] == ["lin.weight", "lin.bias"]


@pytest.mark.parametrize("name", ["ReLU", "Tanh", "Sigmoid", "Identity"])
def test_activations_vs_torch(name):
    torch = _torch()
    x = np.linspace(-3, 3, 13, dtype=np.float32)
    ours = getattr(nn, name)()(fo.tensor(x)).numpy()
    theirs = getattr(torch.nn, name)()(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1.3e-6, atol=1e-7)


def test_relu_inplace_and_functional():
    x = fo.tensor([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.tolist() == [0.0, 2.0]
    assert F.relu(fo.tensor([-1.0])).item() == 0.0
    assert F.tanh(fo.tensor([0.0])).item() == 0.0
    assert F.sigmoid(fo.tensor([0.0])).item() == 0.5


# ---- MSELoss -----------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mseloss_reductions_vs_torch(reduction):
    torch = _torch()
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    ta = fo.tensor(a, requires_grad=True)
    ours = nn.MSELoss(reduction=reduction)(ta, fo.tensor(b))
    tt = torch.tensor(a, requires_grad=True)
    theirs = torch.nn.MSELoss(reduction=reduction)(tt, torch.tensor(b))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1.3e-6)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), tt.grad.numpy(), rtol=1.3e-6, atol=1e-6)


def test_mseloss_invalid_reduction():
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.mse_loss(fo.zeros(2), fo.zeros(2), reduction="avg")
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"


# ---- nn.init -----------------------------------------------------------------------------------

def test_init_bounds_and_statistics():
    w = fo.empty(200, 300)
    nn.init.uniform_(w, -0.5, 1.5)
    v = w.numpy()
    assert v.min() >= -0.5 and v.max() < 1.5 and abs(v.mean() - 0.5) < 0.02
    nn.init.normal_(w, 2.0, 0.5)
    assert abs(w.numpy().mean() - 2.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    nn.init.constant_(w, 3.0)
    assert (w.numpy() == 3.0).all()
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.ones_(w)
    assert (w.numpy() == 1.0).all()
    # fan_in = 300, fan_out = 200
    nn.init.xavier_uniform_(w)
    a = math.sqrt(6.0 / 500)
    assert np.abs(w.numpy()).max() <= a and abs(w.numpy().std() - a / math.sqrt(3)) < 0.02 * a
    nn.init.xavier_normal_(w, gain=2.0)
    assert abs(w.numpy().std() - 2.0 * math.sqrt(2.0 / 500)) < 0.02 * 2.0 * math.sqrt(2.0 / 500)
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 300)
    assert np.abs(w.numpy()).max() <= bound
    assert abs(w.numpy().std() - bound / math.sqrt(3)) < 0.02 * bound
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2.0 / 200)) < 0.02 * math.sqrt(2.0 / 200)


def test_init_on_parameter_does_not_record_graph():
    p = nn.Parameter(fo.empty(3, 4))
    r = nn.init.kaiming_uniform_(p, a=math.sqrt(5))
    assert r is p and p.is_leaf and p.grad_fn is None and p.requires_grad


def test_init_errors_and_gain_vs_torch():
    torch = _torch()
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(fo.empty(3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(fo.empty(3, 3), mode="fan_avg")
    for nl, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                      ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert nn.init.calculate_gain(nl, param) == torch.nn.init.calculate_gain(nl, param)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")
    t = fo.empty(0, 3)
    assert nn.init.kaiming_uniform_(t) is t   # zero-size: no-op


def test_init_writes_through_non_contiguous_views():
    base = fo.zeros(4, 6)
    nn.init.constant_(base[:, ::2], 1.0)
    assert base.numpy()[:, ::2].all() and not base.numpy()[:, 1::2].any()
    nn.init.uniform_(base.t(), 2.0, 3.0)
    assert (base.numpy() >= 2.0).all()


# ---- gradient clipping ---------------------------------------------------------------------------

def _params_with_grads(M, grads):
    ps = []
    for g in grads:
        p = M.zeros(*g.shape, requires_grad=True)
        p.grad = M.tensor(g.copy())
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
def test_clip_grad_norm_vs_torch(max_norm, norm_type):
    torch = _torch()
    rng = np.random.default_rng(4)
    shapes = [(3, 4), (5,), (1,)] + ([(0,)] if norm_type != math.inf else [])  # torch: no inf
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]       # norm of empty
    ours = _params_with_grads(fo, grads)
    theirs = _params_with_grads(torch, grads)
    n1 = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    np.testing.assert_allclose(n1.item(), n2.item(), rtol=1e-5)
    assert n1.dtype is fo.float32 and n1.ndim == 0
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_edge_cases():
    p = fo.zeros(2, requires_grad=True)
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0     # no grads
    p.grad = fo.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    q = fo.zeros(2, requires_grad=True)
    q.grad = fo.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(q, 10.0).item() == 5.0
    assert q.grad.tolist() == [3.0, 4.0]                         # below max_norm: untouched


@pytest.mark.parametrize("clip", [0.0, 0.5, 10.0])
def test_clip_grad_value_vs_torch(clip):
    torch = _torch()
    grads = [np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)]
    ours = _params_with_grads(fo, grads)
    theirs = _params_with_grads(torch, grads)
    nn.utils.clip_grad_value_(ours, clip)
    torch.nn.utils.clip_grad_value_(theirs, clip)
    np.testing.assert_array_equal(ours[0].grad.numpy(), theirs[0].grad.numpy())


def test_parameter_repr_and_module_double():
    torch = _torch()
    assert repr(nn.Parameter(fo.tensor([1.0, -2.5]))) == \
        repr(torch.nn.Parameter(torch.tensor([1.0, -2.5]))).replace("torch.", "fastoptim.")
    m = nn.Linear(2, 2).double()
    assert m.weight.dtype is fo.float64 and isinstance(m.weight, nn.Parameter)
    assert m(fo.ones(1, 2, dtype=fo.float64)).dtype is fo.float64


def test_module_call_pickle_deepcopy_and_instance_forward():
    # Module.__call__ lives in a Cython base class: calling, pickling, deepcopy and a
    # forward replaced on the instance must behave as with a plain Python __call__.
    import copy
    import pickle

    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    x = fo.randn(3)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert clone(x).tolist() == m(x).tolist()
        assert [p.shape for p in clone.parameters()] == [p.shape for p in m.parameters()]
    lin = nn.Linear(2, 1)
    lin.forward = lambda inp, scale=1.0: inp * scale
    assert lin(fo.ones(2), scale=3.0).tolist() == [3.0, 3.0]
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(x)
