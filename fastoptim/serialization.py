"""Checkpoints that never execute code on load: ``fastoptim.save`` and ``fastoptim.load``.

Why this file exists: ``torch.save``/``torch.load`` are built on pickle, and unpickling a file
runs whatever code the file's author chose. A checkpoint is data, so ours is stored as data:
numpy's ``.npy`` arrays plus a JSON description of the structure around them. Loading parses
both with strict validators and never unpickles, imports or calls anything named by the file.

What can be saved: fastoptim Tensors, numpy arrays and numpy scalars of boolean, integer,
floating or complex dtype, ``None``, ``bool``, ``int``, ``float``, ``str``, and ``dict``,
``OrderedDict``, ``collections.Counter``, ``list`` and ``tuple`` nesting them (dict keys: any of
the scalar types or a tuple of them). That covers module and optimizer ``state_dict()``s, every
scheduler's state (MultiStepLR keeps its milestones in a ``Counter``, as torch does) and plain
training metadata. Everything comes back with the same types (int keys stay int, tuples stay
tuples, OrderedDicts and Counters keep their order, floats are bit-exact including
nan/inf/-0.0); a Tensor
comes back as a ``fastoptim.Tensor`` (a ``fastoptim.nn.Parameter`` as a Parameter; any other
Tensor subclass as a plain Tensor) with its dtype, shape, values and ``requires_grad``; ``.grad``
and the autograd graph are not saved, as in torch, so every loaded Tensor is a leaf. When the
same Tensor or array object appears several times it is stored once and the loaded structure
shares one object in the same places. Other sharing is not recorded (a dict or list reached
twice, distinct Tensors viewing one buffer): each occurrence is stored and loaded separately.
Anything else raises ``TypeError`` naming where it was found, e.g.
``obj['param_groups'][0]['foo']``.

On-disk format, version 2 or 3. A zip archive (members stored uncompressed) holding exactly:

- ``arrays/<i>.npy`` for each entry of the manifest's ``"arrays"``: a standard ``.npy`` file
  (format 1.0, C order, no pickled objects; ``numpy.load`` reads it).
- ``manifest.json``, written last: UTF-8 JSON (ASCII-escaped) object with exactly the keys, in
  this order,

  - ``"format"``: the string ``"fastoptim.checkpoint"``;
  - ``"version"``: the integer ``2``, or ``3`` when the root holds a ``"counter"`` node (the one
    node version 3 adds). A file is written with the lowest version that describes it, so a
    checkpoint without a Counter is a version 2 file, byte for byte what earlier fastoptims
    write and read; an earlier fastoptim refuses a version 3 file as a newer format;
  - ``"arrays"``: a list; entry ``i`` describes member ``arrays/<i>.npy`` as
    ``{"kind": "tensor"|"parameter", "requires_grad": <bool>, ...}``, ``{"kind": "ndarray", ...}``
    or ``{"kind": "scalar", ...}`` (a numpy scalar, stored as a 0-d array), where ``...`` is
    ``"dtype": <numpy dtype.str, e.g. "<f4">, "shape": [<int>, ...], "sha256": <hex>``, the
    array digest: SHA-256 of ``b"fastoptim.array\0" + dtype.str + b"\0" + ",".join(shape) +
    b"\0"`` followed by the array's bytes in C order;
  - ``"root"``: the saved object as a node. Every node is a JSON object with a ``"type"`` key:
    ``{"type": "none"}``; ``{"type": "bool", "value": true}``; ``{"type": "int", "value": 3}``;
    ``{"type": "float", "value": "0x1.8000000000000p+0"}`` (``float.hex``, so exact, and
    ``"nan"``/``"inf"``/``"-inf"``); ``{"type": "str", "value": "..."}``;
    ``{"type": "list"|"tuple", "items": [node, ...]}``;
    ``{"type": "dict"|"ordereddict"|"counter", "items": [[key_node, value_node], ...]}`` in
    insertion order (``"counter"``: a ``collections.Counter``, version 3 only);
    ``{"type": "array", "index": i}`` referring to entry ``i`` of ``"arrays"``;
  - ``"sha256"``: the manifest digest, SHA-256 (hex) of the JSON text of the four keys above as
    ``json.dumps(..., ensure_ascii=True, allow_nan=False, separators=(",", ":"))`` writes it.

Why the digests: the zip's CRCs catch damaged bytes, but not a well-formed archive whose parts do
not belong together (a member from another save, two same-shape members swapped, an edited
manifest, a root pointing at the wrong array); each of those would load silently different data.
The array digests bind each member to its manifest entry, and the manifest digest binds the
manifest's own text (structure, values, kinds, indices and the array digests) together. They are
checksums, not signatures: they catch accidents and careless edits, not an author who recomputes
them.

Loading rejects, with ``CheckpointError`` (a ``ValueError``) naming the file and the problem: a
pickle file, a ``torch.save`` archive, a file that is not a zip, a truncated or corrupted zip
(members are CRC-checked), a missing, extra, duplicated or compressed member, a manifest that
does not match the schema above exactly or its digest, a member whose dtype or shape differ from
its manifest entry or whose bytes do not match its digest, an unknown format version, an array
entry never referenced, and an ``.npy`` member whose dtype is not plain numeric or whose size
disagrees with its header. Version 1 files (written before the digests existed) are refused with
a message saying so: they cannot be verified, and reading them would keep the silent mix-ups above
possible. A missing file raises ``FileNotFoundError`` as usual.

Saving to a path is atomic and leaves nothing behind for long. The archive is written to a
temporary file in the target's directory, fsynced, then renamed over the target with
``os.replace`` (and the directory fsynced where the platform allows), so a crash mid-save leaves
the previous checkpoint intact. Where the platform allows (Linux: ``O_TMPFILE`` and
``/proc/self/fd``) the temporary file has no name while it is written, so a process killed then
leaves nothing on disk; it is linked under a temporary name only for the final rename. Elsewhere
it is named ``.<target name>.<host>-<pid>-<start>-<random>.fotmp`` from the start. Either way,
every save first removes the temporaries of that naming in its directory whose writer is gone:
same host and pid namespace (the ``<host>`` token) and a pid that no longer runs, or runs a later
process (``<start>``, the writer's start time, differs). Temporaries of other hosts are left
alone, and so is everything on platforms without a way to probe a pid (Windows). A failed save
(full disk, I/O error, unwritable or missing directory, ...) raises an
``OSError`` of the same errno whose message and ``filename`` name the target, says at which
stage it failed and that the previous file is unchanged, and removes its temporary file. The
output is deterministic: saving equal data twice gives identical bytes. Saving to or loading
from a file object is supported as in torch; atomicity is then the caller's business.
"""
import collections
import errno
import hashlib
import io
import json
import os
import re
import secrets
import zipfile

import numpy
from numpy.lib import format as _npy

__all__ = ["CheckpointError", "load", "save"]

FORMAT_NAME = "fastoptim.checkpoint"
FORMAT_VERSION = 3            # the newest version written and read
_VERSIONS_READ = (2, 3)      # version 3 = version 2 + the "counter" node
_MANIFEST = "manifest.json"
# Arrays are hashed, CRC'd and written (or read) in pieces of this size, each while it is in cache.
_CHUNK = 1 << 20
_ARRAY_DIGEST_TAG = b"fastoptim.array\0"
_MANIFEST_KEYS = ("format", "version", "arrays", "root")
# A fixed timestamp (the zip epoch) keeps the bytes of a checkpoint a function of its content.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Only plain numbers: no objects, strings, datetimes, voids or structured records.
_ARRAY_KINDS = frozenset("biufc")
_SCALAR_TYPES = (type(None), bool, int, float, str)
# The containers saved, by exact type (a subclass is refused: its behaviour is not data), and
# their node names.
_CONTAINERS = {list: "list", tuple: "tuple", dict: "dict",
               collections.OrderedDict: "ordereddict", collections.Counter: "counter"}


class CheckpointError(ValueError):
    """The file is not a valid fastoptim checkpoint (wrong kind of file, corrupted, malformed)."""


def _tensor_classes():
    """(Tensor, Parameter), either None when this build does not have it."""
    # Imported lazily: fastoptim/__init__.py imports this module.
    import fastoptim

    try:
        from fastoptim.nn.parameter import Parameter
    except ImportError:
        Parameter = None
    return getattr(fastoptim, "Tensor", None), Parameter


# --------------------------------------------------------------------------------------------
# save


class _Encoder:
    """Turns a Python object into a manifest node tree plus a list of arrays to write."""

    def __init__(self):
        self.tensor_cls, self.parameter_cls = _tensor_classes()
        self.arrays = []  # numpy arrays, in member order
        self.entries = []  # manifest "arrays" entries, parallel to self.arrays
        self.memo = {}  # id(saved object) -> index, so a shared object is stored once
        self.keep = []  # keeps memoized objects alive so their ids stay unique
        self.active = set()  # ids of containers on the current path, to catch cycles
        self.version = 2  # the lowest format version whose nodes describe what was encoded

    def _add_array(self, obj, array, entry):
        index = self.memo.get(id(obj))
        if index is None:
            index = len(self.arrays)
            self.memo[id(obj)] = index
            self.keep.append(obj)
            self.arrays.append(array)
            self.entries.append(entry)
        return {"type": "array", "index": index}

    def encode(self, obj, where):
        kind = type(obj)
        if self.tensor_cls is not None and isinstance(obj, self.tensor_cls):
            array = obj._np
            _check_dtype(array.dtype, where, "fastoptim.Tensor")
            tensor_kind = "parameter" if kind is self.parameter_cls else "tensor"
            entry = {"kind": tensor_kind, "requires_grad": bool(obj.requires_grad)}
            return self._add_array(obj, array, entry)
        if kind is numpy.ndarray:
            _check_dtype(obj.dtype, where, "numpy.ndarray")
            return self._add_array(obj, obj, {"kind": "ndarray"})
        if isinstance(obj, numpy.generic):
            _check_dtype(obj.dtype, where, type(obj).__name__)
            return self._add_array(obj, numpy.asarray(obj), {"kind": "scalar"})
        if obj is None:
            return {"type": "none"}
        if kind is bool:
            return {"type": "bool", "value": obj}
        if kind is int:
            return {"type": "int", "value": obj}
        if kind is float:
            return {"type": "float", "value": obj.hex()}
        if kind is str:
            return {"type": "str", "value": obj}
        if kind in _CONTAINERS:
            if id(obj) in self.active:
                raise ValueError(f"cannot save {where}: the structure contains itself (a cycle)")
            self.active.add(id(obj))
            try:
                if kind is list or kind is tuple:
                    items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
                else:
                    items = [[self.encode_key(k, where), self.encode(v, f"{where}[{k!r}]")]
                             for k, v in obj.items()]
            finally:
                self.active.discard(id(obj))
            name = _CONTAINERS[kind]
            if name == "counter":
                self.version = max(self.version, 3)
            return {"type": name, "items": items}
        raise TypeError(f"cannot save {where}: objects of type {_type_name(obj)} are not "
                        f"supported{_hint(obj)}")

    def encode_key(self, key, where):
        if _is_plain_key(key):
            return self.encode(key, f"{where} key {key!r}")
        raise TypeError(f"cannot save {where}: dict key {key!r} of type {_type_name(key)} is not "
                        "supported (keys must be None, bool, int, float, str or tuples of them)")


def _is_plain_key(key):
    if type(key) is tuple:
        return all(_is_plain_key(k) for k in key)
    return type(key) in _SCALAR_TYPES


def _type_name(obj):
    kind = type(obj)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _hint(obj):
    module = type(obj).__module__ or ""
    if module.split(".")[0] == "torch":
        return "; convert torch tensors first, e.g. fastoptim.from_numpy(t.detach().numpy())"
    if isinstance(obj, (set, frozenset)):
        return "; store a sorted list instead"
    if isinstance(obj, tuple):
        return "; named tuples and other tuple subclasses are not saved, use a plain tuple"
    if isinstance(obj, dict):
        return "; use a plain dict, collections.OrderedDict or collections.Counter"
    return (" (supported: fastoptim.Tensor, numpy arrays and scalars, None, bool, int, float, "
            "str, and dict/OrderedDict/Counter/list/tuple of them)")


def _check_dtype(dtype, where, what):
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"cannot save {where}: {what} of dtype {dtype} is not supported "
                        "(only boolean, integer, floating and complex dtypes)")


def _array_hasher(dtype, shape):
    """A SHA-256 object fed with the array digest's prefix (the format's "sha256" of an entry)."""
    h = hashlib.sha256(_ARRAY_DIGEST_TAG)
    h.update(f"{dtype.str}\0{','.join(map(str, shape))}\0".encode("ascii"))
    return h


def _c_order_pieces(array):
    """The bytes of ``array`` in C order, as buffers of about _CHUNK bytes (no copy when the
    array is C-contiguous: slices of one uint8 view)."""
    if array.flags.c_contiguous:
        flat = array.reshape(-1).view(numpy.uint8)
        for start in range(0, flat.size, _CHUNK):
            yield flat[start:start + _CHUNK]
        return
    step = max(_CHUNK // array.itemsize, 1)
    for piece in numpy.nditer(array, flags=["external_loop", "buffered", "zerosize_ok"],
                              buffersize=step, order="C"):
        yield piece.tobytes("C")


def _manifest_text(manifest):
    return json.dumps(manifest, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _write_archive(fileobj, root, entries, arrays, version):
    """Write the members, each array hashed as it is written, then the sealed manifest."""
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        sealed = []
        for index, (entry, array) in enumerate(zip(entries, arrays)):
            header = io.BytesIO()
            _npy.write_array_header_1_0(header, {"descr": _npy.dtype_to_descr(array.dtype),
                                                 "fortran_order": False, "shape": array.shape})
            digest = _array_hasher(array.dtype, array.shape)
            # Large members need zip64 headers up front, since we stream them of unknown size.
            big = array.nbytes > (1 << 30)
            with zf.open(_member_info(f"arrays/{index}.npy"), "w", force_zip64=big) as member:
                member.write(header.getvalue())
                for piece in _c_order_pieces(array):
                    digest.update(piece)
                    member.write(piece)
            sealed.append(dict(entry, dtype=array.dtype.str, shape=list(array.shape),
                               sha256=digest.hexdigest()))
        body = {"format": FORMAT_NAME, "version": version, "arrays": sealed, "root": root}
        body["sha256"] = hashlib.sha256(_manifest_text(body).encode("ascii")).hexdigest()
        zf.writestr(_member_info(_MANIFEST), _manifest_text(body).encode("ascii"))


def _member_info(name):
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def save(obj, f):
    """Save ``obj`` to ``f`` (a path or a writable binary file object) without pickle.

    Args:
        obj: Tensors, numpy arrays/scalars, None/bool/int/float/str and dict, OrderedDict,
            Counter, list, tuple nesting them (e.g. a module's, optimizer's or scheduler's
            state_dict).
        f: a ``str`` or ``os.PathLike`` path, written atomically (temporary file in the same
            directory, fsync, ``os.replace``; symlinks are followed), or a writable binary file
            object, written at its current position and flushed but not closed.

    Raises:
        TypeError: ``obj`` holds an unsupported object; the message says where and its type.
        ValueError: ``obj`` contains itself.
        OSError: the file cannot be written (e.g. ``ENOSPC``, ``EIO``, a missing or unwritable
            directory); the message and ``filename`` name the target path, the previous file
            is left as it was and no temporary file is left behind.

    Example:
        >>> fastoptim.save({"epoch": 3, "optimizer": opt.state_dict()}, "ckpt.fo")
    """
    encoder = _Encoder()
    root = encoder.encode(obj, "obj")  # fails before anything touches the disk
    if not isinstance(f, (str, bytes, os.PathLike)):
        if not hasattr(f, "write"):
            raise TypeError(f"save() expects a path or a writable binary file object, "
                            f"got {_type_name(f)}")
        _write_archive(f, root, encoder.entries, encoder.arrays, encoder.version)
        if hasattr(f, "flush"):
            f.flush()
        return
    target = os.path.realpath(os.fspath(f))
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    directory, base = os.path.split(target)
    _remove_stale_temps(directory)
    stage = "creating its temporary file"
    temp = None
    try:
        temp = _Temp(directory, base)
        stage = "writing it"
        with os.fdopen(temp.fd, "wb") as out:
            temp.fd = None  # closed by `out` from here on
            _write_archive(out, root, encoder.entries, encoder.arrays, encoder.version)
            out.flush()
            stage = "flushing it to disk (fsync)"
            os.fsync(out.fileno())
            stage = "linking its temporary file"
            temp.link(out.fileno())
        stage = "renaming its temporary file over the target"
        os.replace(temp.name, target)
    except OSError as exc:
        if temp is not None:
            temp.discard()
        raise _save_error(exc, target, stage) from exc
    except BaseException:
        if temp is not None:
            temp.discard()
        raise
    _fsync_directory(directory)


def _save_error(exc, target, stage):
    """``exc`` (raised while saving) restated about ``target``: same errno and class."""
    state = "the previous file is unchanged" if os.path.lexists(target) else "nothing was written"
    if exc.errno is None:  # raised without an errno (not by the OS): keep its class if builtin
        kind = type(exc) if type(exc).__module__ == "builtins" else OSError
        return kind(f"cannot save checkpoint {target!r} while {stage}: {exc} ({state})")
    reason = exc.strerror or os.strerror(exc.errno)
    return OSError(exc.errno, f"cannot save checkpoint (while {stage}: {reason}; {state})",
                   target)


# The temporary files of a save, and what a later save removes. The name carries the writer's
# identity so that a later save can tell a dead writer's file from a live one's.
_TEMP_SUFFIX = ".fotmp"
_TEMP_NAME = re.compile(r"\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-(?P<start>[0-9]+)"
                        r"-[0-9a-f]{12}\.fotmp\Z")
# Unnamed temporary files (Linux): os.open(directory, O_TMPFILE), later linked by its
# /proc/self/fd path. False disables them (tests exercise the named path with it).
_USE_TMPFILE = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def _process_start(pid):
    """The start time of process ``pid`` in clock ticks since boot (Linux), else 0."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3


def _host_token():
    # The host name and the pid namespace: a pid means this process only within both.
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    host = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")
    return hashlib.sha256(f"{host}\0{namespace}".encode()).hexdigest()[:8]


_HOST = _host_token()
_SELF = (os.getpid(), _process_start(os.getpid()))


def _self_identity():
    # Recomputed after a fork (the child has another pid and start time).
    global _SELF
    if _SELF[0] != os.getpid():
        _SELF = (os.getpid(), _process_start(os.getpid()))
    return _SELF


def _writer_alive(pid, start):
    """Whether the process that named a temporary file (same host and namespace) may still
    be writing it."""
    if (pid, start) == _self_identity():
        return True  # this process (another thread's save)
    if os.name != "posix":
        return True  # no os.kill(pid, 0) probe (on Windows it would send CTRL_C_EVENT)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    now = _process_start(pid)
    return start == 0 or now == 0 or now == start  # a different start: the pid was reused


def _remove_stale_temps(directory):
    """Remove the temporary files of dead writers in ``directory`` (best effort)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # the save reports the directory's problem itself
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
            continue
        match = _TEMP_NAME.search(name)
        if match is None or match["host"] != _HOST:
            continue
        if _writer_alive(int(match["pid"]), int(match["start"])):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # another save removed it first
        except OSError:
            pass  # e.g. not ours to remove; never fail a save over someone's leftovers


class _Temp:
    """The temporary file of one save: unnamed while written where the platform allows."""

    def __init__(self, directory, base):
        pid, start = _self_identity()
        self.directory = directory
        self.prefix = f".{base}.{_HOST}-{pid}-{start}-"
        self.name = None  # its path once it has one
        self.fd = None
        # os.open with mode 0o666 lets the umask decide the final permissions, as open() would;
        # tempfile.mkstemp would leave every checkpoint readable by its owner only.
        if _USE_TMPFILE:
            try:
                self.fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o666)
                return
            except OSError as exc:
                # The file system (or an old kernel) has no O_TMPFILE: use a named file.
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _ in range(100):
            name = self._new_name()
            try:
                self.fd = os.open(name, flags, 0o666)
            except FileExistsError:
                continue
            self.name = name
            return
        raise FileExistsError(errno.EEXIST, "could not create a unique temporary file",
                              directory)

    def _new_name(self):
        return os.path.join(self.directory,
                            f"{self.prefix}{secrets.token_hex(6)}{_TEMP_SUFFIX}")

    def link(self, fd):
        """Give an unnamed file its temporary name (its contents are complete and synced)."""
        if self.name is not None:
            return
        # os.link follows the /proc symlink (linkat with AT_SYMLINK_FOLLOW) only when given a
        # directory fd; plain link() would try to link the symlink itself.
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for _ in range(100):
                name = self._new_name()
                try:
                    os.link(f"/proc/self/fd/{fd}", os.path.basename(name), dst_dir_fd=dir_fd,
                            follow_symlinks=True)
                except FileExistsError:
                    continue
                self.name = name
                return
        finally:
            os.close(dir_fd)
        raise FileExistsError(errno.EEXIST, "could not link a unique temporary file",
                              self.directory)

    def discard(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.name is not None:
            try:
                os.unlink(self.name)
            except OSError:
                pass  # already renamed, or the directory went away


def _fsync_directory(directory):
    # Makes the rename itself durable. Not possible on every platform (e.g. Windows): skip there.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# load


def load(f, map_location=None, *, weights_only=True):
    """Load a checkpoint written by :func:`save`. Never unpickles and never executes code.

    Args:
        f: a ``str`` or ``os.PathLike`` path, or a readable binary file object.
        map_location: accepted for torch source compatibility and ignored: fastoptim tensors
            always live in CPU memory.
        weights_only: accepted for torch source compatibility; loading is always as safe as
            torch's ``weights_only=True`` (stricter, in fact), whatever the value.

    Returns:
        The saved object, with the same types and structure.

    Raises:
        CheckpointError: (a ``ValueError``) the file is not a valid fastoptim checkpoint; the
            message names the file and what is wrong.
        FileNotFoundError: and other ``OSError``s from opening the path.
    """
    del map_location, weights_only  # see the docstring
    if isinstance(f, (str, bytes, os.PathLike)):
        name = os.fsdecode(os.fspath(f))
        with open(name, "rb") as fileobj:
            return _load_from(fileobj, name)
    if not hasattr(f, "read") or isinstance(f, io.TextIOBase):
        raise TypeError(f"load() expects a path or a readable binary file object, "
                        f"got {_type_name(f)}")
    name = str(getattr(f, "name", None) or repr(f))
    seekable = getattr(f, "seekable", None)
    if seekable is None or not seekable():
        f = io.BytesIO(f.read())  # zip needs random access
    return _load_from(f, name)


def _load_from(fileobj, name):
    try:
        return _Decoder(fileobj, name).run()
    except CheckpointError:
        raise
    except Exception as exc:  # any parse failure of untrusted bytes means a bad file
        raise CheckpointError(f"{name}: corrupted or truncated checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc


class _Decoder:
    """Validates an archive and rebuilds the saved object from it."""

    def __init__(self, fileobj, name):
        self.fileobj = fileobj
        self.name = name

    def fail(self, what):
        raise CheckpointError(f"{self.name}: {what}")

    def run(self):
        start = self.fileobj.tell()
        head = self.fileobj.read(64)
        self.fileobj.seek(start)
        self.sniff(head)
        with zipfile.ZipFile(self.fileobj, "r") as zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            if _MANIFEST not in names:
                if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                    self.fail("this is a torch.save checkpoint (pickle inside a zip); "
                              "fastoptim.load never unpickles: load it with torch.load in a "
                              "trusted environment and re-save the tensors with fastoptim.save")
                self.fail(f"not a fastoptim checkpoint: the zip has no {_MANIFEST}")
            if len(set(names)) != len(names):
                self.fail("the zip holds duplicated member names")
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    self.fail(f"member {info.filename!r} is compressed; fastoptim "
                              "checkpoints store members uncompressed")
            manifest = self.read_manifest(zf.read(_MANIFEST))
            expected = {_MANIFEST} | {f"arrays/{i}.npy" for i in range(len(manifest["arrays"]))}
            missing = sorted(expected - set(names))
            extra = sorted(set(names) - expected)
            if missing:
                self.fail(f"member {missing[0]!r} named by the manifest is missing")
            if extra:
                self.fail(f"unexpected member {extra[0]!r} not named by the manifest")
            self.manifest_entries = manifest["arrays"]
            self.arrays = [self.read_member(zf, i, e) for i, e in enumerate(manifest["arrays"])]
        self.objects = [None] * len(self.arrays)  # built lazily so sharing is restored
        obj = self.decode(manifest["root"], "obj")
        unused = [i for i, o in enumerate(self.objects) if o is None]
        if unused:
            self.fail(f"manifest entry arrays[{unused[0]}] is never referenced")
        return obj

    def sniff(self, head):
        if not head:
            self.fail("the file is empty")
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            self.fail("this is a pickle file (e.g. from pickle.dump or a legacy torch.save); "
                      "fastoptim.load never unpickles, since unpickling can run arbitrary code")
        if head[:4] != b"PK\x03\x04":
            self.fail("not a fastoptim checkpoint (not a zip archive)")

    def read_manifest(self, raw):
        def no_constants(token):
            self.fail(f"manifest.json holds the non-standard JSON constant {token}")

        def unique_keys(pairs):
            keys = [k for k, _ in pairs]
            if len(set(keys)) != len(keys):
                self.fail("manifest.json holds an object with duplicated keys")
            return dict(pairs)

        try:
            manifest = json.loads(raw.decode("utf-8"), parse_constant=no_constants,
                                  object_pairs_hook=unique_keys)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.fail(f"manifest.json is not valid JSON ({exc})")
        if type(manifest) is not dict:
            self.fail(f"manifest must be a JSON object, got {manifest!r:.200}")
        if manifest.get("format") != FORMAT_NAME:
            self.fail(f"manifest format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
        version = manifest.get("version")
        if type(version) is not int:
            self.fail(f"manifest version {version!r} is not an integer")
        if version == 1:
            self.fail("checkpoint format version 1 is no longer read: its manifest is not bound "
                      "to its arrays by digests, so a swapped or edited member would load "
                      "silently; save the training state again with this fastoptim")
        if version not in _VERSIONS_READ:
            self.fail(f"unknown checkpoint format version {version} (this fastoptim reads "
                      f"versions {_VERSIONS_READ[0]} to {_VERSIONS_READ[-1]}; a newer fastoptim "
                      "may read it)")
        self.version = version
        self.expect_keys(manifest, set(_MANIFEST_KEYS) | {"sha256"}, "manifest")
        body = {key: value for key, value in manifest.items() if key != "sha256"}
        digest = hashlib.sha256(_manifest_text(body).encode("ascii")).hexdigest()
        if manifest["sha256"] != digest:
            self.fail("manifest.json does not match its digest: it was edited after it was "
                      "saved (its values, kinds, array indices or array digests)")
        if type(manifest["arrays"]) is not list:
            self.fail("manifest 'arrays' is not a list")
        for i, entry in enumerate(manifest["arrays"]):
            where = f"manifest arrays[{i}]"
            kind = entry.get("kind") if type(entry) is dict else None
            if kind in ("tensor", "parameter"):
                self.expect_keys(entry, {"kind", "requires_grad", "dtype", "shape", "sha256"},
                                 where)
                if type(entry["requires_grad"]) is not bool:
                    self.fail(f"{where}: 'requires_grad' is not a bool")
            elif kind in ("ndarray", "scalar"):
                self.expect_keys(entry, {"kind", "dtype", "shape", "sha256"}, where)
            else:
                self.fail(f"{where}: unknown or missing 'kind' in {entry!r:.200}")
            shape = entry["shape"]
            if (type(entry["dtype"]) is not str or type(shape) is not list
                    or not all(type(n) is int and n >= 0 for n in shape)
                    or type(entry["sha256"]) is not str):
                self.fail(f"{where}: 'dtype' must be a string, 'shape' a list of non-negative "
                          f"integers and 'sha256' a string, got {entry!r:.200}")
            if kind == "scalar" and shape:
                self.fail(f"{where}: a numpy scalar must be stored as a 0-d array, got shape "
                          f"{shape}")
        return manifest

    def expect_keys(self, node, keys, where):
        if type(node) is not dict or set(node) != keys:
            self.fail(f"{where} must be an object with exactly the keys {sorted(keys)}, "
                      f"got {node!r:.200}")

    def read_member(self, zf, index, entry):
        try:
            return self.read_array(zf, index, entry)
        except CheckpointError:
            raise
        except Exception as exc:  # name the member in the message
            raise CheckpointError(f"{self.name}: arrays/{index}.npy is corrupted or truncated "
                                  f"({type(exc).__name__}: {exc})") from exc

    def read_array(self, zf, index, entry):
        member = f"arrays/{index}.npy"
        size = zf.getinfo(member).file_size
        with zf.open(member) as stream:
            version = _npy.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = _npy.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = _npy.read_array_header_2_0(stream)
            else:
                self.fail(f"{member}: unsupported .npy format version {version}")
            if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.hasobject:
                self.fail(f"{member}: dtype {dtype} is not allowed (only boolean, integer, "
                          "floating and complex arrays; object arrays would need pickle)")
            if any(n < 0 for n in shape):
                self.fail(f"{member}: negative dimension in shape {shape}")
            if fortran:
                self.fail(f"{member}: Fortran-ordered data; fastoptim checkpoints store C order")
            if dtype.str != entry["dtype"] or list(shape) != entry["shape"]:
                self.fail(f"{member} holds dtype {dtype.str} and shape {list(shape)} but the "
                          f"manifest records dtype {entry['dtype']} and shape {entry['shape']} "
                          "(the member was replaced or swapped, or the manifest comes from "
                          "another save)")
            count = 1
            for n in shape:
                count *= n
            nbytes = count * dtype.itemsize
            # Checked before anything is allocated: a forged header cannot ask for more
            # memory than the member really holds.
            if stream.tell() + nbytes != size:
                self.fail(f"{member}: the header's shape {shape} and dtype {dtype} do not match "
                          f"the member's size of {size} bytes")
            data = numpy.empty(nbytes, dtype=numpy.uint8)
            view = memoryview(data)
            digest = _array_hasher(dtype, shape)
            done = 0
            while done < nbytes:
                got = stream.readinto(view[done:done + _CHUNK])
                if not got:
                    self.fail(f"{member}: the array data ends early")
                digest.update(view[done:done + got])
                done += got
            if stream.read(1):  # also completes the CRC check of the member
                self.fail(f"{member}: trailing bytes after the array data")
        if digest.hexdigest() != entry["sha256"]:
            self.fail(f"{member} does not match its digest in the manifest (the member was "
                      "edited, replaced or swapped with another, or the manifest comes from "
                      "another save)")
        return data.view(dtype).reshape(shape)

    def build_array(self, index, where):
        if type(index) is not int or not 0 <= index < len(self.arrays):
            self.fail(f"{where}: array index {index!r} is out of range")
        obj = self.objects[index]
        if obj is not None:
            return obj
        array = self.arrays[index]
        kind = self.entry_kind(index)
        if kind == "ndarray":
            obj = array
        elif kind == "scalar":
            obj = array[()]
        else:
            entry = self.manifest_entries[index]
            obj = self.make_tensor(array, entry["requires_grad"], kind == "parameter", where)
        self.objects[index] = obj
        return obj

    def entry_kind(self, index):
        return self.manifest_entries[index]["kind"]

    def make_tensor(self, array, requires_grad, parameter, where):
        import fastoptim

        _, parameter_cls = _tensor_classes()
        if not hasattr(fastoptim, "from_numpy") or (parameter and parameter_cls is None):
            what = "an nn.Parameter" if parameter else "a Tensor"
            self.fail(f"{where}: the checkpoint holds {what} but this build of fastoptim has "
                      "no Tensor type")
        try:
            if not array.flags.c_contiguous:  # e.g. a Fortran-ordered member
                array = numpy.ascontiguousarray(array)
            tensor = fastoptim.from_numpy(array)
            if parameter:
                tensor = parameter_cls(tensor, requires_grad=requires_grad)
            elif requires_grad:
                tensor.requires_grad_(True)
        except (TypeError, ValueError, RuntimeError) as exc:
            self.fail(f"{where}: cannot make a fastoptim.Tensor of dtype {array.dtype}: {exc}")
        return tensor

    def decode(self, node, where):
        kind = node.get("type") if type(node) is dict else None
        if kind == "none":
            self.expect_keys(node, {"type"}, where)
            return None
        if kind in ("bool", "int", "str", "float"):
            self.expect_keys(node, {"type", "value"}, where)
            value = node["value"]
            if kind == "float":
                if type(value) is not str:
                    self.fail(f"{where}: float value {value!r} is not a float.hex string")
                try:
                    return float.fromhex(value)
                except ValueError:
                    self.fail(f"{where}: float value {value!r} is not a float.hex string")
            if type(value) is not {"bool": bool, "int": int, "str": str}[kind]:
                self.fail(f"{where}: value {value!r} is not of type {kind}")
            return value
        if kind in ("list", "tuple"):
            self.expect_keys(node, {"type", "items"}, where)
            if type(node["items"]) is not list:
                self.fail(f"{where}: 'items' is not a list")
            items = [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node["items"])]
            return items if kind == "list" else tuple(items)
        if kind in ("dict", "ordereddict", "counter"):
            self.expect_keys(node, {"type", "items"}, where)
            if type(node["items"]) is not list:
                self.fail(f"{where}: 'items' is not a list")
            if kind == "counter" and self.version < 3:
                self.fail(f"{where}: a counter node in a version {self.version} checkpoint "
                          "(counters came with version 3)")
            out = {"dict": dict, "ordereddict": collections.OrderedDict,
                   "counter": collections.Counter}[kind]()
            for pair in node["items"]:
                if type(pair) is not list or len(pair) != 2:
                    self.fail(f"{where}: a dict item must be a [key, value] pair")
                key = self.decode_key(pair[0], f"{where} key")
                if key in out:
                    self.fail(f"{where}: duplicated dict key {key!r}")
                out[key] = self.decode(pair[1], f"{where}[{key!r}]")
            return out
        if kind == "array":
            self.expect_keys(node, {"type", "index"}, where)
            return self.build_array(node["index"], where)
        self.fail(f"{where}: unknown node {node!r:.200}")

    def decode_key(self, node, where):
        kind = node.get("type") if type(node) is dict else None
        if kind not in ("none", "bool", "int", "float", "str", "tuple"):
            self.fail(f"{where}: a dict key cannot be a node of type {kind!r}")
        key = self.decode(node, where)
        if not _is_plain_key(key):
            self.fail(f"{where}: dict key {key!r:.200} holds something other than scalars")
        return key
