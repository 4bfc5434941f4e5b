"""The optimizer descriptions (fastoptim/optim/_descriptions.py) agree with everything that
restates them in another language: the C header (each kernel's fo_<kernel>_hyper struct and its
prototypes), the Cython mirror (kernels.pxd), the generic glue's stubs, the classes, the public
functionals and the NumPy twins -- names, order and arity; that the glue's per-kernel filler,
runner and registration (generated from the rows at build time, _kernel_glue.py) are the ones
the current rows generate; and that an optimizer appears only where the recipe in
_descriptions.py's docstring says.

The glue is generated; the header is checked, not generated (it is the public C interface,
documented by hand): a swapped pair of doubles in a struct, a state list missing from a
prototype, a stub that lags fail here.
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
from fastoptim.optim._descriptions import BY_NAME, DESCRIPTIONS, WHOLE_STEP
from fastoptim.optim._kernel_glue import advance_args, digest, glue, update_args
from fastoptim.optim._step import plan

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


def _arrays(d, f32=True):
    """The array arguments of the kernel, in order (params, grads, states, counters...), as the
    generated runner passes them: the rule is said once, in _kernel_glue.update_args."""
    return [name for name, _ in update_args(d, f32)][:-1]     # (the last is the struct)


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
        assert _prototype(text, f"fo_{kernel}_update_{sfx}") == [*_arrays(d, sfx == "f32"),
                                                                 "hyper"]
        # the positional wrapper: the same arrays, then the struct's fields in its order
        assert _prototype(text, f"fo_{kernel}_step_{sfx}") == [*_arrays(d, sfx == "f32"),
                                                               *(h.name for h in d.hyper)]


@pytest.mark.parametrize("kernel", sorted(k for k, d in KERNELS.items() if d.scalar_keys))
def test_header_and_pxd_advance_takes_the_scalar_states_then_the_counters(kernel):
    # team mode's store of the per-tensor scalars, called by the generated glue
    names = [name for name, _ in advance_args(KERNELS[kernel])]
    for text in (HEADER, PXD):
        assert _prototype(text, f"fo_{kernel}_advance") == names


def test_kernels_without_scalar_state_have_no_advance():
    for kernel, d in KERNELS.items():
        if not d.scalar_keys:
            assert f"fo_{kernel}_advance" not in HEADER


def test_the_build_compiled_the_glue_these_descriptions_generate():
    # the fillers, runners and registrations are generated from the rows at build time
    # (setup.py, _kernel_glue.py): a row edited since the last build must be rebuilt
    assert _optim._KERNEL_GLUE == digest(DESCRIPTIONS), (
        "fastoptim/_C/_optim was built from other descriptions: rebuild (setup.py build_ext)")


def test_generated_glue_fills_every_field_once_and_registers_the_arity():
    text = glue(DESCRIPTIONS)
    for kernel, d in KERNELS.items():
        fill = re.search(r"^cdef int _%s_fill\(.*\n((?:    .*\n)+)" % kernel, text, re.M)
        assigned = re.findall(r"^    h\.(\w+) = (_[db])\(v\[(\d+)\]\)$", fill.group(1), re.M)
        assert assigned == [(h.name, "_d" if k < len(d.scalars) else "_b", str(k))
                            for k, h in enumerate(d.hyper)]
        reg = re.search(r'^_register\("%s", _%s_fill, _%s_run, (\w+), (\d+), '
                        r"sizeof\(fo_%s_hyper\)\)$" % ((kernel,) * 4), text, re.M)
        assert reg and int(reg.group(2)) == len(d.hyper)
        assert reg.group(1) == (f"_{kernel}_advance" if d.scalar_keys else "NULL")


def test_kernels_sharing_a_name_must_agree():
    import dataclasses

    adam = BY_NAME["adam"]
    odd = dataclasses.replace(adam, name="odd", flags=adam.flags[:-1])
    with pytest.raises(ValueError, match="share kernel 'adam'"):
        glue((*DESCRIPTIONS, odd))


def test_glue_has_one_step_entry_for_every_optimizer():
    # no per-optimizer entry points are left: one step, one group_step, a Plan per description
    assert not [n for n in dir(_optim) if n.endswith(("_step", "_group_step"))
                and not n.startswith("_") and n != "group_step"]
    stubs = {n.name for n in PYI.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"step", "group_step", "Plan"} <= stubs
    for d in DESCRIPTIONS:
        assert plan(d).op == d.name


@pytest.mark.parametrize("d", DESCRIPTIONS, ids=lambda d: d.name)
def test_classes_keep_torchs_surface_only_and_share_the_step(d):
    cls = getattr(optim, d.cls)
    own = set(vars(cls))
    assert not own & {"_update_group", "_init_group"}, own
    step = getattr(cls.step, "_fo_step_body", cls.step)
    assert step.__module__ == "fastoptim.optim._step"
    # (AdamW inherits Adam's step, as in torch)
    assert step.__qualname__ == f"{BY_NAME[d.kernel].cls}.step"


# The files an optimizer may appear in (as ``adamax``/``Adamax``), by the recipe in
# _descriptions.py's docstring: its kernel, the header and its mirror, its filler in the glue,
# its row, its class, its export, its public functional, its twin.  Elsewhere in the library it
# may only be mentioned in comments and docstrings (say, as an example).
RECIPE = ("csrc/optim_{k}.c", "csrc/optim_{k}.inc", "csrc/fastoptim.h",
          "fastoptim/kernels.pxd", "fastoptim/_C/kernels.pxd", "fastoptim/_C/_optim.pyx",
          "fastoptim/optim/_descriptions.py", "fastoptim/optim/{n}.py",
          "fastoptim/optim/__init__.py", "fastoptim/optim/functional.py",
          "fastoptim/optim/_reference.py")
PROSE_ONLY = ("fastoptim/optim/_state.py", "fastoptim/optim/optimizer.py",
              "fastoptim/optim/_step.py", "fastoptim/__main__.py")


def _code_of(path):
    """A Python file's code without its comments and strings (so that prose may name
    optimizers)."""
    import io
    import tokenize

    toks = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return " ".join(t.string for t in toks if t.type == tokenize.NAME)


def _strip_comments(name, text):
    if name.endswith((".c", ".h", ".inc")):
        return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
    return re.sub(r"#[^\n]*", " ", text)


@pytest.mark.parametrize("d", DESCRIPTIONS, ids=lambda d: d.name)
def test_an_optimizer_lives_only_where_the_recipe_says(d):
    import subprocess

    files = subprocess.run(["git", "ls-files", "csrc", "fastoptim"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    allowed = {f.format(k=d.kernel, n=d.name) for f in RECIPE}
    # the variants of one kernel (Adam and AdamW) may name each other
    allowed |= {f"fastoptim/optim/{e.name}.py" for e in DESCRIPTIONS if e.kernel == d.kernel}
    word = re.compile(r"\b_?%s\b|fo_%s_|_%s_" % (d.name, d.name, d.name), re.I)
    stray = []
    for f in files:
        path = ROOT / f
        if f in allowed or not f.endswith((".py", ".pyx", ".pxd", ".pyi", ".h", ".c", ".inc")):
            continue
        text = _code_of(path) if f.endswith(".py") else _strip_comments(f, path.read_text())
        if word.search(text) and f not in PROSE_ONLY:
            stray.append(f)
    assert not stray, f"{d.name} is spelled out outside its recipe: {stray}"


@pytest.mark.parametrize("d", DESCRIPTIONS, ids=lambda d: d.name)
def test_classes_functionals_and_twins_read_the_description(d):
    cls = getattr(optim, d.cls)
    assert cls._DESCRIPTION is d
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
    described = {d.cls for d in DESCRIPTIONS} | {w.cls for w in WHOLE_STEP}
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
