# The steady-state steps of the learning-rate schedulers (fastoptim/optim/lr_scheduler.py),
# included into _optim.pyx.
#
# Why: a training loop may step its scheduler every iteration, and the Python rule (torch's)
# is a loop of Python frames over the param groups.  A scheduler class whose rule is one of
# those below has a C function as its ``step``: it does what ``LRScheduler.step()`` does for
# that rule (``_step_count``, ``last_epoch``, each group's ``lr``, and momentum for OneCycleLR
# and CyclicLR, ``_last_lr``) with no Python frame, so a step over 100 groups costs a few
# microseconds.  CosineAnnealingWarmRestarts has its own ``step`` (``T_cur``, ``T_i``, the
# ``step(epoch)`` form): its C step does what that does, and falls back to it.
#
# Design: each step
#   1. checks, before it changes anything, that it is in the steady state it handles: the
#      class keeps the methods that state the rule (``_fast_step``, set by
#      ``LRScheduler.__init_subclass__``), not the first step after construction (its call-order
#      check may warn), the group count the scheduler knows (a new group is adopted by the
#      Python path), every lr a Python float (a Tensor lr is filled in place by the Python
#      path), the rule's attributes of the types handled here; otherwise it declines, having
#      changed nothing, and the caller runs the general path (``LRScheduler.step``: the rule's
#      statement);
#   2. computes the per-step scalars once, in double arithmetic in Python's order of operations,
#      which is Python float arithmetic bit for bit: ints are taken up to 2**52 in magnitude,
#      where Python's mixed int/float arithmetic is this double arithmetic and int/int true
#      division is the correctly rounded double quotient; ``math.cos`` is libm's ``cos``; no
#      contraction into fused multiply-adds (setup.py: -ffp-contract=off); a zero divisor
#      declines (Python raises);
#   3. writes every group in one C loop over the lrs read in step 1: one float object per
#      group, stored in the group and in the new ``_last_lr`` list.
# The lrs are read through ``_lr_record``: per position, the group dict and its version tag
# when a step last read or wrote its lr; a group whose dict still shows that tag is read from
# there (no lookup), any edit of it (or a new dict) moves the tag and it is looked up again.
# OneCycleLR reads four values from each group besides the lr; its step keeps them per group
# (``_OneCycleCache``) with the group dict's version tag after its own writes, and reads a
# group again only when that tag moved (an edit, a new dict, another scheduler's write).
# LambdaLR and MultiplicativeLR call their lambdas from C (the rule is the user's Python), and
# CyclicLR its scale function unless it is the 'triangular' or 'triangular2' one.
# SWALR and ReduceLROnPlateau (a float or int metric) step here as well.
# tests/test_lr_scheduler_fast_paths.py holds every step against its Python rule, exactly.

from cpython.dict cimport PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromDouble, PyLong_FromLongLong
from libc.math cimport copysign, floor, fmod, isfinite, log
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.tuple cimport PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM

cdef object _general_lr_step = None
cdef object _general_write_lrs = None


def _set_general_lr_step(object step, object write_lrs):
    """Register ``LRScheduler.step`` (the general path of the C steps) and
    ``lr_scheduler._write_lrs`` (how LambdaLR's step writes values that are not all floats);
    set once, by fastoptim.optim.lr_scheduler at import (this module cannot import it)."""
    global _general_lr_step, _general_write_lrs
    _general_lr_step = step
    _general_write_lrs = write_lrs


cdef enum:
    # the doubles a step keeps on the stack (lrs, per group; OneCycleLR, CyclicLR: 5 per group)
    _LR_STACK = 256


cdef inline bint _as_double(object v, double *out) noexcept:
    # A Python float, or an int of at most 2**52 in magnitude (a double holds it, and the
    # difference of two of them, exactly: arithmetic on it in C is then Python's mixed
    # int/float arithmetic); False for anything else.
    cdef long long k
    cdef int overflow = 0
    if type(v) is float:
        out[0] = PyFloat_AS_DOUBLE(v)
        return True
    if type(v) is int:
        k = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow or k > (1LL << 52) or k < -(1LL << 52):
            return False
        out[0] = <double>k
        return True
    return False


cdef inline bint _small_int(object v, long long *out) noexcept:
    # A Python int (not a bool) of at most 2**52 in magnitude into out; False for anything else.
    cdef long long k
    cdef int overflow = 0
    if type(v) is not int:
        return False
    k = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or k > (1LL << 52) or k < -(1LL << 52):
        return False
    out[0] = k
    return True


cdef inline double _float_mod(double x, double m) noexcept:
    # Python's float x % m (float_rem): the remainder takes the divisor's sign.
    cdef double r = fmod(x, m)
    if r != 0.0:
        if (m < 0.0) != (r < 0.0):
            r += m
    else:
        r = copysign(0.0, m)
    return r


cdef list _steady_groups(dict d, bint counted=True):
    """The optimizer's param groups when a steady-state step may run on them, else None: not
    the first step after construction (``_step_count == 1``: its call-order check may warn;
    not asked when ``counted`` is False, for a scheduler whose own ``step`` has no such check),
    the group count the scheduler knows (``base_lrs``), every group a dict."""
    cdef object v = d.get("_step_count")
    cdef list groups
    cdef Py_ssize_t i, n
    if counted and (type(v) is not int or v == 1):
        return None
    v = d.get("optimizer")
    if v is None:
        return None
    v = v.param_groups
    if type(v) is not list:
        return None
    groups = <list>v
    n = len(groups)
    v = d.get("base_lrs")
    if type(v) is not list or len(<list>v) != n:
        return None
    for i in range(n):
        if type(<object>_list_item(groups, i)) is not dict:
            return None
    return groups


cdef class _LRRecord:
    # What a C step last saw of each group's lr, by position: the group dict (its address, no
    # reference held), the dict's version tag right then, and the lr (its float object, and
    # its value).  A dict's tag changes on every change of its contents and is unique across
    # the interpreter's dicts (a new dict at the same address never shows a recorded tag), so
    # an entry whose dict and tag match the group now is the group's lr now: it stands in for
    # the lookup (user code that edits group['lr'], or replaces the dict, moves the tag and the
    # group is looked up again).  One per module, shared by every scheduler and optimizer: a
    # step over other groups only overwrites entries (each step correct).  Without version
    # tags (FO_DICT_VERSION 0) nothing is recorded and every lr is looked up.
    cdef Py_ssize_t cap
    cdef PyObject **dicts
    cdef uint64_t *versions
    cdef PyObject **objs
    cdef double *vals

    cdef int reserve(self, Py_ssize_t n) except -1:
        cdef void *mem
        cdef Py_ssize_t per = 2 * sizeof(PyObject *) + sizeof(uint64_t) + sizeof(double)
        if n <= self.cap:
            return 0
        mem = PyMem_Realloc(self.dicts, n * per)
        if mem == NULL:
            raise MemoryError()
        # (the entries are laid out anew: all void until recorded)
        memset(mem, 0, n * per)
        self.cap = n
        self.dicts = <PyObject **>mem
        self.versions = <uint64_t *>(self.dicts + n)
        self.objs = <PyObject **>(self.versions + n)
        self.vals = <double *>(self.objs + n)
        return 0

    def __dealloc__(self):
        PyMem_Free(self.dicts)


cdef _LRRecord _lr_record = _LRRecord.__new__(_LRRecord)


cdef inline void _record_lr(_LRRecord rec, Py_ssize_t i, PyObject *g, PyObject *x,
                            double v) noexcept:
    # Entry i: group dict g holds the float x (value v) as its lr, now (caller: i < rec.cap).
    rec.dicts[i] = g
    rec.versions[i] = fo_dict_version(g)
    rec.objs[i] = x
    rec.vals[i] = v


cdef inline bint _lr_is_float(_LRRecord rec, Py_ssize_t i, object g) except -1:
    # Whether group g (a dict, at position i < rec.cap) holds a Python float as its lr: from
    # _lr_record when it saw the dict as it is, else looked up (and recorded).
    cdef PyObject *v
    cdef PyObject *p = <PyObject *>g
    if FO_DICT_VERSION and rec.dicts[i] == p and rec.versions[i] == fo_dict_version(p):
        return True
    v = PyDict_GetItemWithError(g, "lr")
    if v == NULL or type(<object>v) is not float:
        return False
    if FO_DICT_VERSION:
        _record_lr(rec, i, p, v, PyFloat_AS_DOUBLE(<object>v))
    return True


cdef bint _read_lrs(list groups, double *out, PyObject **objs) except -1:
    # Each group's lr into out, and its float object (borrowed: valid until a group changes)
    # into objs unless NULL (groups: from _steady_groups); False when one is not a Python
    # float (a Tensor lr, which the general path fills in place).  A group whose dict is as
    # _lr_record saw it is read from there.
    cdef PyObject *v
    cdef PyObject *g
    cdef Py_ssize_t i, n = len(groups)
    cdef _LRRecord rec = _lr_record
    if FO_DICT_VERSION:
        rec.reserve(n)
    for i in range(n):
        g = _list_item(groups, i)
        if FO_DICT_VERSION and rec.dicts[i] == g and rec.versions[i] == fo_dict_version(g):
            out[i] = rec.vals[i]
            if objs != NULL:
                objs[i] = rec.objs[i]
            continue
        v = PyDict_GetItemWithError(<object>g, "lr")
        if v == NULL or type(<object>v) is not float:
            return False
        out[i] = PyFloat_AS_DOUBLE(<object>v)
        if objs != NULL:
            objs[i] = v
        if FO_DICT_VERSION:
            _record_lr(rec, i, g, v, out[i])
    return True


cdef list _write_lr_values(list groups, const double *values, bint record=True):
    # group['lr'] = values[i] for each group, one float object each, also in the returned list
    # (the new _last_lr: Python's copies of floats are the floats themselves).  With record,
    # each write is recorded in _lr_record as it is made (a group listed twice: its last
    # write stays): the caller's promise that since it read the lrs nothing but this step can
    # have run (no allocation of a collectable object) and that every value these writes
    # replace is a float (freeing one runs no code).  The list is made after the writes (an
    # allocation may run a collection, whose finalizers may edit a group: a recorded one's
    # tag then moves).
    cdef Py_ssize_t i, n = len(groups)
    cdef list last
    cdef object x
    cdef PyObject *g
    cdef PyObject *stack[_LR_STACK]
    cdef PyObject **made = stack
    cdef _LRRecord rec = _lr_record
    if not (record and FO_DICT_VERSION):
        last = PyList_New(n)
        for i in range(n):
            x = PyFloat_FromDouble(values[i])
            PyDict_SetItem(<object>_list_item(groups, i), "lr", x)
            Py_INCREF(x)
            PyList_SET_ITEM(last, i, x)
        return last
    if n > _LR_STACK:
        made = <PyObject **>PyMem_Malloc(n * sizeof(PyObject *))
        if made == NULL:
            raise MemoryError()
    rec.reserve(n)
    for i in range(n):
        x = PyFloat_FromDouble(values[i])
        g = _list_item(groups, i)
        PyDict_SetItem(<object>g, "lr", x)
        _record_lr(rec, i, g, <PyObject *>x, values[i])
        Py_INCREF(x)
        made[i] = <PyObject *>x
    last = None
    try:
        last = PyList_New(n)
        for i in range(n):
            PyList_SET_ITEM(last, i, <object>made[i])   # (steals the reference taken above)
    finally:
        if last is None:
            for i in range(n):
                Py_DECREF(<object>made[i])
        if made != stack:
            PyMem_Free(made)
    return last


cdef list _current_lrs(PyObject **objs, Py_ssize_t n):
    # [group['lr'] ...] from the objects _read_lrs just found: the new _last_lr when the lrs
    # stay.
    cdef Py_ssize_t i
    cdef list last = PyList_New(n)
    cdef object x
    for i in range(n):
        x = <object>objs[i]
        Py_INCREF(x)
        PyList_SET_ITEM(last, i, x)
    return last


cdef class _LRBuffer:
    # n doubles, on the stack of the step for small counts (the caller's `small`), else here.
    cdef void *heap

    def __dealloc__(self):
        PyMem_Free(self.heap)


cdef void *_lr_buffer(Py_ssize_t nbytes, void *small, _LRBuffer owner) except NULL:
    if nbytes <= <Py_ssize_t>(_LR_STACK * sizeof(double)):
        return small
    owner.heap = PyMem_Malloc(nbytes)
    if owner.heap == NULL:
        raise MemoryError()
    return owner.heap


# ---- the uniform-factor schedulers (lr * factor) ------------------------------------------------

def _uniform_step(self, epoch=None):
    """Advance one epoch. Call it after ``optimizer.step()``.

    (The ``step`` of the uniform-factor schedulers: the steady state at C level, see
    ``_uniform_lr_step``; anything else through ``LRScheduler.step``.)"""
    if epoch is not None or not _uniform_lr_step_c(self):
        _general_lr_step(self, epoch)


def _uniform_lr_step(object sched):
    """``_uniform_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _uniform_lr_step_c(sched)


# What ``_UniformLR._factor_rule`` names: call ``_chain_factor()``, or compute the factor of a
# built-in scheduler here (its ``_chain_factor`` is the same rule in Python).
cdef enum:
    _RULE_CALL = 0
    _RULE_STEP = 1
    _RULE_MULTISTEP = 2
    _RULE_EXPONENTIAL = 3
    _RULE_CONSTANT = 4
    _RULE_LINEAR = 5
    _RULE_POLYNOMIAL = 6
UNIFORM_RULES = {"call": _RULE_CALL, "step": _RULE_STEP, "multistep": _RULE_MULTISTEP,
                 "exponential": _RULE_EXPONENTIAL, "constant": _RULE_CONSTANT,
                 "linear": _RULE_LINEAR, "polynomial": _RULE_POLYNOMIAL}
cdef object _DECLINE = object()


cdef bint _uniform_lr_step_c(object sched) except -1:
    """The steady-state ``step()`` of a scheduler whose rule scales every group's lr by one
    factor (``fastoptim.optim.lr_scheduler._UniformLR``), at C level: what
    ``LRScheduler.step()`` does (``_step_count``, ``last_epoch``, ``group['lr'] = lr * factor``
    for each group, ``_last_lr``), with the factor computed here for the class's
    ``_factor_rule`` (StepLR, MultiStepLR, ExponentialLR, ConstantLR, LinearLR, PolynomialLR:
    no Python frame at all), or from ``sched._chain_factor()`` (a subclass's own rule; None:
    the lrs stay as they are).

    Returns False, having changed nothing, when anything is unusual (see the file's comment);
    the caller then runs the general path.
    """
    cdef dict d
    cdef list groups
    cdef object factor, v, epoch
    cdef Py_ssize_t n, i
    cdef int rule
    cdef double f = 1.0
    cdef double small[_LR_STACK]
    cdef double *lrs
    cdef PyObject **objs
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d)
    if groups is None:
        return False
    rule = type(sched)._factor_rule
    if rule == _RULE_CALL:
        return _uniform_call_step(sched, d, groups)
    v = d.get("last_epoch")
    if type(v) is not int:
        return False
    epoch = v + 1
    # the factor of StepLR, MultiStepLR, ... itself, read from the same attributes (declines,
    # before anything changed, for values it does not handle)
    factor = _builtin_factor(rule, d, epoch)
    if factor is _DECLINE or (factor is not None and not _as_double(factor, &f)):
        return False
    n = len(groups)
    if n > _LR_STACK // 2:
        owner = _LRBuffer.__new__(_LRBuffer)
    lrs = <double *>_lr_buffer(n * (sizeof(double) + sizeof(PyObject *)), small, owner)
    objs = <PyObject **>(lrs + n)
    if not _read_lrs(groups, lrs, objs):
        return False
    d["_step_count"] = d["_step_count"] + 1
    d["last_epoch"] = epoch
    d["_get_lr_called_within_step"] = False
    if factor is None:
        d["_last_lr"] = _current_lrs(objs, n)
    else:
        for i in range(n):
            lrs[i] = lrs[i] * f
        d["_last_lr"] = _write_lr_values(groups, lrs)
    return True


cdef bint _uniform_call_step(object sched, dict d, list groups) except -1:
    # The uniform step with the factor from sched._chain_factor() (a Python frame, which may
    # change anything: the write loop is Python's arithmetic on whatever it finds).
    cdef Py_ssize_t n = len(groups), i
    cdef list last
    cdef dict g
    cdef object factor, lr
    for i in range(n):
        if type((<dict>groups[i]).get("lr")) is not float:
            return False
    d["_step_count"] = d["_step_count"] + 1
    d["_get_lr_called_within_step"] = True
    try:
        d["last_epoch"] = d["last_epoch"] + 1
        factor = sched._chain_factor()
    finally:
        d["_get_lr_called_within_step"] = False
    last = [None] * n
    for i in range(n):
        g = <dict>groups[i]
        lr = g["lr"]
        if factor is not None:
            lr = lr * factor
            g["lr"] = lr
        last[i] = lr
    d["_last_lr"] = last
    return True


cdef object _builtin_factor(int rule, dict d, object epoch):
    """``_chain_factor()`` at ``last_epoch == epoch`` for the built-in ``rule`` (None: the lrs
    stay), or ``_DECLINE`` when an attribute is not what the rule handles here (the general
    path then runs the Python rule)."""
    cdef object m, v
    cdef long long e, k
    cdef int overflow = 0
    cdef double x, t, ep, sf, ef, den
    if rule == _RULE_STEP:      # gamma at every non-zero multiple of step_size
        m = d.get("step_size")
        if type(m) is not int or "gamma" not in d:
            return _DECLINE
        k = PyLong_AsLongLongAndOverflow(m, &overflow)
        if overflow or k == 0:
            return _DECLINE     # (0: the Python rule raises ZeroDivisionError, as torch's)
        e = PyLong_AsLongLongAndOverflow(epoch, &overflow)
        if overflow:
            return _DECLINE
        # C's e % k is 0 exactly when Python's is, whatever the signs
        return None if (e == 0 or e % k != 0) else d["gamma"]
    if rule == _RULE_MULTISTEP:   # gamma ** count at a milestone listed count times
        m = d.get("milestones")
        if type(m) is not _Counter or "gamma" not in d:
            return _DECLINE
        if epoch not in <dict>m:
            return None
        return d["gamma"] ** (<dict>m)[epoch]
    if rule == _RULE_EXPONENTIAL:  # gamma, except in the constructor's initial step
        if d.get("_is_initial") is not False or "gamma" not in d:
            return _DECLINE
        return d["gamma"]
    if rule == _RULE_CONSTANT:     # factor at epoch 0, 1 / factor at total_iters
        m = d.get("total_iters")
        if type(m) is not int or "factor" not in d:
            return _DECLINE
        if epoch == 0:
            return d["factor"]
        if epoch != m:
            return None
        if not _as_double(d["factor"], &x) or x == 0.0:
            return _DECLINE
        return 1.0 / x
    if rule == _RULE_LINEAR:       # start_factor at epoch 0, then the ratio of the factors
        if epoch == 0:
            return d.get("start_factor", _DECLINE)
        v = d.get("_is_initial")
        if v is True:
            return None
        m = d.get("total_iters")
        if v is not False or type(m) is not int:
            return _DECLINE
        if epoch > m:
            return None
        v = d.get("start_factor")
        if (type(v) is not float or not _as_double(d.get("end_factor"), &ef)
                or not _as_double(m, &t) or not _as_double(epoch, &ep)):
            return _DECLINE
        sf = PyFloat_AS_DOUBLE(v)
        # 1.0 + delta / (total_iters * start_factor + (last_epoch - 1) * delta)
        x = ef - sf
        den = t * sf + (ep - 1.0) * x
        if den == 0.0:
            return _DECLINE
        return 1.0 + x / den
    if rule == _RULE_POLYNOMIAL:   # the ratio of consecutive decay factors, ** power
        v = d.get("_is_initial")
        if v is True:
            return None
        m = d.get("total_iters")
        if v is not False or type(m) is not int:
            return _DECLINE
        if epoch > m:
            return None
        v = d.get("power")
        # power >= 0 (or NaN): the base is in [0, 1], so ** neither raises nor overflows
        if (not _as_double(m, &t) or t <= 0.0 or not _as_double(epoch, &ep)
                or not _as_double(v, &x) or x < 0.0):
            return _DECLINE
        den = 1.0 - (ep - 1.0) / t
        if den == 0.0:
            return _DECLINE
        # ((1.0 - last_epoch / total_iters) / (1.0 - (last_epoch - 1) / total_iters)) ** power,
        # the power Python's own (float.__pow__)
        return PyFloat_FromDouble((1.0 - ep / t) / den) ** v
    return _DECLINE


def _write_float_lrs(list groups, list values):
    """``group['lr'] = value`` for each group, returning the new lrs as a list (the scheduler's
    ``_last_lr``), when every current lr and every value is a Python float; otherwise None,
    having written nothing (the caller's general path handles Tensor lrs)."""
    return _write_float_lrs_c(groups, values)


cdef object _write_float_lrs_c(list groups, list values):
    cdef Py_ssize_t n = len(groups), i
    cdef object g
    if len(values) != n:
        return None
    for i in range(n):
        g = <object>_list_item(groups, i)
        if (type(g) is not dict or type((<dict>g).get("lr")) is not float
                or type(<object>_list_item(values, i)) is not float):
            return None
    for i in range(n):
        PyDict_SetItem(<object>_list_item(groups, i), "lr", <object>_list_item(values, i))
    return list(values)


# ---- CosineAnnealingLR ---------------------------------------------------------------------------

def _cosine_step(self, epoch=None):
    """Advance one epoch. Call it after ``optimizer.step()``.

    (CosineAnnealingLR's ``step``: the steady state at C level, see ``_cosine_lr_step``;
    anything else through ``LRScheduler.step``.)"""
    if epoch is not None or not _cosine_step_c(self):
        _general_lr_step(self, epoch)


def _cosine_lr_step(object sched):
    """``_cosine_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _cosine_step_c(sched)


cdef bint _cosine_step_c(object sched) except -1:
    """The steady-state ``step()`` of ``CosineAnnealingLR``: torch's recurrence
    (``CosineAnnealingLR.get_lr`` past the constructor's step), at C level; with
    ``e = last_epoch`` after the increment and ``T = T_max``, each group's lr becomes
    ``lr + (base_lr - eta_min) * (1 - cos(pi / T)) / 2`` when ``(e - 1 - T) % (2 T) == 0``,
    else ``ratio * (lr - eta_min) + eta_min`` with
    ``ratio = (1 + cos(pi * e / T)) / (1 + cos(pi * (e - 1) / T))``.

    Returns False, having changed nothing, when anything is unusual: besides the file's
    common checks, the constructor's step, a ``T_max`` that is not an int in (0, 2**51], an
    ``eta_min`` or base lr that is not a float or small int, a zero divisor."""
    cdef dict d
    cdef list groups, base
    cdef object v
    cdef Py_ssize_t n, i
    cdef long long e, t
    cdef int overflow = 0
    cdef double eta, td, ed, w, ratio, den, b
    cdef double small[_LR_STACK]
    cdef double *lrs
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d)
    if groups is None or d["_step_count"] == 0 or d.get("_is_initial") is not False:
        return False
    v = d.get("last_epoch")
    if type(v) is not int:
        return False
    e = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or e >= (1LL << 51) or e < -(1LL << 51):
        return False
    e += 1
    v = d.get("T_max")
    if type(v) is not int:
        return False
    t = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or t <= 0 or t > (1LL << 51) or not _as_double(d.get("eta_min"), &eta):
        return False
    td, ed = <double>t, <double>e
    n = len(groups)
    if n > _LR_STACK:
        owner = _LRBuffer.__new__(_LRBuffer)
    lrs = <double *>_lr_buffer(n * sizeof(double), small, owner)
    if not _read_lrs(groups, lrs, NULL):
        return False
    # C's x % m is 0 exactly when Python's is, whatever the signs (no overflow: |x| < 2**53)
    if (e - 1 - t) % (2 * t) == 0:
        base = <list>d["base_lrs"]
        for i in range(n):
            if not _as_double(<object>_list_item(base, i), &b):
                return False
        w = 1.0 - cos(M_PI / td)
        for i in range(n):
            _as_double(<object>_list_item(base, i), &b)
            lrs[i] = lrs[i] + (b - eta) * w / 2.0
    else:
        den = 1.0 + cos(M_PI * (ed - 1.0) / td)
        if den == 0.0:
            return False
        ratio = (1.0 + cos(M_PI * ed / td)) / den
        for i in range(n):
            lrs[i] = ratio * (lrs[i] - eta) + eta
    d["_step_count"] = d["_step_count"] + 1
    d["last_epoch"] = d["last_epoch"] + 1
    d["_get_lr_called_within_step"] = False
    d["_last_lr"] = _write_lr_values(groups, lrs)
    return True


# ---- LambdaLR, MultiplicativeLR --------------------------------------------------------------

def _lambda_step(self, epoch=None):
    """Advance one epoch. Call it after ``optimizer.step()``.

    (LambdaLR's and MultiplicativeLR's ``step``: the steady state at C level, see
    ``_lambda_lr_step``; anything else through ``LRScheduler.step``.)"""
    if epoch is not None or not _lambda_step_c(self):
        _general_lr_step(self, epoch)


def _lambda_lr_step(object sched):
    """``_lambda_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _lambda_step_c(sched)


cdef extern from "Python.h":
    object _vectorcall "PyObject_Vectorcall"(
        object f, PyObject **args, size_t nargsf, PyObject *kwnames)


cdef bint _lambda_step_c(object sched) except -1:
    """The steady-state ``step()`` of ``LambdaLR`` (``base_lr * lmbda(last_epoch)`` for each
    group) and ``MultiplicativeLR`` (``group['lr'] * lmbda(last_epoch)``, the class's
    ``_multiplicative``): what ``LRScheduler.step()`` does, with the lambdas called from a C
    loop and Python's arithmetic on what they return.

    A lambda may change anything; what the rule reads around each call is read as it reads
    it: the zipped lists (``lr_lambdas``, and ``base_lrs`` or the param groups) item by item,
    with zip(strict=True)'s errors; ``self.last_epoch`` afresh for each call; (MultiplicativeLR)
    ``group['lr']`` afresh unless the group's dict kept the version tag it had when it was
    read (then it is the object read); each group's lr is checked a float again before the
    write the same way.

    Declines, having changed nothing, on the file's common checks (and the constructor's step,
    and a lambda list of another length); once the lambdas have run, values that are not all
    floats are written by the general writer (``_write_lrs``), as the Python path does."""
    cdef dict d
    cdef list groups, other, lambdas, values, last
    cdef object v, epoch, r, f, g
    cdef PyObject *o
    cdef PyObject *arg
    cdef Py_ssize_t n, i
    cdef bint mult
    cdef uint64_t small[_LR_STACK]
    cdef uint64_t *vers       # per group: its dict's tag when its lr was read, then the lr
    cdef PyObject **lrs
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d)
    if groups is None or d["_step_count"] == 0:
        return False
    mult = type(sched)._multiplicative
    if mult and d.get("_is_initial") is not False:
        return False
    n = len(groups)
    v = d.get("lr_lambdas")
    if type(v) is not list or len(<list>v) != n or type(d.get("last_epoch")) is not int:
        return False
    if n > _LR_STACK // 2:
        owner = _LRBuffer.__new__(_LRBuffer)
    vers = <uint64_t *>_lr_buffer(n * (sizeof(uint64_t) + sizeof(PyObject *)), small, owner)
    lrs = <PyObject **>(vers + n)
    # the lists the Python rule zips over (strict), as they are when the zip is made; it reads
    # them as it goes, so a lambda's edit of one is seen.  (Every allocation of the step is
    # made before the lrs are read: none can then run a collection's finalizer in between.)
    lambdas = <list>v
    v = d["base_lrs"]
    if not mult and type(v) is not list:
        return False
    other = groups if mult else <list>v
    values = PyList_New(n)
    for i in range(n):
        Py_INCREF(None)
        PyList_SET_ITEM(values, i, None)
    for i in range(n):
        o = PyDict_GetItemWithError(<object>_list_item(groups, i), "lr")
        if o == NULL or type(<object>o) is not float:
            return False
        lrs[i] = o          # (borrowed: the group's own while its tag stays)
        vers[i] = fo_dict_version(_list_item(groups, i))
    d["_step_count"] = d["_step_count"] + 1
    d["_get_lr_called_within_step"] = True
    try:
        d["last_epoch"] = d["last_epoch"] + 1
        i = 0
        while i < len(lambdas):
            if i >= len(other):
                raise ValueError("zip() argument 2 is shorter than argument 1")
            f = <object>_list_item(lambdas, i)
            g = <object>_list_item(other, i)
            # read per group, as the rule does (a lambda may change it).  Not by the version
            # tag of the scheduler's __dict__: from 3.12 an instance's attributes can live in
            # inline values that an attribute store writes without moving the dict's tag
            epoch = sched.last_epoch
            if mult:
                # group['lr'], evaluated before the call
                if (FO_DICT_VERSION and i < n and type(g) is dict
                        and fo_dict_version(<PyObject *>g) == vers[i]):
                    v = <object>lrs[i]
                else:
                    v = g["lr"]
            else:
                v = g
            arg = <PyObject *>epoch
            r = v * _vectorcall(f, &arg, 1, NULL)
            if i < n:
                Py_INCREF(r)
                Py_DECREF(None)
                PyList_SET_ITEM(values, i, r)   # (replaces the None placed above)
            else:
                values.append(r)
            i += 1
        if i < len(other):
            raise ValueError("zip() argument 2 is longer than argument 1")
        if i < n:
            del values[i:]
    finally:
        d["_get_lr_called_within_step"] = False
    # every lr still a float (unchanged dicts are) and every value a float: written here
    last = None
    if len(groups) == n and len(values) == n:
        for i in range(n):
            g = <object>_list_item(groups, i)
            if type(<object>_list_item(values, i)) is not float or type(g) is not dict:
                break
            if not (FO_DICT_VERSION and fo_dict_version(<PyObject *>g) == vers[i]):
                o = PyDict_GetItemWithError(g, "lr")
                if o == NULL or type(<object>o) is not float:
                    break
        else:
            for i in range(n):
                PyDict_SetItem(<object>_list_item(groups, i), "lr",
                               <object>_list_item(values, i))
            last = values
    d["_last_lr"] = last if last is not None else _general_write_lrs(groups, values)
    return True


# ---- OneCycleLR --------------------------------------------------------------------------------

def _one_cycle_step(self, epoch=None):
    """Advance one batch. Call it after ``optimizer.step()``.

    (OneCycleLR's ``step``: the steady state at C level, see ``_one_cycle_step_c``; anything
    else through ``LRScheduler.step``.)"""
    if epoch is not None or not _one_cycle_step_c(self):
        _general_lr_step(self, epoch)


def _one_cycle_lr_step(object sched):
    """``_one_cycle_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _one_cycle_step_c(sched)


cdef inline bint _group_double(dict g, object key, double *out) except -1:
    # g[key] into out when it is a Python float.
    cdef PyObject *v = PyDict_GetItemWithError(g, key)
    if v == NULL or type(<object>v) is not float:
        return False
    out[0] = PyFloat_AS_DOUBLE(<object>v)
    return True


cdef list _new_betas(list groups, bint *floats):
    # Per group a new tuple (None, *group['betas'][1:]) (slot 0 for the step's beta1), made
    # before anything else of the group is read (an allocation may run a collection, whose
    # finalizers may edit a group); None, having changed nothing, when a group is not a dict or
    # its betas is not a tuple (the general path handles any other sequence).  floats: whether
    # every group's betas[0] is a Python float (freeing it runs no Python code).
    cdef Py_ssize_t n = len(groups), i, j, nb
    cdef list out = PyList_New(n)
    cdef PyObject *g
    cdef PyObject *p
    cdef PyObject *x
    cdef object old         # (a reference: the betas outlive a collection in PyTuple_New)
    cdef object t
    cdef bint fl = floats[0]
    for i in range(n):
        Py_INCREF(None)
        PyList_SET_ITEM(out, i, None)
    for i in range(n):
        g = _list_item(groups, i)
        if type(<object>g) is not dict:
            return None
        p = PyDict_GetItemWithError(<object>g, "betas")
        if p == NULL or type(<object>p) is not tuple:
            return None
        old = <object>p
        nb = PyTuple_GET_SIZE(old)
        fl = fl and nb > 0 and type(<object>_list_item_t(old, 0)) is float
        t = PyTuple_New(nb if nb > 0 else 1)
        Py_INCREF(None)
        PyTuple_SET_ITEM(t, 0, None)
        for j in range(1, nb):
            x = _list_item_t(old, j)
            Py_INCREF(<object>x)
            PyTuple_SET_ITEM(t, j, <object>x)
        Py_INCREF(t)
        Py_DECREF(None)
        PyList_SET_ITEM(out, i, t)      # (replaces the None placed above)
    floats[0] = fl
    return out


cdef inline int _write_beta1(dict g, object t, double m) except -1:
    # group['betas'] = t with t[0] = m, t from _new_betas (its slot 0 still None): the betas
    # write of the cyclic schedulers, (m, *betas[1:]).
    cdef object x = PyFloat_FromDouble(m)
    Py_INCREF(x)
    Py_DECREF(None)
    PyTuple_SET_ITEM(t, 0, x)       # (replaces the None placed by _new_betas)
    return PyDict_SetItem(g, "betas", t)


cdef class _OneCycleCache:
    # What OneCycleLR's C step read from each group last time, kept while the group dict is
    # unchanged: per group the dict (its address, no reference held: a dict's version tag is
    # unique across the interpreter's dicts, so a new dict at the same address never shows the
    # recorded tag), its version tag after the step's own writes, whether the entry holds, and
    # the 4 values read (lr start, lr end, momentum start, momentum end); for which keys
    # (the phase's, held) and which momentum write (how: 1 none, 2 'momentum', 3 betas[0]).
    # One per module: a second OneCycleLR stepping in turn only re-reads (each step correct).
    cdef Py_ssize_t cap, n
    cdef PyObject **dicts
    cdef uint64_t *versions
    cdef char *held
    cdef double *vals       # 5 per group: the 4 values read, then the step's lr
    cdef object k0, k1, k2, k3      # the keys the entries were read with (str), and their how
    cdef int how

    cdef int reset(self, Py_ssize_t n, object k0, object k1, object k2, object k3,
                   int how) except -1:
        # n entries, none held, for keys.
        cdef void *mem
        if n > self.cap:
            mem = PyMem_Realloc(self.dicts, n * (sizeof(PyObject *) + sizeof(uint64_t)
                                                 + 5 * sizeof(double) + 1))
            if mem == NULL:
                raise MemoryError()
            self.cap = n
            self.dicts = <PyObject **>mem
        self.versions = <uint64_t *>(self.dicts + self.cap)
        self.vals = <double *>(self.versions + self.cap)
        self.held = <char *>(self.vals + 5 * self.cap)
        memset(self.held, 0, n)
        self.n = n
        self.k0, self.k1, self.k2, self.k3, self.how = k0, k1, k2, k3, how
        return 0

    def __dealloc__(self):
        PyMem_Free(self.dicts)


cdef _OneCycleCache _one_cycle_cache = _OneCycleCache.__new__(_OneCycleCache)


cdef bint _one_cycle_step_c(object sched) except -1:
    """The steady-state ``step()`` of ``OneCycleLR`` (built-in ``'cos'``/``'linear'``
    annealing) at C level: what ``LRScheduler.step()`` with ``OneCycleLR.get_lr`` does
    (``_step_count``, ``last_epoch``, the phase and its progress ``pct``, each group's lr and
    momentum or ``betas[0]``, ``_last_lr``), in the file's double arithmetic.

    The values the rule reads from each group (the phase's start and end keys: ``initial_lr``,
    ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``) are read again only from a
    group whose dict changed since this step last wrote it (``_one_cycle_cache``: its version
    tag, recorded after the step's own writes); a group is held so only when nothing but this
    step can have run between its reads and that record (no allocation of a collectable object
    there, and the values replaced are floats), and without version tags every group is read.

    Returns False, having changed nothing, when anything is unusual: besides the file's
    common checks, the step past ``total_steps`` or an empty phase (the general path raises
    torch's errors), or a value that is not a Python float (an int peak lr)."""
    cdef dict d, g, phase
    cdef list groups, phases, last, new_betas = None
    cdef object v, step_count, last_epoch, start_lr, end_lr, start_m, end_m, x
    cdef PyObject *old
    cdef Py_ssize_t n, i, nphases
    cdef bint cos_anneal, momentum, beta1 = False, keep, beta1_floats = True
    cdef int how
    cdef double step_num, start_step = 0.0, end_step = 0.0, pct, c, total, s, e, m
    cdef double *vals      # per group: lr start, lr end, momentum start, momentum end
    cdef double *lrs
    cdef _OneCycleCache cache = _one_cycle_cache
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d)
    if groups is None:
        return False
    step_count = d["_step_count"]
    v = d.get("_anneal_func_type")
    if v == "cos" and type(v) is str:
        cos_anneal = True
    elif v == "linear" and type(v) is str:
        cos_anneal = False
    else:
        return False
    last_epoch = d.get("last_epoch")
    if not _as_double(last_epoch, &step_num) or not _as_double(d.get("total_steps"), &total):
        return False
    step_num += 1.0     # exact: |last_epoch| <= 2**52
    if step_num > total or step_num < 0:
        return False
    # the phase and its progress, as OneCycleLR.get_lr finds them
    v = d.get("_schedule_phases")
    if type(v) is not list or len(<list>v) == 0:
        return False
    phases = <list>v
    nphases = len(phases)
    phase = None
    for i in range(nphases):
        v = phases[i]
        if type(v) is not dict or not _as_double((<dict>v).get("end_step"), &end_step):
            return False
        if step_num <= end_step or i == nphases - 1:
            phase = <dict>v
            break
        start_step = end_step
    if end_step - start_step == 0.0:
        return False    # (Python raises ZeroDivisionError)
    pct = (step_num - start_step) / (end_step - start_step)
    start_lr, end_lr = phase.get("start_lr"), phase.get("end_lr")
    start_m, end_m = phase.get("start_momentum"), phase.get("end_momentum")
    v = d.get("cycle_momentum")
    if v is not True and v is not False:
        return False
    momentum = v is True
    if momentum:
        v = d.get("use_beta1")
        if v is not True and v is not False:
            return False
        beta1 = v is True
    how = 3 if beta1 else (2 if momentum else 1)
    n = len(groups)
    # every collectable object of the step made before anything is read (a collection may run
    # a finalizer that edits a group): _last_lr, and the new betas with betas[1:] in place
    last = PyList_New(n)
    for i in range(n):
        Py_INCREF(None)
        PyList_SET_ITEM(last, i, None)
    if beta1:
        new_betas = _new_betas(groups, &beta1_floats)
        if new_betas is None:
            return False
    # (from here to the record below no Python code runs)
    # keep: the entries may hold (the keys are the ones they were read with, exact strs, whose
    # lookups run no Python code)
    keep = (FO_DICT_VERSION and type(start_lr) is str and type(end_lr) is str
            and (how == 1 or (type(start_m) is str and type(end_m) is str)))
    if not (keep and cache.n == n and cache.how == how and cache.k0 is start_lr
            and cache.k1 is end_lr and (how == 1 or (cache.k2 is start_m and cache.k3 is end_m))):
        cache.reset(n, start_lr, end_lr, start_m, end_m, how)
    vals = cache.vals
    lrs = vals + 4 * n
    # every value read must be a float (checked before anything is written)
    for i in range(n):
        g = <dict><object>_list_item(groups, i)
        if (cache.held[i] and cache.dicts[i] == <PyObject *>g
                and cache.versions[i] == fo_dict_version(<PyObject *>g)):
            continue        # unchanged since this step wrote it: its lr a float, vals its own
        cache.held[i] = 0
        if (type(g.get("lr")) is not float or not _group_double(g, start_lr, vals + 4 * i)
                or not _group_double(g, end_lr, vals + 4 * i + 1)):
            return False
        if momentum:
            if (not _group_double(g, start_m, vals + 4 * i + 2)
                    or not _group_double(g, end_m, vals + 4 * i + 3)):
                return False
        cache.dicts[i] = <PyObject *>g
        # the groups are held after this step only when every value its writes replace is a
        # float (freeing one runs no Python code, which could edit a group read already): lr
        # (just checked), momentum or betas[0] (betas[1:] live on in the new tuple)
        if keep and how == 2:
            old = PyDict_GetItemWithError(g, "momentum")
            keep = old == NULL or type(<object>old) is float
        elif how == 3:
            keep = keep and beta1_floats     # (a held group's betas[0] is this step's float)
    c = cos(M_PI * pct) + 1.0 if cos_anneal else pct
    for i in range(n):
        if momentum:
            s, e = vals[4 * i + 2], vals[4 * i + 3]
            m = e + (s - e) / 2.0 * c if cos_anneal else (e - s) * c + s
            g = <dict><object>_list_item(groups, i)
            if beta1:
                _write_beta1(g, <object>_list_item(new_betas, i), m)
            else:
                PyDict_SetItem(g, "momentum", PyFloat_FromDouble(m))
        s, e = vals[4 * i], vals[4 * i + 1]
        lrs[i] = e + (s - e) / 2.0 * c if cos_anneal else (e - s) * c + s
    for i in range(n):
        x = PyFloat_FromDouble(lrs[i])
        PyDict_SetItem(<object>_list_item(groups, i), "lr", x)
        Py_INCREF(x)
        Py_DECREF(None)
        PyList_SET_ITEM(last, i, x)     # (replaces the None placed above)
    if keep:
        for i in range(n):
            cache.held[i] = 1
            cache.versions[i] = fo_dict_version(cache.dicts[i])
    d["_step_count"] = step_count + 1
    d["last_epoch"] = last_epoch + 1
    d["_get_lr_called_within_step"] = False
    d["_last_lr"] = last
    return True


def _anneal_groups(list groups, object start_key, object end_key, bint cos, object c):
    """OneCycleLR's annealing of every group at once, in Python arithmetic (so exactly
    torch's): with ``start = group[start_key]``, ``end = group[end_key]``,
    ``end + (start - end) / 2.0 * c`` for ``cos`` (c = cos(pi * pct) + 1), else
    ``(end - start) * c + start`` (c = pct)."""
    cdef list out = []
    cdef object g, s, e
    for g in groups:
        s = g[start_key]
        e = g[end_key]
        if cos:
            out.append(e + (s - e) / 2.0 * c)
        else:
            out.append((e - s) * c + s)
    return out


def _set_momenta(list groups, list momenta, bint use_beta1):
    """``group['betas'] = (m, *betas[1:])`` (``use_beta1``) or ``group['momentum'] = m``."""
    cdef Py_ssize_t i
    cdef object g, b
    for i in range(len(groups)):
        g = groups[i]
        if use_beta1:
            b = g["betas"]
            g["betas"] = (momenta[i],) + tuple(b[1:])
        else:
            g["momentum"] = momenta[i]


# ---- CyclicLR ------------------------------------------------------------------------------------

cdef object _triangular_fn = None
cdef object _triangular2_fn = None


def _set_cyclic_scale_fns(object triangular, object triangular2):
    """Register CyclicLR's 'triangular' and 'triangular2' scale functions, whose scale the C
    step computes itself (any other scale function is called); set once, by
    fastoptim.optim.lr_scheduler at import."""
    global _triangular_fn, _triangular2_fn
    _triangular_fn = triangular
    _triangular2_fn = triangular2


def _cyclic_step(self, epoch=None):
    """Advance one batch. Call it after ``optimizer.step()``.

    (CyclicLR's ``step``: the steady state at C level, see ``_cyclic_lr_step``; anything else
    through ``LRScheduler.step``.)"""
    if epoch is not None or not _cyclic_step_c(self):
        _general_lr_step(self, epoch)


def _cyclic_lr_step(object sched):
    """``_cyclic_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _cyclic_step_c(sched)


cdef int _cyclic_how(dict d) except -1:
    # Which momentum CyclicLR._scaled writes: 1 none, 2 group['momentum'], 3 group['betas'][0];
    # 0 when the flags are not bools (the Python rule's).
    cdef object v = d.get("cycle_momentum")
    if v is False:
        return 1
    if v is not True:
        return 0
    v = d.get("use_beta1")
    if v is True:
        return 3
    return 2 if v is False else 0


cdef bint _cyclic_read(dict d, list groups, double *vals, int how) except -1:
    # What CyclicLR._scaled reads for `how` (_cyclic_how; the betas tuples were taken by
    # _new_betas), checked and read into vals (per group: base lr, max lr, base momentum, max
    # momentum): False when something is not what the C write handles (nothing is changed).
    cdef Py_ssize_t n = len(groups), i
    cdef object base = d.get("base_lrs"), top = d.get("max_lrs"), g
    cdef object mbase = None, mtop = None
    cdef PyObject *o
    if type(base) is not list or type(top) is not list:
        return False
    if len(<list>base) != n or len(<list>top) != n:
        return False
    if how >= 2:
        mbase, mtop = d.get("base_momentums"), d.get("max_momentums")
        if type(mbase) is not list or type(mtop) is not list:
            return False
        if len(<list>mbase) != n or len(<list>mtop) != n:
            return False
    # (how 2 writes group['momentum'] after this: a record of the group would not outlive the
    # step, so its lr is checked without one)
    if FO_DICT_VERSION and how != 2:
        _lr_record.reserve(n)
    for i in range(n):
        g = <object>_list_item(groups, i)
        if type(g) is not dict:
            return False
        if how == 2 or not FO_DICT_VERSION:
            o = PyDict_GetItemWithError(g, "lr")
            if o == NULL or type(<object>o) is not float:
                return False
        elif not _lr_is_float(_lr_record, i, g):
            return False
        if (not _as_double(<object>_list_item(base, i), vals + 4 * i)
                or not _as_double(<object>_list_item(top, i), vals + 4 * i + 1)):
            return False
        if how >= 2:
            if (not _as_double(<object>_list_item(mbase, i), vals + 4 * i + 2)
                    or not _as_double(<object>_list_item(mtop, i), vals + 4 * i + 3)):
                return False
    return True


cdef list _cyclic_write(list groups, double *vals, int how, list new_betas, double sf,
                        double scale, bint record):
    # CyclicLR._scaled from what _cyclic_read read: each group's momentum (how 2) or betas
    # (how 3, into new_betas' tuples) and lr; returns the new _last_lr.  (Python writes every
    # momentum, then every lr: the same end state, even for a group listed twice.)
    cdef Py_ssize_t n = len(groups), i
    cdef double b, m
    cdef double *lrs = vals + 4 * n
    for i in range(n):
        b, m = vals[4 * i], vals[4 * i + 1]
        lrs[i] = b + (m - b) * sf * scale       # base_lr + base_height * scale
        if how >= 2:
            b, m = vals[4 * i + 2], vals[4 * i + 3]
            m = m - (m - b) * sf * scale        # max_momentum - base_height * scale
            if how == 3:
                _write_beta1(<dict><object>_list_item(groups, i),
                             <object>_list_item(new_betas, i), m)
            else:
                PyDict_SetItem(<object>_list_item(groups, i), "momentum",
                               PyFloat_FromDouble(m))
    return _write_lr_values(groups, lrs, record)


cdef list _cyclic_prepare(dict d, list groups, double *vals, int *how, bint *record):
    # _cyclic_how, _new_betas (how 3), _cyclic_read in that order (every allocation before the
    # reads): the new betas (how 3; else an empty list) with how and vals set, or None (how 0)
    # when the C write does not handle the scheduler as it is (nothing is changed).  record:
    # whether every value the writes replace is known a float (the lrs; betas[0]; a momentum
    # is not read), for _write_lr_values.
    cdef list new_betas
    cdef bint floats = True
    how[0] = _cyclic_how(d)
    if how[0] == 0:
        return None
    new_betas = _new_betas(groups, &floats) if how[0] == 3 else []
    if new_betas is None or not _cyclic_read(d, groups, vals, how[0]):
        how[0] = 0
        return None
    record[0] = how[0] == 1 or (how[0] == 3 and floats)
    return new_betas


cdef bint _cyclic_step_c(object sched) except -1:
    """The steady-state ``step()`` of ``CyclicLR`` at C level: what ``LRScheduler.step()``
    with ``CyclicLR.get_lr`` does (``_step_count``, ``last_epoch``, the cycle and the
    position in it, the scale, each group's lr and momentum or ``betas[0]``, ``_last_lr``).
    The scale of the 'triangular' and 'triangular2' modes is computed here; any other scale
    function ('exp_range', a custom ``scale_fn``) is called, as the Python rule calls it; if
    what it returns is not a float or small int, or the scheduler is not what the C write
    handles once it returned, the rest is the Python rule's (``_scaled``).

    Returns False, having changed nothing, when anything is unusual before the scale is known:
    besides the file's common checks, a zero divisor, an overflowing power (Python raises)."""
    cdef dict d
    cdef list groups, values, new_betas = None
    cdef object v, last_epoch, fn, scale_obj, last
    cdef bint record = False
    cdef long long le, cycle
    cdef double ts, sr, t1, cf, x, sf, scale = 1.0, p
    cdef bint by_cycle
    cdef Py_ssize_t n
    cdef int how = 0
    cdef double small[_LR_STACK]
    cdef double *vals
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d)
    if groups is None:
        return False
    last_epoch = d.get("last_epoch")
    if not _small_int(last_epoch, &le) or le == (1LL << 52):
        return False
    le += 1
    if (not _as_double(d.get("total_size"), &ts) or ts == 0.0
            or not _as_double(d.get("step_ratio"), &sr)):
        return False
    # cycle = floor(1 + last_epoch / total_size); x = 1.0 + last_epoch / total_size - cycle
    t1 = 1.0 + <double>le / ts
    cf = floor(t1)
    if not fabs(cf) <= <double>(1LL << 52):
        return False        # (NaN, or out of the exact range)
    cycle = <long long>cf
    x = t1 - cf
    if x <= sr:
        if sr == 0.0:
            return False    # (Python raises ZeroDivisionError)
        sf = x / sr
    else:
        if sr - 1.0 == 0.0:
            return False
        sf = (x - 1.0) / (sr - 1.0)
    v = d.get("scale_mode")
    if type(v) is not str or "_scale_fn_custom" not in d:
        return False
    by_cycle = v == "cycle"
    fn = d["_scale_fn_custom"]
    if fn is None:
        fn = d.get("_scale_fn_ref")
        if fn is None:
            return False
        if fn is _triangular_fn:            # 1.0
            fn = None
        elif fn is _triangular2_fn:         # 1 / (2.0 ** (x - 1)), Python's float power
            p = pow(2.0, <double>((cycle if by_cycle else le) - 1))
            if p == 0.0 or not isfinite(p):
                return False    # (Python raises ZeroDivisionError, OverflowError)
            scale = 1.0 / p
            fn = None
    n = len(groups)
    if 5 * n > _LR_STACK:
        owner = _LRBuffer.__new__(_LRBuffer)
    vals = <double *>_lr_buffer(5 * n * sizeof(double), small, owner)
    if fn is None:
        new_betas = _cyclic_prepare(d, groups, vals, &how, &record)
        if how == 0:
            return False
    d["_step_count"] = d["_step_count"] + 1
    d["last_epoch"] = last_epoch + 1
    d["_get_lr_called_within_step"] = False
    if fn is None:
        d["_last_lr"] = _cyclic_write(groups, vals, how, new_betas, sf, scale, record)
        return True
    # the scale function is Python's: called as the rule calls it, then the rest read afresh
    d["_get_lr_called_within_step"] = True
    try:
        scale_obj = fn(PyLong_FromLongLong(cycle) if by_cycle else d["last_epoch"])
    finally:
        d["_get_lr_called_within_step"] = False
    if _as_double(scale_obj, &scale):
        new_betas = _cyclic_prepare(d, groups, vals, &how, &record)
    if how != 0:
        d["_last_lr"] = _cyclic_write(groups, vals, how, new_betas, sf, scale, record)
        return True
    values = sched._scaled(PyFloat_FromDouble(sf), scale_obj)
    last = _write_float_lrs_c(groups, values)
    d["_last_lr"] = last if last is not None else _general_write_lrs(groups, values)
    return True


# ---- CosineAnnealingWarmRestarts -----------------------------------------------------------------

def _warm_restarts_step(self, epoch=None):
    """Advance one epoch, or go to ``epoch`` (which may be fractional).

    (CosineAnnealingWarmRestarts' ``step``, chainable and ``step(epoch)``: the steady state at
    C level, see ``_warm_restarts_lr_step``; anything else through the class's Python rule,
    ``_step_rule``.)"""
    if not _warm_restarts_step_c(self, epoch):
        self._step_rule(epoch)


def _warm_restarts_lr_step(object sched, object epoch=None):
    """``_warm_restarts_step``'s steady state alone: True when it stepped, False (nothing
    changed) when it declined."""
    return _warm_restarts_step_c(sched, epoch)


cdef bint _warm_restarts_step_c(object sched, object epoch) except -1:
    """``CosineAnnealingWarmRestarts.step(epoch)`` (``_step_rule``) at C level: ``T_cur``,
    ``T_i`` and ``last_epoch`` as the rule moves them (the restart of the chainable form, the
    period of a given epoch, ``math.log`` and all, in Python's arithmetic), then each group's
    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` and ``_last_lr``.

    Returns False, having changed nothing, when anything is unusual: besides the file's common
    checks (its own ``step`` has no call-order check), the constructor's step, an epoch that is
    not an int or a finite float within 2**52 or is negative (the rule raises), ``T_0``,
    ``T_i``, ``T_mult`` not ints in range, ``T_cur`` not an int or finite float, a value out
    of the exact range."""
    cdef dict d
    cdef list groups, base
    cdef object v, t_cur, t_i, last_epoch
    cdef long long le, ti, t0, tm, tc, e = 0, pn, k
    cdef double eta, tcd, ed, x, w, b
    cdef Py_ssize_t n, i
    cdef double small[_LR_STACK]
    cdef double *lrs
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d, False)
    if groups is None:
        return False
    v = d.get("T_i")
    t_i = v
    if (not _small_int(d.get("last_epoch"), &le) or not _small_int(v, &ti) or ti <= 0
            or not _small_int(d.get("T_0"), &t0) or t0 <= 0
            or not _small_int(d.get("T_mult"), &tm) or tm < 1
            or not _as_double(d.get("eta_min"), &eta)):
        return False
    if epoch is None:
        # T_cur + 1, restarting (T_cur % T_i, T_i * T_mult) at the period's end
        if le < 0 or le >= (1LL << 52):
            return False        # (the constructor's step is the closed form at 0)
        last_epoch = d["last_epoch"] + 1
        v = d.get("T_cur")
        if _small_int(v, &tc):
            if tc >= (1LL << 52):
                return False
            tc += 1
            if tc >= ti:
                tc = tc % ti    # (tc > 0, ti > 0: C's % is Python's)
                if ti > (1LL << 52) // tm:
                    return False
                t_i = PyLong_FromLongLong(ti * tm)
            t_cur = PyLong_FromLongLong(tc)
            tcd = <double>tc
        elif type(v) is float and isfinite(PyFloat_AS_DOUBLE(v)):
            tcd = PyFloat_AS_DOUBLE(v) + 1.0
            if tcd >= <double>ti:
                tcd = _float_mod(tcd, <double>ti)
                if ti > (1LL << 52) // tm:
                    return False
                t_i = PyLong_FromLongLong(ti * tm)
            t_cur = PyFloat_FromDouble(tcd)
        else:
            return False
    else:
        if _small_int(epoch, &e):
            ed = <double>e
            last_epoch = epoch                      # math.floor of an int: the int
        elif (type(epoch) is float and isfinite(PyFloat_AS_DOUBLE(epoch))
                and fabs(PyFloat_AS_DOUBLE(epoch)) < <double>(1LL << 52)):
            ed = PyFloat_AS_DOUBLE(epoch)
            last_epoch = PyLong_FromDouble(floor(ed))
        else:
            return False
        if ed < 0.0:
            return False        # (the rule raises ValueError)
        if ed < <double>t0:
            t_i, t_cur, tcd = d["T_0"], epoch, ed
        elif tm == 1:
            # epoch % T_0 (T_i stays)
            if type(epoch) is int:
                tc = e % t0
                t_cur, tcd = PyLong_FromLongLong(tc), <double>tc
            else:
                tcd = _float_mod(ed, <double>t0)
                t_cur = PyFloat_FromDouble(tcd)
        else:
            # n = int(math.log(epoch / T_0 * (T_mult - 1) + 1, T_mult)) (x >= 1, T_mult >= 2)
            x = ed / <double>t0 * <double>(tm - 1) + 1.0
            k = <long long>(log(x) / log(<double>tm))
            pn = 1                                  # T_mult ** n, exactly
            for i in range(k):
                if pn > (1LL << 52) // tm:
                    return False
                pn *= tm
            if pn > (1LL << 52) // t0:
                return False
            # epoch - T_0 * (T_mult**n - 1) / (T_mult - 1): an int quotient, correctly rounded
            tcd = ed - <double>(t0 * (pn - 1)) / <double>(tm - 1)
            t_cur = PyFloat_FromDouble(tcd)
            t_i = PyLong_FromLongLong(t0 * pn)
    # eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, for each group
    _small_int(t_i, &ti)
    n = len(groups)
    base = <list>d["base_lrs"]
    if n > _LR_STACK:
        owner = _LRBuffer.__new__(_LRBuffer)
    lrs = <double *>_lr_buffer(n * sizeof(double), small, owner)
    if FO_DICT_VERSION:
        _lr_record.reserve(n)
    for i in range(n):
        if (not _lr_is_float(_lr_record, i, <object>_list_item(groups, i))
                or not _as_double(<object>_list_item(base, i), &b)):
            return False
        lrs[i] = b
    w = 1.0 + cos(M_PI * tcd / <double>ti)
    for i in range(n):
        lrs[i] = eta + (lrs[i] - eta) * w / 2.0
    d["T_cur"] = t_cur
    d["T_i"] = t_i
    d["last_epoch"] = last_epoch
    d["_get_lr_called_within_step"] = False
    d["_last_lr"] = _write_lr_values(groups, lrs)
    return True


# ---- SWALR ----------------------------------------------------------------------------------------

def _swalr_step(self, epoch=None):
    """Advance one epoch. Call it after ``optimizer.step()``.

    (SWALR's ``step``: the steady state at C level, see ``_swalr_lr_step``; anything else
    through ``LRScheduler.step``.)"""
    if epoch is not None or not _swalr_step_c(self):
        _general_lr_step(self, epoch)


def _swalr_lr_step(object sched):
    """``_swalr_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _swalr_step_c(sched)


cdef inline double _swa_alpha(double step, double epochs, bint cos_anneal) noexcept:
    # anneal_func(max(0, min(1, step / epochs))) (epochs = max(1, anneal_epochs) >= 1): min
    # keeps 1 unless the quotient is below it, max keeps 0 unless it is above; an int 0 or 1
    # is the same double as 0.0 or 1.0 in every use below.
    cdef double t = step / epochs
    if not t < 1.0:
        t = 1.0
    if not t > 0.0:
        t = 0.0
    if cos_anneal:
        return (1.0 - cos(M_PI * t)) / 2.0     # SWALR._cosine_anneal
    return t                                    # SWALR._linear_anneal


cdef bint _swalr_step_c(object sched) except -1:
    """The steady-state ``step()`` of ``swa_utils.SWALR`` at C level: what
    ``LRScheduler.step()`` with ``SWALR.get_lr`` does (``_step_count``, ``last_epoch``, each
    group's lr, ``_last_lr``).  Per step: ``prev_alpha`` and ``alpha`` from ``_step_count``
    and ``anneal_epochs`` (``anneal_func`` the class's ``_cosine_anneal`` or
    ``_linear_anneal``); per group, with ``swa = group['swa_lr']``: the lr the annealing
    started from, ``swa`` when ``prev_alpha == 1`` else ``(lr - prev_alpha * swa) /
    (1 - prev_alpha)``, then ``swa * alpha + start * (1 - alpha)``, in the file's double
    arithmetic.

    Returns False, having changed nothing, when anything is unusual: besides the file's common
    checks, an ``anneal_epochs`` or ``last_epoch`` that is not a small int, another
    ``anneal_func``, a ``swa_lr`` that is not a Python float (an int one keeps its type in the
    Python rule)."""
    cdef dict d
    cdef list groups
    cdef object v, fn
    cdef long long sc, ae
    cdef Py_ssize_t n, i
    cdef bint cos_anneal
    cdef double step, epochs, prev_alpha, alpha, swa, start
    cdef double small[_LR_STACK]
    cdef double *lrs
    cdef double *swas
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    groups = _steady_groups(d)
    if groups is None:
        return False
    if (not _small_int(d.get("_step_count"), &sc) or sc < 1 or sc >= (1LL << 52)
            or not _small_int(d.get("anneal_epochs"), &ae) or ae < 0
            or type(d.get("last_epoch")) is not int):
        return False
    fn = d.get("anneal_func")
    if fn is None:
        return False
    if fn is type(sched)._cosine_anneal:
        cos_anneal = True
    elif fn is type(sched)._linear_anneal:
        cos_anneal = False
    else:
        return False
    # step = _step_count - 1 after LRScheduler.step's increment: the current _step_count
    step = <double>sc
    if ae == 0 and step < 1.0:
        step = 1.0
    epochs = <double>(ae if ae > 1 else 1)
    prev_alpha = _swa_alpha(step - 1.0, epochs, cos_anneal)
    alpha = _swa_alpha(step, epochs, cos_anneal)
    n = len(groups)
    if n > _LR_STACK // 2:
        owner = _LRBuffer.__new__(_LRBuffer)
    lrs = <double *>_lr_buffer(2 * n * sizeof(double), small, owner)
    swas = lrs + n
    if not _read_lrs(groups, lrs, NULL):
        return False
    for i in range(n):
        if not _group_double(<dict><object>_list_item(groups, i), "swa_lr", swas + i):
            return False
    for i in range(n):
        swa = swas[i]
        if prev_alpha == 1.0:
            start = swa
        else:
            start = (lrs[i] - prev_alpha * swa) / (1.0 - prev_alpha)
        lrs[i] = swa * alpha + start * (1.0 - alpha)
    d["_step_count"] = d["_step_count"] + 1
    d["last_epoch"] = d["last_epoch"] + 1
    d["_get_lr_called_within_step"] = False
    d["_last_lr"] = _write_lr_values(groups, lrs)
    return True


# ---- ReduceLROnPlateau -------------------------------------------------------------------------

def _plateau_step(self, metrics, epoch=None):
    """Record one epoch's metric and reduce the lrs if it has plateaued.

    (ReduceLROnPlateau's ``step``: the steady state at C level, see ``_plateau_lr_step``;
    anything else through the class's Python rule, ``_step_rule``.)"""
    if epoch is not None or not _plateau_step_c(self, metrics):
        self._step_rule(metrics, epoch)


def _plateau_lr_step(object sched, object metrics):
    """``_plateau_step``'s steady state alone: True when it stepped, False (nothing changed)
    when it declined."""
    return _plateau_step_c(sched, metrics)


cdef bint _plateau_step_c(object sched, object metrics) except -1:
    """``ReduceLROnPlateau.step(metrics)`` (``_step_rule``) at C level, for a metric that is a
    Python float or small int (``float(metrics)``): ``last_epoch``, ``best`` and
    ``num_bad_epochs`` by ``_is_better`` (the four mode/threshold_mode comparisons in doubles),
    the cooldown, and on a reduction each group's ``max(lr * factor, min_lr)``, written when
    it is more than ``eps`` below the lr (read, computed and written group by group, as
    ``_reduce_lr`` does), then ``_last_lr``.

    Returns False, having changed nothing, when anything is unusual: a group that is not a
    dict or whose lr is not a Python float, a mode or threshold_mode other than torch's, a
    ``best`` that is not a float, counters or ``patience``/``cooldown`` that are not small
    ints, a threshold that is not a float or small int; on a reduction step also a
    ``min_lrs`` of another length or holding anything but Python floats and small ints (an
    int min_lr that ``max`` picks is written as the int itself, as the Python rule does), a
    ``factor`` or ``eps`` that is not a float or small int."""
    cdef dict d, g
    cdef list groups, min_lrs = None, last
    cdef object v
    cdef PyObject *o
    cdef long long le, nbe, cc, patience, cooldown
    cdef Py_ssize_t n, i
    cdef bint is_min, rel, better, reduce
    cdef double cur, thr, best, factor = 0.0, eps = 0.0, old, x, m
    cdef double small[_LR_STACK]
    cdef double *lrs
    cdef PyObject **objs
    cdef _LRBuffer owner = None
    if not type(sched)._fast_step:
        return False
    d = sched.__dict__
    if not _as_double(metrics, &cur):
        return False
    v = d.get("mode")
    if type(v) is not str:
        return False
    if v == "min":
        is_min = True
    elif v == "max":
        is_min = False
    else:
        return False
    v = d.get("threshold_mode")
    if type(v) is not str:
        return False
    if v == "rel":
        rel = True
    elif v == "abs":
        rel = False
    else:
        return False
    v = d.get("best")
    if type(v) is not float or not _as_double(d.get("threshold"), &thr):
        return False
    best = PyFloat_AS_DOUBLE(v)
    if (not _small_int(d.get("last_epoch"), &le) or le >= (1LL << 52)
            or not _small_int(d.get("num_bad_epochs"), &nbe) or nbe >= (1LL << 52)
            or not _small_int(d.get("cooldown_counter"), &cc)
            or not _small_int(d.get("patience"), &patience)
            or not _small_int(d.get("cooldown"), &cooldown)):
        return False
    v = d.get("optimizer")
    if v is None:
        return False
    v = v.param_groups
    if type(v) is not list:
        return False
    groups = <list>v
    n = len(groups)
    for i in range(n):
        if type(<object>_list_item(groups, i)) is not dict:
            return False
    if n > _LR_STACK // 2:
        owner = _LRBuffer.__new__(_LRBuffer)
    lrs = <double *>_lr_buffer(n * (sizeof(double) + sizeof(PyObject *)), small, owner)
    objs = <PyObject **>(lrs + n)
    if not _read_lrs(groups, lrs, objs):
        return False
    # _is_better(current, best)
    if is_min:
        better = cur < (best * (1.0 - thr) if rel else best - thr)
    else:
        better = cur > (best * (thr + 1.0) if rel else best + thr)
    nbe = 0 if better else nbe + 1
    if cc > 0:      # in_cooldown
        cc -= 1
        nbe = 0
    reduce = nbe > patience
    if reduce:
        v = d.get("min_lrs")
        if (type(v) is not list or len(<list>v) != n or not _as_double(d.get("factor"), &factor)
                or not _as_double(d.get("eps"), &eps)):
            return False
        min_lrs = <list>v
        for i in range(n):
            if not _as_double(<object>_list_item(min_lrs, i), &m):
                return False
    # (from here on it steps: every lr is a float, every value written a float or a min_lr)
    d["last_epoch"] = PyLong_FromLongLong(le + 1)
    if better:
        d["best"] = PyFloat_FromDouble(cur)
    if reduce:
        # _reduce_lr: group by group, the lr read afresh (a group listed twice is reduced twice)
        # (an lr read here is a float, or a small-int min_lr written by this loop to a group
        # listed twice: float(lr) is its double; a small int compares with a float as its
        # double does)
        for i in range(n):
            g = <dict><object>_list_item(groups, i)
            _as_double(<object>PyDict_GetItemWithError(g, "lr"), &old)
            x = old * factor
            v = <object>_list_item(min_lrs, i)
            _as_double(v, &m)
            if m > x:       # max(old_lr * factor, min_lr) is the min_lr object itself
                if old - m > eps:
                    PyDict_SetItem(g, "lr", v)
            elif old - x > eps:
                PyDict_SetItem(g, "lr", PyFloat_FromDouble(x))
        d["cooldown_counter"] = d["cooldown"]
        d["num_bad_epochs"] = 0
        # _lr_values: the lrs themselves (floats, or min_lr ints: their copies are themselves)
        last = PyList_New(n)
        for i in range(n):
            o = PyDict_GetItemWithError(<object>_list_item(groups, i), "lr")
            Py_INCREF(<object>o)
            PyList_SET_ITEM(last, i, <object>o)
        d["_last_lr"] = last
    else:
        d["cooldown_counter"] = PyLong_FromLongLong(cc)
        d["num_bad_epochs"] = PyLong_FromLongLong(nbe)
        d["_last_lr"] = _current_lrs(objs, n)
    return True


# ---- the lrs as they are (ReduceLROnPlateau, ChainedScheduler) ----------------------------------

def _float_lrs(list groups):
    """``[group['lr'] ...]`` when every group is a dict whose lr is a Python float (the
    scheduler's ``_last_lr``: Python's copies of floats are the floats themselves), else None
    (the caller's general path clones Tensor lrs)."""
    cdef Py_ssize_t n = len(groups), i
    cdef PyObject *v
    cdef object g
    cdef list last = PyList_New(n)
    for i in range(n):
        g = <object>_list_item(groups, i)
        if type(g) is not dict:
            return None
        v = PyDict_GetItemWithError(g, "lr")
        if v == NULL or type(<object>v) is not float:
            return None
        Py_INCREF(<object>v)
        PyList_SET_ITEM(last, i, <object>v)
    return last
