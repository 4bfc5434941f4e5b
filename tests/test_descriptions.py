"""The optimizer descriptions (fastoptim/optim/_descriptions.py) agree with everything that
restates them in another language: the C header (each kernel's fo_<kernel>_hyper struct and its
four prototypes), the Cython mirror (kernels.pxd), the stubs of the glue (_optim.pyi), the glue
itself, the classes, the public functionals and the NumPy twins -- names, order and arity.

Cheaper than generating those files from the rows, and it fails at the first disagreement: a
swapped pair of doubles in a struct, a state list missing from a prototype, a stub that lags.
"""

import ast
import inspect
import re
from pathlib import Path

import pytest

from fastoptim import optim
from fastoptim._C import _optim
from fastoptim.optim import _reference as ref
from fastoptim.optim import functional
from fastoptim.optim._descriptions import BY_NAME, DESCRIPTIONS

ROOT = Path(__file__).resolve().parents[1]
HEADER = (ROOT / "csrc" / "fastoptim.h").read_text()
PXD = (ROOT / "fastoptim" / "kernels.pxd").read_text()
PYI = ast.parse((ROOT / "fastoptim" / "_C" / "_optim.pyi").read_text())
KERNELS = {d.kernel: d for d in DESCRIPTIONS}   # Adam and AdamW share one kernel


def _words(text):
    return re.findall(r"\w+", text)


def _c_struct(name):
    """Field names and their C types of ``typedef struct name {...} name;``, in order."""
    body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), HEADER, re.S)
    assert body, f"fastoptim.h declares no struct {name}"
    fields = []
    for decl in body.group(1).split(";"):
        words = _words(decl)
        if words:
            fields += [(words[0], w) for w in words[1:]]
    return fields


def _pxd_struct(name):
    body = re.search(r"ctypedef struct %s:\n((?:        .*\n)+)" % name, PXD)
    assert body, f"kernels.pxd declares no struct {name}"
    fields = []
    for line in body.group(1).splitlines():
        words = _words(line)
        fields += [(words[0], w) for w in words[1:]]
    return fields


def _prototype(text, fn):
    """The parameter names of ``fn``'s prototype in a C header or a pxd."""
    m = re.search(r"\bvoid %s\((.*?)\)" % fn, text, re.S)
    assert m, f"no prototype of {fn}"
    return [_words(arg)[-1] for arg in m.group(1).split(",")]


def _arrays(d):
    """The array arguments of the kernel, in order (params, grads, states, counters...)."""
    names = ["params", "grads", *(s.list_name for s in d.state)]
    if d.first_step == "from_grad":
        names.append("buffer_is_new")
    if d.step:
        names.append("steps")
    return [*names, "numels", "ntensors"]


def _stub(name):
    for node in PYI.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return [a.arg for a in node.args.args]
    raise AssertionError(f"_optim.pyi has no stub for {name}")


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_header_struct_holds_the_hyperparameters_by_name_in_order(kernel):
    d = KERNELS[kernel]
    fields = _c_struct(f"fo_{kernel}_hyper")
    assert fields == [("double", h.name) for h in d.scalars] + [("int", h.name) for h in d.flags]
    assert _pxd_struct(f"fo_{kernel}_hyper") == fields


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_header_and_pxd_prototypes_take_the_described_arrays_then_the_struct(kernel, sfx):
    d = KERNELS[kernel]
    for text in (HEADER, PXD):
        assert _prototype(text, f"fo_{kernel}_update_{sfx}") == [*_arrays(d), "hyper"]
        # the positional wrapper: the same arrays, then the struct's fields in its order
        assert _prototype(text, f"fo_{kernel}_step_{sfx}") == [*_arrays(d),
                                                               *(h.name for h in d.hyper)]


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_stubs_and_glue_take_the_described_arguments(kernel):
    d = KERNELS[kernel]
    lists = ["params", "grads", *(s.list_name for s in d.state)]
    lists += ["buffer_is_new"] if d.first_step == "from_grad" else []
    lists += ["state_steps"] if d.step else []
    hyper = [h.name for h in d.hyper]
    assert _stub(f"{kernel}_step") == [*lists, *hyper]
    assert _stub(f"{kernel}_group_step") == ["group_params", "state", *hyper]
    assert callable(getattr(_optim, f"{kernel}_step"))
    assert callable(getattr(_optim, f"{kernel}_group_step"))


@pytest.mark.parametrize("d", DESCRIPTIONS, ids=lambda d: d.name)
def test_classes_functionals_and_twins_read_the_description(d):
    cls = getattr(optim, d.cls)
    assert cls._DESCRIPTION is d
    assert cls._HYPER == d.group_keys
    # every setting the step reads is a constructor argument with a default
    ctor = inspect.signature(cls.__init__).parameters
    fixed = dict(d.fixed)
    assert all(k in ctor for k in d.group_keys if k not in fixed), d.group_keys
    for fn in (getattr(functional, d.name), getattr(ref, d.name)):
        params = inspect.signature(fn).parameters
        missing = [h.name for h in d.hyper if h.name not in params and h.name not in fixed]
        assert not missing, (fn, missing)


def test_every_builtin_optimizer_is_described_once():
    assert len(BY_NAME) == len(DESCRIPTIONS)
    described = {d.cls for d in DESCRIPTIONS}
    builtins = {n for n in optim.__all__ if isinstance(getattr(optim, n), type)
                and issubclass(getattr(optim, n), optim.Optimizer) and n != "Optimizer"}
    assert described == builtins


@pytest.mark.parametrize("d", DESCRIPTIONS, ids=lambda d: d.name)
def test_state_created_by_the_class_is_what_the_description_says(d):
    import fastoptim

    cls = getattr(optim, d.cls)
    settings = {"lr": 0.1}
    if d.name == "sgd":
        settings["momentum"] = 0.9
    if d.name == "rmsprop":
        settings.update(momentum=0.5, centered=True)
    if d.name in ("adam", "adamw"):
        settings["amsgrad"] = True
    p = fastoptim.nn.Parameter(fastoptim.ones(3))
    p.grad = fastoptim.ones(3)
    opt = cls([p], **settings)
    opt.step()
    group = opt.param_groups[0]
    assert set(opt.state[p]) == set(d.expected_state_keys(group)[0]) | set(d.state_keys(group))
    assert d.state_keys(group) == tuple(s.key for s in d.state)   # these settings create all
