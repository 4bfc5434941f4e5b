"""fastoptim-demo (the README's first command): it runs for every length a user may ask for,
its help is whole sentences without RST markup, and it reports what it measures.

Why: a new user hit ZeroDivisionError at --epochs 0/1, a --help cut mid-sentence, and a first
loss that was silently a 200-iteration mean."""
import pytest

from fastoptim.__main__ import _parser, main


@pytest.mark.parametrize("argv", [
    ["--epochs", "0", "--classifier-epochs", "0"],
    ["--epochs", "1", "--classifier-epochs", "1", "--no-torch", "--plot", ""],
    ["--epochs", "3", "--optimizer", "adam", "--classifier-epochs", "0"],
])
def test_demo_runs_at_any_length(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Traceback" not in out


def test_demo_reports_what_it_measures(capsys):
    assert main(["--epochs", "40", "--classifier-epochs", "2", "--no-torch", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "mean loss" in out and "over iterations 1-4 ->" in out
    assert "µs per iteration of this loop (it also draws x" in out
    assert "CrossEntropyLoss" in out and "accuracy" in out
    for name in ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad", "adadelta"):
        assert f"  {name:<10}" in out


def test_demo_help_is_whole_sentences():
    text = _parser().format_help()
    assert "``" not in text
    desc = _parser().description
    assert desc.endswith(".") and "CrossEntropyLoss" in desc


def test_demo_rejects_negative_lengths():
    with pytest.raises(SystemExit, match="--epochs must be >= 0"):
        main(["--epochs", "-1"])
