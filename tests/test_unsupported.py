"""What is not there says so: a torch name fastoptim lacks raises an AttributeError naming it as
unsupported and pointing at README.md's "Known differences"; other names get Python's usual
AttributeError; names fastoptim has are untouched.

Why: ``import fastoptim as torch`` users reach for torch names; "has no attribute" alone reads
like a typo or a broken install.
"""
import pathlib

import pytest

import fastoptim as fo
import fastoptim.nn.functional as F
from fastoptim._torch_names import NAMES

HINT = 'is not supported by fastoptim (see "Known differences" in fastoptim\'s README.md)'

MISSING = [
    (fo, "fastoptim", "fft", "torch.fft"),
    (fo, "fastoptim", "linalg", "torch.linalg"),
    (fo, "fastoptim", "einsum", "torch.einsum"),
    (fo.nn, "fastoptim.nn", "Conv2d", "torch.nn.Conv2d"),
    (fo.nn, "fastoptim.nn", "LSTM", "torch.nn.LSTM"),
    (F, "fastoptim.nn.functional", "conv2d", "torch.nn.functional.conv2d"),
    (fo.autograd, "fastoptim.autograd", "functional", "torch.autograd.functional"),
    (fo.optim, "fastoptim.optim", "SparseAdam", "torch.optim.SparseAdam"),
]


@pytest.mark.parametrize("mod, modname, name, torch_name", MISSING,
                         ids=[m[3] for m in MISSING])
def test_missing_torch_module_names_say_they_are_unsupported(mod, modname, name, torch_name):
    with pytest.raises(AttributeError) as e:
        getattr(mod, name)
    assert str(e.value) == f"module '{modname}' has no attribute '{name}': {torch_name} {HINT}"
    assert not hasattr(mod, name)


def test_missing_tensor_methods_say_they_are_unsupported():
    t = fo.zeros(3)
    with pytest.raises(AttributeError) as e:
        t.unfold(0, 2, 1)
    assert str(e.value) == f"'Tensor' object has no attribute 'unfold': Tensor.unfold {HINT}"
    assert not hasattr(t, "unfold") and not hasattr(fo.Tensor, "unfold")
    assert getattr(t, "unfold", None) is None


def test_names_torch_does_not_have_get_the_usual_error():
    with pytest.raises(AttributeError, match="^module 'fastoptim' has no attribute 'nosuch'$"):
        getattr(fo, "nosuch")  # noqa: B009
    with pytest.raises(AttributeError) as e:
        getattr(fo.zeros(1), "nosuch")  # noqa: B009
    assert "not supported" not in str(e.value)
    with pytest.raises(ImportError):
        from fastoptim import nosuch  # noqa: F401


def test_names_fastoptim_has_are_unaffected():
    t = fo.zeros(2, 3)
    assert t.permute(1, 0).shape == (3, 2)
    assert fo.cat([t, t]).shape == (4, 3)
    assert callable(fo.Tensor.sum) and callable(fo.nn.Linear)


def test_every_missing_tensor_name_is_a_torch_name():
    unsupported = [k for k, v in vars(fo.Tensor).items() if type(v).__name__ == "_Unsupported"]
    assert unsupported and set(unsupported) <= NAMES["fastoptim.Tensor"]


def test_readme_lists_the_known_differences():
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not next to the tests (installed package)")
    text = readme.read_text()
    assert "## Known differences from torch" in text
    for area in ("torch.fft", "torch.linalg", "convolutions", "recurrent layers", "complex",
                 "sparse", "CUDA" if "CUDA" in text else "CPU is the only device"):
        assert area in text, area
