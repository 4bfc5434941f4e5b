"""fastoptim.save/load: exact round trips, atomic writes, and hostile files that must not load."""
import collections
import hashlib
import io
import json
import math
import os
import pathlib
import pickle
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

import fastoptim
from fastoptim.serialization import CheckpointError, load, save

HAVE_TENSOR = hasattr(fastoptim, "Tensor") and hasattr(fastoptim, "from_numpy")
needs_tensor = pytest.mark.skipif(not HAVE_TENSOR, reason="fastoptim.Tensor not built yet")


def tensor(values, dtype=np.float32, requires_grad=False):
    t = fastoptim.from_numpy(np.array(values, dtype=dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


def assert_same(got, want, where="obj"):
    """Equal structure, values and exact types all the way down (nan equals nan)."""
    assert type(got) is type(want), f"{where}: {type(got)} != {type(want)}"
    if HAVE_TENSOR and isinstance(want, fastoptim.Tensor):
        assert got.requires_grad == want.requires_grad, where
        assert_same(np.asarray(got._np), np.asarray(want._np), where)
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape, where
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, np.generic):
        assert got.dtype == want.dtype, where
        assert got == want or (np.isnan(got) and np.isnan(want)), where
    elif isinstance(want, float):
        assert got == want or (math.isnan(got) and math.isnan(want)), where
        assert math.copysign(1, got) == math.copysign(1, want), where
    elif isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for (gk, gv), (wk, wv) in zip(got.items(), want.items()):
            assert_same(gk, wk, f"{where} key")
            assert_same(gv, wv, f"{where}[{wk!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def roundtrip(obj, tmp_path):
    path = tmp_path / "ckpt.fo"
    save(obj, path)
    return load(path)


# --- round trips ---------------------------------------------------------------------------

SCALARS = [None, True, False, 0, -1, 2**70, -(2**64), 1.5, -0.0, 0.1, 5e-324,
           1.7976931348623157e308,
           math.nan, math.inf, -math.inf, "", "lr", "ünïcødé ∂ 🚀", "quote\"back\\slash\n",
           "\ud800 lone surrogate"]

STRUCTURES = {
    "empty dict": {},
    "empty list": [],
    "empty tuple": (),
    "singleton tuple": (1,),
    "nested": {"a": [1, (2.5, None, [True, {"b": "c"}])], "d": ((), [], {})},
    "int keys stay int": {0: "zero", 1: "one", -7: "neg", 10**20: "big"},
    "mixed keys": {2: 1, "2": 2, 1.5: 3, None: 4, True: 5, (1, "a", (None,)): 6},
    "insertion order": {"z": 1, "a": 2, "m": 3},
    "ordered dict": collections.OrderedDict([("weight", 1.0), ("bias", 2.0), ("a", 3)]),
    "ordered in plain": {"model": collections.OrderedDict(b=1, a=2), "epoch": 3},
    "counter": collections.Counter({30: 1, 80: 2, 10: 1}),
    "empty counter": collections.Counter(),
    "counter in plain": {"milestones": collections.Counter([5, 5, 2]), "gamma": 0.1},
    "epoch": 17,
    "scheduler": {"step_size": 30, "gamma": 0.1, "base_lrs": [0.1, 0.01], "last_epoch": 4,
                  "verbose": False, "_step_count": 5, "_get_lr_called_within_step": False,
                  "_last_lr": [0.1, 0.01], "lr_lambdas": [None, {"factor": 0.5}]},
}


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalar_roundtrip(value, tmp_path):
    assert_same(roundtrip(value, tmp_path), value)
    assert_same(roundtrip({"v": [value]}, tmp_path), {"v": [value]})


@pytest.mark.parametrize("name", STRUCTURES)
def test_structure_roundtrip(name, tmp_path):
    assert_same(roundtrip(STRUCTURES[name], tmp_path), STRUCTURES[name])


ARRAYS = {
    "float32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "float64": np.array([0.1, -0.0, np.nan, np.inf, -np.inf, 5e-324]),
    "int64": np.array([-(2**63), 2**63 - 1, 0]),
    "bool": np.array([[True, False], [False, True]]),
    "0-dim": np.array(3.25, dtype=np.float32),
    "0-size": np.zeros((0,), dtype=np.float64),
    "0-size 3d": np.zeros((3, 0, 2), dtype=np.int64),
    "int8": np.array([-128, 127], dtype=np.int8),
    "uint16": np.array([65535], dtype=np.uint16),
    "float16": np.array([1.5, -2.0], dtype=np.float16),
    "complex64": np.array([1 + 2j], dtype=np.complex64),
    "big-endian": np.array([1.0, 2.0], dtype=">f8"),
    "non-contiguous": np.arange(20.0)[::3],
    "transposed": np.arange(12.0).reshape(3, 4).T,
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_ndarray_roundtrip(name, tmp_path):
    got = roundtrip(ARRAYS[name], tmp_path)
    assert_same(got, ARRAYS[name])
    assert got.flags.writeable


@pytest.mark.parametrize("value", [np.float32(1.5), np.float64(np.nan), np.int64(-3),
                                   np.bool_(True), np.int32(7)], ids=repr)
def test_numpy_scalar_roundtrip(value, tmp_path):
    assert_same(roundtrip({"step": value}, tmp_path), {"step": value})


@needs_tensor
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4)])
def test_tensor_roundtrip(dtype, shape, tmp_path):
    t = fastoptim.from_numpy((np.arange(int(np.prod(shape))) % 3).astype(dtype).reshape(shape))
    got = roundtrip([t], tmp_path)[0]
    assert isinstance(got, fastoptim.Tensor)
    assert got._np.dtype == dtype and got._np.shape == shape
    assert_same(got, t)


@needs_tensor
def test_tensor_requires_grad_and_non_contiguous(tmp_path):
    w = tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    b = fastoptim.from_numpy(np.arange(12.0).reshape(3, 4).T)  # non-contiguous storage
    got = roundtrip({"w": w, "b": b}, tmp_path)
    assert got["w"].requires_grad is True and got["b"].requires_grad is False
    assert_same(got, {"w": w, "b": b})


@needs_tensor
@pytest.mark.parametrize("requires_grad", [True, False])
def test_parameter_stays_a_parameter(requires_grad, tmp_path):
    from fastoptim.nn import Parameter

    p = Parameter(tensor([[1.0, 2.0]]), requires_grad=requires_grad)
    got = roundtrip([p, p], tmp_path)
    assert type(got[0]) is Parameter and got[0] is got[1]
    assert got[0].requires_grad is requires_grad
    assert_same(got, [p, p])


@needs_tensor
def test_module_state_dict_restores_a_module(tmp_path):
    from fastoptim import nn

    model = nn.Linear(3, 2)
    state = model.state_dict()
    got = roundtrip(state, tmp_path)
    assert_same(got, state)
    fresh = nn.Linear(3, 2)
    fresh.load_state_dict(got)
    assert fastoptim.equal(fresh.weight, model.weight) and fastoptim.equal(fresh.bias, model.bias)
    params = roundtrip(model.state_dict(keep_vars=True), tmp_path)
    assert all(type(v) is nn.Parameter and v.requires_grad for v in params.values())


@needs_tensor
def test_view_of_a_tensor_comes_back_as_a_leaf(tmp_path):
    w = tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    t = w.t()  # non-contiguous, non-leaf
    got = roundtrip(t, tmp_path)
    assert got.is_leaf and got.requires_grad and tuple(got.shape) == (3, 2)
    np.testing.assert_array_equal(got._np, np.arange(6.0).reshape(2, 3).T)


def make_array(kind):
    """Array factory: the same checkpoint tests run on numpy arrays and on Tensors."""
    if kind == "tensor":
        if not HAVE_TENSOR:
            pytest.skip("fastoptim.Tensor not built yet")
        return lambda values, **kw: tensor(values, **kw)
    return lambda values, requires_grad=False, dtype=np.float32: np.array(values, dtype=dtype)


@pytest.mark.parametrize("kind", ["ndarray", "tensor"])
def test_full_training_checkpoint(kind, tmp_path):
    arr = make_array(kind)
    model = collections.OrderedDict([("0.weight", arr([[0.5, -1.0]], requires_grad=True)),
                                     ("0.bias", arr([0.25], requires_grad=True))])
    optimizer = {
        "state": {
            0: {"step": arr(3.0), "exp_avg": arr([[0.1, 0.2]]), "exp_avg_sq": arr([[1e-3, 0]])},
            1: {"step": arr(3.0), "exp_avg": arr([0.3]), "exp_avg_sq": arr([4e-3])},
        },
        "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0,
                          "amsgrad": False, "maximize": False, "foreach": None,
                          "capturable": False, "differentiable": False, "fused": None,
                          "decoupled_weight_decay": False, "params": [0, 1]}],
    }
    scheduler = STRUCTURES["scheduler"]
    ckpt = {"epoch": 5, "model": model, "optimizer": optimizer, "scheduler": scheduler,
            "best_loss": math.inf, "rng": arr([1, 2, 3], dtype=np.int64)}
    got = roundtrip(ckpt, tmp_path)
    assert_same(got, ckpt)
    assert list(got["optimizer"]["state"]) == [0, 1]
    assert type(got["optimizer"]["param_groups"][0]["betas"]) is tuple


@pytest.mark.parametrize("kind", ["ndarray", "tensor"])
def test_shared_object_is_stored_once_and_shared_again(kind, tmp_path):
    a = make_array(kind)(np.arange(1000.0))
    b = make_array(kind)(np.arange(1000.0))
    got = roundtrip({"x": a, "y": [a, b], "z": (a,)}, tmp_path)
    assert got["x"] is got["y"][0] is got["z"][0]
    assert got["y"][1] is not got["x"]
    with zipfile.ZipFile(tmp_path / "ckpt.fo") as zf:
        assert sorted(zf.namelist()) == ["arrays/0.npy", "arrays/1.npy", "manifest.json"]


def test_output_is_deterministic(tmp_path):
    obj = {"a": np.arange(5.0), "b": {3: (1, 2.5)}}
    save(obj, tmp_path / "one")
    save(obj, tmp_path / "two")
    assert (tmp_path / "one").read_bytes() == (tmp_path / "two").read_bytes()


# --- paths and file objects ----------------------------------------------------------------

def test_str_pathlike_and_bytes_paths(tmp_path):
    obj = {"a": np.arange(3)}
    save(obj, str(tmp_path / "s"))
    save(obj, tmp_path / "p")
    save(obj, os.fsencode(tmp_path / "b"))
    for name in "spb":
        assert_same(load(tmp_path / name), obj)
        assert_same(load(str(tmp_path / name)), obj)


def test_file_objects(tmp_path):
    obj = {"a": np.arange(3.0), "t": (1, None)}
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    assert_same(load(buf), obj)
    with open(tmp_path / "f", "wb") as f:
        save(obj, f)
    with open(tmp_path / "f", "rb") as f:
        assert_same(load(f), obj)


class _OneWay(io.RawIOBase):
    """A pipe-like stream: no seek, no tell."""

    def __init__(self, data=b""):
        self.data, self.out = io.BytesIO(data), bytearray()

    def readable(self):
        return True

    def writable(self):
        return True

    def readinto(self, b):
        return self.data.readinto(b)

    def write(self, b):
        self.out += bytes(b)
        return len(b)


def test_non_seekable_streams():
    obj = {"a": np.arange(3.0), 2: [1.5]}
    sink = _OneWay()
    save(obj, sink)
    assert_same(load(_OneWay(bytes(sink.out))), obj)


def test_load_accepts_torch_keywords(tmp_path):
    save([1, 2], tmp_path / "c")
    for kwargs in ({"weights_only": True}, {"weights_only": False}, {"map_location": "cpu"},
                   {"map_location": lambda storage, loc: storage, "weights_only": True}):
        assert load(tmp_path / "c", **kwargs) == [1, 2]
    assert load(tmp_path / "c", "cpu") == [1, 2]


def test_text_mode_file_is_a_type_error(tmp_path):
    save([1], tmp_path / "c")
    with open(tmp_path / "c", encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        load(f)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope")


def test_saved_file_permissions_follow_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        save([1], tmp_path / "c")
    finally:
        os.umask(mask)
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o644


def test_save_follows_symlink(tmp_path):
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    save([1], tmp_path / "link")
    assert (tmp_path / "link").is_symlink()
    assert load(tmp_path / "real") == [1]


# --- atomicity -----------------------------------------------------------------------------

class _FailingFile(io.RawIOBase):
    """A writable file that raises ``error`` once ``budget`` bytes have been written."""

    def __init__(self, real, budget, error):
        self.real, self.budget, self.error = real, budget, error

    def writable(self):
        return True

    def seekable(self):
        return True

    def write(self, b):
        n = memoryview(b).nbytes
        if n > self.budget:
            raise self.error
        self.budget -= n
        return self.real.write(b)

    def seek(self, *args):
        return self.real.seek(*args)

    def tell(self):
        return self.real.tell()

    def fileno(self):
        return self.real.fileno()

    def flush(self):
        if not self.real.closed:
            self.real.flush()

    def close(self):
        super().close()
        self.real.close()


def _fail_on_second_array(monkeypatch, budget=200, error=None):
    """The next save's file fails after ``budget`` bytes (mid-way through its arrays)."""
    real = os.fdopen
    error = error or OSError("disk full (simulated)")
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FailingFile(real(fd, *a, **k),
                                                                        budget, error))


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.fo"
    old = {"epoch": 1, "w": np.arange(4.0)}
    save(old, path)
    before = path.read_bytes()
    _fail_on_second_array(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        save({"epoch": 2, "w": np.ones(4), "m": np.zeros(4)}, path)
    assert path.read_bytes() == before
    assert_same(load(path), old)
    assert os.listdir(tmp_path) == ["ckpt.fo"]  # no temporary file left behind


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    _fail_on_second_array(monkeypatch)
    with pytest.raises(OSError):
        save([np.ones(2), np.ones(3)], tmp_path / "ckpt.fo")
    assert os.listdir(tmp_path) == []


def test_failed_rename_cleans_up(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError("simulated")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        save([1], tmp_path / "ckpt.fo")
    assert os.listdir(tmp_path) == []


def test_unsupported_object_fails_before_touching_disk(tmp_path):
    path = tmp_path / "ckpt.fo"
    save([1], path)
    with pytest.raises(TypeError):
        save([np.ones(3), {1, 2}], path)
    assert load(path) == [1]
    assert os.listdir(tmp_path) == ["ckpt.fo"]


def test_save_fsyncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.isdir("/proc") else None)
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    save([1], tmp_path / "c")
    assert len(synced) == 2
    if os.path.isdir("/proc"):
        assert synced == [False, True]  # the file before the rename, then its directory


# --- what cannot be saved ------------------------------------------------------------------

class _Custom:
    pass


class _FakeTorchTensor:
    pass


_FakeTorchTensor.__module__ = "torch"
Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("bad, type_name", [
    ({1, 2}, "set"),
    (frozenset(), "frozenset"),
    (lambda: 0, "function"),
    (_Custom(), "_Custom"),
    (_FakeTorchTensor(), "torch._FakeTorchTensor"),
    (Point(1, 2), "Point"),
    (collections.defaultdict(int), "defaultdict"),
    (b"bytes", "bytes"),
    (1 + 2j, "complex"),
    (np.array([object()], dtype=object), "dtype object"),
    (np.array(["a"]), "dtype <U1"),
    (np.zeros(2, dtype=[("a", "f4")]), "dtype"),
    (np.ma.masked_array([1.0]), "MaskedArray"),
])
def test_unsupported_types_name_the_key_path(bad, type_name, tmp_path):
    state = {"state": {}, "param_groups": [{"lr": 0.1, "foo": bad}]}
    with pytest.raises(TypeError) as info:
        save(state, tmp_path / "c")
    message = str(info.value)
    assert "obj['param_groups'][0]['foo']" in message
    assert type_name in message


def test_unsupported_dict_key(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['a'\].*key .*frozenset"):
        save({"a": {frozenset(): 1}}, tmp_path / "c")
    with pytest.raises(TypeError, match="key"):
        save({(1, np.ones(1).tobytes()): 1}, tmp_path / "c")


def test_cycle_is_rejected(tmp_path):
    loop = [1]
    loop.append({"back": loop})
    with pytest.raises(ValueError, match=r"obj\[1\]\['back'\].*cycle"):
        save(loop, tmp_path / "c")


def test_repeated_container_is_not_a_cycle(tmp_path):
    group = {"lr": 0.1}
    assert_same(roundtrip([group, group], tmp_path), [group, dict(group)])


# --- hostile and broken files --------------------------------------------------------------

class _Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_payload_really_runs_under_pickle(tmp_path):
    # The control for the tests below: the payload is live.
    pickle.loads(pickle.dumps(_Payload(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


def test_pickle_file_is_refused_without_running_it(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    path.write_bytes(pickle.dumps({"state": _Payload(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match="pickle") as info:
        load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_torch_zip_checkpoint_is_refused_without_running_it(tmp_path):
    # The layout torch.save writes: a zip whose data.pkl unpickles the object.
    path, marker = tmp_path / "model.pt", tmp_path / "pwned"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Payload(marker)))
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    with pytest.raises(CheckpointError, match="torch.save") as info:
        load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def _member_facts(data):
    """(dtype.str, shape, sha256) of an .npy member as the format defines the array digest,
    written from the spec (not from fastoptim's code); a placeholder when it is not readable."""
    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        read_header = {(1, 0): npy_format.read_array_header_1_0,
                       (2, 0): npy_format.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(stream)
    except Exception:  # bytes that are no .npy at all: the loader must say so itself
        return "<f8", [3], "0" * 64
    payload = stream.read()
    if dtype.hasobject or len(payload) != int(np.prod(shape)) * dtype.itemsize:
        return dtype.str, list(shape), "0" * 64  # never built: may be huge or hold pickles
    values = np.frombuffer(payload, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    head = b"fastoptim.array\0" + f"{dtype.str}\0{','.join(map(str, shape))}\0".encode()
    return dtype.str, list(shape), hashlib.sha256(head + values.tobytes("C")).hexdigest()


def _seal(manifest, members):
    """Fill in what a hand-made manifest leaves out: each entry's dtype, shape and digest
    (from its member) and the manifest digest, so that a test's one defect is the only one."""
    manifest = dict(manifest)
    if type(manifest.get("arrays")) is list:
        entries = []
        for i, entry in enumerate(manifest["arrays"]):
            entry = dict(entry)
            data = members.get(f"arrays/{i}.npy")
            if "sha256" not in entry:
                dtype, shape, digest = _member_facts(data or b"")
                entry.setdefault("dtype", dtype)
                entry.setdefault("shape", shape)
                entry["sha256"] = digest
            entries.append(entry)
        manifest["arrays"] = entries
    if "sha256" not in manifest:
        text = json.dumps(manifest, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        manifest["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return manifest


def _archive(manifest, members=None, raw_manifest=None):
    """A hand-made checkpoint zip: (manifest dict or raw bytes, {name: bytes}); a dict manifest
    is sealed (_seal)."""
    members = members or {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", raw_manifest if raw_manifest is not None
                    else json.dumps(_seal(manifest, members)))
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy_bytes(array, allow_pickle=False):
    buf = io.BytesIO()
    npy_format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _manifest(arrays=(), root=None):
    return {"format": "fastoptim.checkpoint", "version": 2, "arrays": list(arrays),
            "root": root if root is not None else {"type": "none"}}


ONE_ARRAY = _manifest([{"kind": "ndarray"}], {"type": "array", "index": 0})


def test_hand_made_archive_loads(tmp_path):
    # Guards the helpers above: the "bad" archives below differ from a good one in one place.
    path = tmp_path / "c"
    path.write_bytes(_archive(ONE_ARRAY, {"arrays/0.npy": _npy_bytes(np.arange(3.0))}))
    assert_same(load(path), np.arange(3.0))


def test_object_array_member_is_refused_without_running_it(tmp_path):
    path, marker = tmp_path / "c", tmp_path / "pwned"
    evil = np.array([_Payload(marker)], dtype=object)
    path.write_bytes(_archive(ONE_ARRAY, {"arrays/0.npy": _npy_bytes(evil, allow_pickle=True)}))
    with pytest.raises(CheckpointError, match="dtype object") as info:
        load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


GOOD_NPY = _npy_bytes(np.arange(3.0))
BAD_ARCHIVES = {
    "empty file": (b"", "empty"),
    "text file": (b"hello world, not a checkpoint", "not a zip"),
    "zip without manifest": (None, "no manifest.json"),
    "missing member": (_archive(ONE_ARRAY), "'arrays/0.npy'.*missing"),
    "extra member": (_archive(ONE_ARRAY, {"arrays/0.npy": GOOD_NPY, "notes.txt": b"hi"}),
                     "unexpected member 'notes.txt'"),
    "unreferenced array": (_archive(_manifest([{"kind": "ndarray"}]), {"arrays/0.npy": GOOD_NPY}),
                           "never referenced"),
    "unknown version": (_archive(dict(ONE_ARRAY, version=4), {"arrays/0.npy": GOOD_NPY}),
                        "unknown checkpoint format version 4"),
    "counter in a version 2 file": (_archive(_manifest(root={"type": "counter", "items": []})),
                                    "counter node in a version 2 checkpoint"),
    "version 1 (no digests)": (_archive(dict(ONE_ARRAY, version=1), {"arrays/0.npy": GOOD_NPY}),
                               "version 1 is no longer read.*digests"),
    "manifest without digest": (_archive(None, raw_manifest=json.dumps(ONE_ARRAY).encode()),
                                "exactly the keys"),
    "fortran-ordered member": (_archive(ONE_ARRAY, {"arrays/0.npy": _npy_bytes(
        np.asfortranarray(np.ones((2, 3))))}), "Fortran"),
    "negative shape in manifest": (_archive(_manifest([{"kind": "ndarray", "shape": [-3]}],
                                                      {"type": "array", "index": 0}),
                                            {"arrays/0.npy": GOOD_NPY}), "non-negative"),
    "version as string": (_archive(dict(ONE_ARRAY, version="1"), {"arrays/0.npy": GOOD_NPY}),
                          "not an integer"),
    "wrong format name": (_archive(dict(ONE_ARRAY, format="other"), {"arrays/0.npy": GOOD_NPY}),
                          "format is 'other'"),
    "manifest not json": (_archive(None, raw_manifest=b"{nope"), "not valid JSON"),
    "manifest not utf-8": (_archive(None, raw_manifest=b"\xff\xfe"), "not valid JSON"),
    "manifest NaN literal": (_archive(None, raw_manifest=b'{"format": NaN}'), "NaN"),
    "manifest duplicate keys": (_archive(None, raw_manifest=b'{"version": 2, "version": 2}'),
                                "duplicated keys"),
    "manifest extra key": (_archive(dict(_manifest(), extra=1)), "exactly the keys"),
    "manifest is a list": (_archive(None, raw_manifest=b"[]"), "must be a JSON object"),
    "unknown node": (_archive(_manifest(root={"type": "pickle", "value": "x"})), "unknown node"),
    "node missing field": (_archive(_manifest(root={"type": "int"})), "exactly the keys"),
    "int holding a float": (_archive(_manifest(root={"type": "int", "value": 1.5})),
                            "not of type int"),
    "bool holding an int": (_archive(_manifest(root={"type": "bool", "value": 1})),
                            "not of type bool"),
    "bad float hex": (_archive(_manifest(root={"type": "float", "value": "0xzz"})), "float.hex"),
    "list key": (_archive(_manifest(root={"type": "dict", "items": [
        [{"type": "list", "items": []}, {"type": "none"}]]})), "key cannot be"),
    "duplicate dict key": (_archive(_manifest(root={"type": "dict", "items": [
        [{"type": "int", "value": 1}, {"type": "none"}],
        [{"type": "int", "value": 1}, {"type": "none"}]]})), "duplicated dict key"),
    "bad dict item": (_archive(_manifest(root={"type": "dict", "items": [[]]})), "pair"),
    "array index out of range": (_archive(_manifest(root={"type": "array", "index": 3})),
                                 "out of range"),
    "unknown array kind": (_archive(_manifest([{"kind": "pickle"}]), {"arrays/0.npy": GOOD_NPY}),
                           "unknown or missing 'kind'"),
    "requires_grad not bool": (_archive(
        _manifest([{"kind": "tensor", "requires_grad": "yes"}], {"type": "array", "index": 0}),
        {"arrays/0.npy": GOOD_NPY}), "not a bool"),
    "npy not npy": (_archive(ONE_ARRAY, {"arrays/0.npy": b"plain bytes"}), "0.npy is corrupted"),
    "npy trailing bytes": (_archive(ONE_ARRAY, {"arrays/0.npy": GOOD_NPY + b"\0" * 8}),
                           "do not match"),
    "npy short data": (_archive(ONE_ARRAY, {"arrays/0.npy": GOOD_NPY[:-8]}), "do not match"),
    "npy string dtype": (_archive(ONE_ARRAY, {"arrays/0.npy": _npy_bytes(np.array(["x"]))}),
                         "not allowed"),
    "scalar that is not 0-d": (_archive(_manifest([{"kind": "scalar"}], {
        "type": "array", "index": 0}), {"arrays/0.npy": GOOD_NPY}), "0-d"),
}


def _zip_without_manifest():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weights.npy", GOOD_NPY)
    return buf.getvalue()


@pytest.mark.parametrize("name", BAD_ARCHIVES)
def test_bad_archive_is_refused_with_a_clear_message(name, tmp_path):
    data, pattern = BAD_ARCHIVES[name]
    path = tmp_path / "bad.fo"
    path.write_bytes(_zip_without_manifest() if data is None else data)
    with pytest.raises(CheckpointError, match=pattern) as info:
        load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_duplicate_member_is_refused(tmp_path):
    path = tmp_path / "c"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", json.dumps(ONE_ARRAY))
        zf.writestr("arrays/0.npy", GOOD_NPY)
        with pytest.warns(UserWarning, match="Duplicate"):
            zf.writestr("arrays/0.npy", _npy_bytes(np.arange(99.0)))
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="duplicated member"):
        load(path)


def test_compressed_member_is_refused(tmp_path):
    path = tmp_path / "c"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(ONE_ARRAY))
        zf.writestr("arrays/0.npy", GOOD_NPY)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="compressed"):
        load(path)


def test_forged_npy_shape_cannot_request_huge_memory(tmp_path):
    header = npy_format.header_data_from_array_1_0(np.arange(3.0))
    header["shape"] = (10**15,)
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, header)
    path = tmp_path / "c"
    path.write_bytes(_archive(ONE_ARRAY, {"arrays/0.npy": buf.getvalue() + b"\0" * 24}))
    with pytest.raises(CheckpointError, match="do not match"):
        load(path)


def test_deeply_nested_manifest_is_refused(tmp_path):
    depth = 100_000
    root = '{"type":"list","items":[' * depth + '{"type":"none"}' + "]}" * depth
    raw = '{"format":"fastoptim.checkpoint","version":2,"arrays":[],"root":' + root + "}"
    path = tmp_path / "c"
    path.write_bytes(_archive(None, raw_manifest=raw.encode()))
    with pytest.raises(CheckpointError):
        load(path)


def _good_checkpoint(tmp_path):
    obj = {"state": {0: {"exp_avg": np.arange(4.0)}}, "betas": (0.9, 0.999), "n": 3}
    path = tmp_path / "good.fo"
    save(obj, path)
    return obj, path.read_bytes()


def test_truncated_files_are_refused(tmp_path):
    _, data = _good_checkpoint(tmp_path)
    path = tmp_path / "cut.fo"
    lengths = sorted(set(range(0, len(data), 7)) | {1, 4, 30, len(data) - 22, len(data) - 1})
    for n in lengths:
        path.write_bytes(data[:n])
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert str(path) in str(info.value), n


def test_flipped_bytes_are_refused_or_harmless(tmp_path):
    """Every single-byte corruption either raises CheckpointError or changes nothing that is read
    (e.g. a timestamp): a wrong result is never returned."""
    obj, data = _good_checkpoint(tmp_path)
    path = tmp_path / "flip.fo"
    refused = 0
    for i in range(len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        try:
            got = load(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            refused += 1
        else:
            assert_same(got, obj)
    assert refused > len(data) * 0.8


def test_flipped_bytes_in_payloads_are_caught_by_crc(tmp_path):
    _, data = _good_checkpoint(tmp_path)
    path = tmp_path / "flip.fo"
    for needle in (b"0x1.ccccccccccccdp-1", np.arange(4.0).tobytes()[8:16]):
        i = data.index(needle) + len(needle) // 2
        corrupt = bytearray(data)
        corrupt[i] ^= 0x01
        path.write_bytes(bytes(corrupt))
        with pytest.raises(CheckpointError, match="CRC"):
            load(path)


TENSOR_ARCHIVE = _archive(
    _manifest([{"kind": "tensor", "requires_grad": False}], {"type": "array", "index": 0}),
    {"arrays/0.npy": _npy_bytes(np.arange(3, dtype=np.uint16))})


def test_tensor_entry_without_tensor_support(tmp_path, monkeypatch):
    monkeypatch.delattr(fastoptim, "from_numpy", raising=False)
    path = tmp_path / "c"
    path.write_bytes(TENSOR_ARCHIVE)
    with pytest.raises(CheckpointError, match="no Tensor type"):
        load(path)


def test_tensor_entry_of_a_dtype_tensor_refuses(tmp_path, monkeypatch):
    def picky_from_numpy(array):
        raise TypeError(f"unsupported dtype {array.dtype}")

    monkeypatch.setattr(fastoptim, "from_numpy", picky_from_numpy, raising=False)
    path = tmp_path / "c"
    path.write_bytes(TENSOR_ARCHIVE)
    with pytest.raises(CheckpointError, match=r"obj: cannot make a fastoptim.Tensor.*uint16"):
        load(path)


# --- parts that do not belong together: a manifest bound to its arrays -----------------------
# Each case rebuilds a good archive with valid CRCs whose parts were mixed up or edited, the way
# a copy tool, a hand edit or a half-merged directory can. Format version 1 loaded most of them
# silently (wrong values, kinds or flags); each must raise CheckpointError naming the problem.

def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rezip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(_plain_info(name), data)
    return buf.getvalue()


def _plain_info(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    return info


def _edit_manifest(members, edit):
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    return dict(members, **{"manifest.json": json.dumps(manifest).encode()})


def _array_nodes(node):
    """The root's array nodes, depth first."""
    if isinstance(node, dict):
        if node.get("type") == "array":
            yield node
        for value in node.values():
            yield from _array_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _array_nodes(value)


def _training_state(scale):
    """A checkpoint whose arrays all have one shape and dtype, so that swaps are well formed."""
    w = fastoptim.from_numpy(np.arange(4, dtype=np.float32) * scale) if HAVE_TENSOR else \
        np.arange(4, dtype=np.float32) * scale
    if HAVE_TENSOR:
        w.requires_grad_(True)
    return {"epoch": int(scale), "w": w,
            "exp_avg": np.full(4, 0.5 * scale, dtype=np.float32),
            "exp_avg_sq": np.full(4, 0.25 * scale, dtype=np.float32), "lr": 0.1 * scale}


def _swap_kind(manifest):
    entry = manifest["arrays"][0]
    entry["kind"] = "ndarray"
    entry.pop("requires_grad", None)


def _swap_entries(manifest):
    manifest["arrays"][1], manifest["arrays"][2] = manifest["arrays"][2], manifest["arrays"][1]


def _permute_indices(manifest):
    nodes = list(_array_nodes(manifest["root"]))
    nodes[1]["index"], nodes[2]["index"] = nodes[2]["index"], nodes[1]["index"]


def _edit_epoch(manifest):
    for key, value in manifest["root"]["items"]:
        if key["value"] == "epoch":
            value["value"] += 1


def _flip_requires_grad(manifest):
    manifest["arrays"][0]["requires_grad"] = not manifest["arrays"][0]["requires_grad"]


def _drop_last_array(manifest):
    manifest["arrays"].pop()


DIGEST = "does not match its digest"
SWAPS = {
    # name: (how the good archive `a` is mixed with `b`, another save, -> members; message)
    "another save's manifest, same layout":
        (lambda a, b: dict(a, **{"manifest.json": b["manifest.json"]}), DIGEST),
    "one member from another save":
        (lambda a, b: dict(a, **{"arrays/1.npy": b["arrays/1.npy"]}), DIGEST),
    "two same-shape members swapped":
        (lambda a, b: dict(a, **{"arrays/1.npy": a["arrays/2.npy"],
                                 "arrays/2.npy": a["arrays/1.npy"]}), DIGEST),
    "permuted array indices in the root":
        (lambda a, b: _edit_manifest(a, _permute_indices), DIGEST),
    "array entries and members permuted together":
        (lambda a, b: _edit_manifest(dict(a, **{"arrays/1.npy": a["arrays/2.npy"],
                                                "arrays/2.npy": a["arrays/1.npy"]}),
                                     _swap_entries), DIGEST),
    "an edited value": (lambda a, b: _edit_manifest(a, _edit_epoch), DIGEST),
    "kind tensor -> ndarray": (lambda a, b: _edit_manifest(a, _swap_kind), DIGEST),
    "requires_grad flipped": (lambda a, b: _edit_manifest(a, _flip_requires_grad), DIGEST),
    "member of another shape":
        (lambda a, b: dict(a, **{"arrays/1.npy": _npy_bytes(np.zeros(5, np.float32))}),
         "holds dtype <f4 and shape \\[5\\] but the manifest records dtype <f4 and shape \\[4\\]"),
    "member of another dtype":
        (lambda a, b: dict(a, **{"arrays/1.npy": _npy_bytes(np.zeros(4, np.float64))}),
         "holds dtype <f8"),
    "another save's manifest, other layout":
        (lambda a, b: dict(a, **{"manifest.json": b["manifest.json"]}), "missing"),
    "an array entry dropped": (lambda a, b: _edit_manifest(a, _drop_last_array), DIGEST),
}


@pytest.mark.parametrize("name", SWAPS)
def test_mixed_up_archive_is_refused(name, tmp_path):
    save(_training_state(1.0), tmp_path / "a.fo")
    other = _training_state(2.0)
    if name.endswith("other layout"):
        other["extra"] = np.ones(4, np.float32)
    save(other, tmp_path / "b.fo")
    mix, pattern = SWAPS[name]
    path = tmp_path / "mixed.fo"
    path.write_bytes(_rezip(mix(_members(tmp_path / "a.fo"), _members(tmp_path / "b.fo"))))
    with pytest.raises(CheckpointError, match=pattern) as info:
        load(path)
    assert str(path) in str(info.value)


def test_unmixed_rezip_still_loads(tmp_path):
    # The control for the cases above: rezipping the members unchanged is not a defect.
    state = _training_state(1.0)
    save(state, tmp_path / "a.fo")
    path = tmp_path / "same.fo"
    path.write_bytes(_rezip(_members(tmp_path / "a.fo")))
    assert_same(load(path), state)


def test_members_are_standard_npy_files(tmp_path):
    obj = [np.arange(6.0).reshape(2, 3), np.asfortranarray(np.ones((2, 3), np.int32)),
           np.array([1.5], ">f8"), np.bool_(True)]
    save(obj, tmp_path / "c")
    members = _members(tmp_path / "c")
    for i, want in enumerate(obj):
        got = np.load(io.BytesIO(members[f"arrays/{i}.npy"]), allow_pickle=False)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.asarray(want).dtype


def test_manifest_digest_is_over_its_canonical_text(tmp_path):
    save({"a": np.arange(3.0), "b": "x"}, tmp_path / "c")
    raw = _members(tmp_path / "c")["manifest.json"]
    manifest = json.loads(raw)
    digest = manifest.pop("sha256")
    text = json.dumps(manifest, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    assert hashlib.sha256(text.encode()).hexdigest() == digest
    assert raw == (text[:-1] + f',"sha256":"{digest}"}}').encode()
    assert list(json.loads(raw)) == ["format", "version", "arrays", "root", "sha256"]


def _version_of(path):
    return json.loads(_members(path)["manifest.json"])["version"]


def test_counter_keeps_type_order_and_counts(tmp_path):
    # MultiStepLR's state dict holds its milestones as a Counter (torch's too).
    milestones = collections.Counter([80, 30, 30, 50])
    got = roundtrip({"milestones": milestones}, tmp_path)["milestones"]
    assert type(got) is collections.Counter
    assert list(got.items()) == list(milestones.items())
    assert got[7] == 0   # still a Counter: a missing key counts 0


def test_version_is_the_lowest_that_describes_the_file(tmp_path):
    # Without a Counter the file is version 2, byte for byte what an earlier fastoptim writes
    # (so it still reads it); with one, version 3, which an earlier fastoptim refuses by number.
    save({"a": [1, 2.5], "b": collections.OrderedDict(x=1)}, tmp_path / "v2")
    save({"a": [1, 2.5], "b": collections.Counter(x=1)}, tmp_path / "v3")
    assert (_version_of(tmp_path / "v2"), _version_of(tmp_path / "v3")) == (2, 3)


def test_counter_subclass_is_refused(tmp_path):
    class Tally(collections.Counter):
        pass
    with pytest.raises(TypeError, match=r"obj\['t'\].*Tally"):
        save({"t": Tally(a=1)}, tmp_path / "c")
