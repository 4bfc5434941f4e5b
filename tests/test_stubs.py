"""The .pyi stubs of the compiled modules: complete, and good enough for mypy to check a user
script.

Why: mypy reads fastoptim through ``py.typed`` and the hand-written stubs next to each compiled
module; a public name missing from a stub is an error in every user script that uses it, and a
broken stub makes mypy reject correct code.
"""
import ast
import importlib
import os
import pathlib
import sys
import textwrap
import types

import pytest

import fastoptim as fo

PKG = pathlib.Path(fo.__file__).parent
MODULES = ["_tensor", "_optim", "_bench", "_lbfgs"]


def _stub_names(mod):
    tree = ast.parse((PKG / "_C" / f"{mod}.pyi").read_text())
    top, classes = set(), {}
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            top.add(n.name)
        elif isinstance(n, ast.AnnAssign):
            top.add(n.target.id)
        elif isinstance(n, ast.Assign):
            top |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        if isinstance(n, ast.ClassDef):
            members = set()
            for b in n.body:
                if isinstance(b, ast.FunctionDef):
                    members.add(b.name)
                elif isinstance(b, ast.AnnAssign):
                    members.add(b.target.id)
                elif isinstance(b, ast.Assign):
                    members |= {t.id for t in b.targets if isinstance(t, ast.Name)}
            classes[n.name] = members
    return top, classes


@pytest.mark.parametrize("mod", MODULES)
def test_every_public_name_of_a_compiled_module_is_in_its_stub(mod):
    m = importlib.import_module(f"fastoptim._C.{mod}")
    top, classes = _stub_names(mod)
    missing = sorted(k for k, v in vars(m).items() if not k.startswith("_")
                     and not isinstance(v, types.ModuleType) and k not in top)
    assert not missing, f"{mod}.pyi lacks {missing}"
    for cls, members in classes.items():
        obj = getattr(m, cls, None)
        if not isinstance(obj, type):
            continue
        lacking = sorted(k for k, v in vars(obj).items() if not k.startswith("_")
                         and type(v).__name__ != "_Unsupported" and k not in members)
        assert not lacking, f"{mod}.pyi: class {cls} lacks {lacking}"


def test_mypy_checks_a_user_script(tmp_path):
    api = pytest.importorskip("mypy.api")
    (tmp_path / "good.py").write_text(textwrap.dedent("""
        import fastoptim as torch
        import fastoptim.nn as nn

        x = torch.randn(4, 3, requires_grad=True)
        w = torch.zeros(3, 2)
        y = (x @ w).relu().sum()
        y.backward()
        g: torch.Tensor | None = x.grad
        parts = torch.cat([x, x]).split(2)
        n: int = len(parts)
        model = nn.Linear(3, 1)
        with torch.no_grad():
            out = model(x).float()
        size: float = out.mean().item()
    """))
    (tmp_path / "bad.py").write_text("import fastoptim as torch\nn: int = torch.zeros(2)\n")
    env_path = str(PKG.parent)
    old = os.environ.get("MYPYPATH")
    # an installed fastoptim is found through the interpreter's site-packages; the source tree
    # through MYPYPATH (mypy refuses site-packages there)
    if "site-packages" not in env_path:
        os.environ["MYPYPATH"] = env_path
    try:
        common = ["--follow-imports=silent", "--no-incremental", "--python-executable",
                  sys.executable, "--cache-dir", str(tmp_path / ".mypy_cache")]
        # one run over both files (mypy's start-up is most of its time)
        out, err, rc = api.run(common + [str(tmp_path / "good.py"), str(tmp_path / "bad.py")])
        errors = [line for line in out.splitlines() if ": error:" in line]
        assert len(errors) == 1, out + err
        assert errors[0].startswith(str(tmp_path / "bad.py") + ":2:")
        assert 'expression has type "Tensor", variable has type "int"' in errors[0]
    finally:
        if old is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = old
