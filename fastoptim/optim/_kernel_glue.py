"""The per-kernel Cython glue, generated from the optimizer descriptions at build time.

Why it exists: each elementwise kernel needs, in ``fastoptim/_C/_optim.pyx``, a filler (its
``fo_<kernel>_hyper`` struct's fields set by name from the hyperparameters in the
description's order), a runner (its ``fo_<kernel>_update_f32/_f64`` called with the state lists
in its prototype's order), for a kernel with per-tensor scalar state the team-mode store
(``fo_<kernel>_advance``), its ``cimport`` line and its registration (name, hyperparameter
count, struct size).  Written by hand, that was the description's order restated three times
per optimizer, held to it only by a test that parsed the hand-written text.  Everything in it
follows from the row (``_descriptions.py``), so it is generated from the row instead:
:func:`glue` returns the text of ``_optim_kernels.pxi``, which ``setup.py`` writes into the
build directory (never the source tree) and ``_optim.pyx`` includes.  The C compiler then
checks the generated calls against ``fastoptim.h``'s prototypes (types, arity);
``tests/test_descriptions.py`` checks what it cannot (the names and order of the prototypes'
array parameters, which :func:`update_args` states once, and the struct's fields), and that the
build is the one these rows generate (:data:`_optim._KERNEL_GLUE`, :func:`digest`).

What stays hand-written in ``_optim.pyx``: a kernel's test of the per-step scalars torch
divides by (``_<kernel>_zero``: real per-optimizer math), registered by kernel name.

This module imports nothing from fastoptim: ``setup.py`` loads it (and ``_descriptions.py``)
by path, before anything is built.
"""

from __future__ import annotations

import hashlib

__all__ = ["advance_args", "digest", "glue", "kernels", "update_args"]


def kernels(descriptions) -> dict:
    """One description per kernel (Adam and AdamW share one), in the rows' order; the rows
    that share a kernel must agree on everything the glue reads."""
    out: dict = {}
    for d in descriptions:
        first = out.setdefault(d.kernel, d)
        if (first.hyper, first.state, first.step, first.first_step) != (
                d.hyper, d.state, d.step, d.first_step):
            raise ValueError(f"descriptions {first.name!r} and {d.name!r} share kernel "
                             f"{d.kernel!r} but not its hyperparameters, state or step rule")
    return out


def update_args(d, f32: bool) -> list[tuple[str, str]]:
    """``fo_<kernel>_update_f32/_f64``'s parameters, in order: (the header's parameter name, the
    runner's argument).  The rule every prototype follows: params, grads, the state lists in
    the description's order, a first-buffer flag (SGD), the step counters, numels, ntensors,
    whether the per-tensor scalar states are doubles (kernels with scalar state), the struct."""
    c = "float" if f32 else "double"
    args = [("params", f"<{c} **>b.arr[0]"), ("grads", f"<const {c} **>b.arr[1]")]
    args += [(s.list_name, f"<{'void' if s.scalar else c} **>s[{k}]")
             for k, s in enumerate(d.state)]
    if d.first_step == "from_grad":
        args.append(("buffer_is_new", "(b.is_new if c.buffers_new else NULL)"))
    if d.step:
        args.append(("steps", "b.steps"))
    args += [("numels", "b.numels"), ("ntensors", "b.n")]
    if any(s.scalar for s in d.state):
        args.append(("scalars_f64", "b.sf64[0]"))
    return args + [("hyper", "h")]


def advance_args(d) -> list[tuple[str, str]]:
    """``fo_<kernel>_advance``'s parameters (a kernel with per-tensor scalar state only): the
    scalar state lists, the (already incremented) step counters, ntensors, scalars_f64, the
    struct."""
    args = [(s.list_name, f"<void **>s[{k}]") for k, s in enumerate(d.state) if s.scalar]
    return args + [("steps", "<const float **>b.steps"), ("ntensors", "b.n"),
                   ("scalars_f64", "b.sf64[0]"),
                   ("hyper", f"<const fo_{d.kernel}_hyper *>&c.h")]


def _call(fn: str, args: list[tuple[str, str]], indent: str) -> list[str]:
    """``fn(args)`` wrapped at 100 columns."""
    lines, line = [], f"{indent}{fn}("
    cont = " " * len(line)
    for i, (_, a) in enumerate(args):
        piece = a + (")" if i == len(args) - 1 else ",")
        if len(line) + 1 + len(piece) > 100 and not line.endswith("("):
            lines.append(line)
            line = cont + piece
        else:
            line += ("" if line.endswith("(") else " ") + piece
    return lines + [line]


def _kernel(d) -> list[str]:
    k = d.kernel
    scalar = any(s.scalar for s in d.state)
    names = [f"fo_{k}_hyper", f"fo_{k}_update_f32", f"fo_{k}_update_f64"]
    if scalar:
        names.insert(0, f"fo_{k}_advance")
    cimport = f"from fastoptim._C.kernels cimport {', '.join(names)}"
    if len(cimport) > 100:
        cimport = "from fastoptim._C.kernels cimport (\n    " + ", ".join(names) + ",\n)"
    out = [f"# ---- fo_{k} " + "-" * (85 - len(k)), cimport, "", "",
           f"cdef int _{k}_fill(void *hp, PyObject **v) except -1:",
           f"    cdef fo_{k}_hyper *h = <fo_{k}_hyper *>hp"]
    out += [f"    h.{h.name} = _d(v[{i}])" for i, h in enumerate(d.scalars)]
    out += [f"    h.{h.name} = _b(v[{len(d.scalars) + i}])" for i, h in enumerate(d.flags)]
    out += ["    return 0", "", "",
            f"cdef void _{k}_run(Batch *b, bint f32, const Call *c, void ***s) noexcept nogil:",
            f"    cdef const fo_{k}_hyper *h = <const fo_{k}_hyper *>&c.h",
            "    if f32:"]
    out += _call(f"fo_{k}_update_f32", update_args(d, True), "        ")
    out += ["    else:"]
    out += _call(f"fo_{k}_update_f64", update_args(d, False), "        ")
    advance = "NULL"
    if scalar:
        advance = f"_{k}_advance"
        out += ["", "",
                f"cdef void _{k}_advance(Batch *b, bint f32, const Call *c, void ***s) "
                "noexcept nogil:"]
        out += _call(f"fo_{k}_advance", advance_args(d), "    ")
    out += ["", "", f'_register("{k}", _{k}_fill, _{k}_run, {advance}, {len(d.hyper)}, '
            f"sizeof(fo_{k}_hyper))", "", ""]
    return out


def _body(descriptions) -> str:
    lines = []
    for d in kernels(descriptions).values():
        lines += _kernel(d)
    return "\n".join(lines)


def digest(descriptions) -> str:
    """A short hash of the glue these rows generate (the build records the one it compiled)."""
    return hashlib.sha256(_body(descriptions).encode()).hexdigest()[:16]


def glue(descriptions) -> str:
    """The text of ``_optim_kernels.pxi``: each kernel's cimport, filler, runner, advance and
    registration, then the digest of all of it as ``_KERNEL_GLUE``."""
    return ("# Generated by fastoptim/optim/_kernel_glue.py from fastoptim/optim/_descriptions.py"
            " at build time:\n# do not edit (and never commit): edit the descriptions.\n\n"
            + _body(descriptions)
            + f'# what the build compiled (tests/test_descriptions.py)\n'
            f'_KERNEL_GLUE = "{digest(descriptions)}"\n')


if __name__ == "__main__":   # what a build generates: python -m fastoptim.optim._kernel_glue
    from fastoptim.optim._descriptions import DESCRIPTIONS

    print(glue(DESCRIPTIONS), end="")
