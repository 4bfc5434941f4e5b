"""The benchmark suite (benchmarks/run.py) runs end to end, and --compare catches regressions.

Speed is not tested here (CI runs on a shared machine): the suite runs in its tiny ``--smoke``
configuration, and the assertions are about what it produces -- every regime's rows, figures
with targets, the JSON's provenance, and --compare's exit code on a fabricated regression.
"""
import copy
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")


def _run(*args):
    return subprocess.run([sys.executable, RUN, *args], check=False, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "run.json"
    res = _run("--smoke", "--threads", "1", "--json", str(path), "--png", str(path) + ".png")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    with open(path) as f:
        return path, json.load(f), res


def test_every_regime_and_optimizer_has_a_row(smoke):
    _, data, _ = smoke
    got = {(r["regime"], r["optimizer"]) for r in data["rows"]}
    opts = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"]
    assert got == {(reg, o) for reg in "abcdef" for o in opts} | {("e", "fwd+bwd")}
    assert all(r["threads"] == 1 for r in data["rows"])


def test_rows_hold_medians_of_every_contender(smoke):
    _, data, _ = smoke
    for row in data["rows"]:
        if row["regime"] == "f":
            mem = row["memory"]
            assert mem["live_bytes"] > 0 and mem["fastoptim_traced"] is not None
            continue
        times = row["times"]
        assert "fastoptim" in times
        assert all(t["median_ns"] > 0 and len(t["samples_ns"]) >= 1 for t in times.values())
        if row["regime"] == "a":
            assert {"roofline", "numpy"} <= set(times)
        if row["regime"] in "bc":
            assert "flat" in times


def test_timing_method_per_regime(smoke):
    """By default every timed regime times each contender in its own processes."""
    _, data, _ = smoke
    assert data["config"]["isolate"] == ["a", "b", "c", "d", "e"]
    for row in data["rows"]:
        if row["regime"] == "f":
            continue
        timing = row["timing"]
        assert timing["method"] == "isolated"
        assert timing["processes"] >= len(row["times"])
        libs = timing["libraries"]
        assert libs["fastoptim"]["threads"] == 1
        assert libs["fastoptim"]["wait_policy"] is not None   # fastoptim's own default
        if any(name.startswith("torch:") for name in row["times"]):
            assert libs["torch"]["threads"] == 1


def test_isolate_option_swaps_the_methods(tmp_path):
    path = tmp_path / "iso.json"
    res = _run("--smoke", "--threads", "1", "--regimes", "d,e", "--optimizers", "adam",
               "--isolate", "d", "--json", str(path), "--png", str(tmp_path / "iso.png"))
    # e interleaved in the worker: the old way, still there with --isolate
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = json.loads(path.read_text())["rows"]
    got = {(r["regime"], r["optimizer"]): r["timing"]["method"] for r in rows}
    assert got == {("d", "adam"): "isolated", ("e", "adam"): "interleaved",
                   ("e", "fwd+bwd"): "interleaved"}
    assert all(t["median_ns"] > 0 for r in rows for t in r["times"].values())


def test_json_records_provenance_and_figures(smoke):
    _, data, res = smoke
    assert data["mode"] == "smoke"
    assert data["machine"]["cpu"] and data["versions"]["numpy"] and data["flags"]["fastoptim"]
    assert data["thread_check"][0]["fastoptim_omp"] >= 1
    ids = {f["id"] for f in data["figures"]}
    assert "a/adam/t1/roofline_frac" in ids and "b/sgd/t1/flat_frac" in ids
    assert any(f["passed"] is not None for f in data["figures"])
    assert "targets:" in res.stdout and "(a)" in res.stdout


def test_compare_against_itself_passes(smoke):
    path, _, _ = smoke
    res = _run("--load", str(path), "--compare", str(path))
    assert res.returncode == 0, res.stdout[-2000:]
    assert "no figure regressed" in res.stdout


@pytest.mark.parametrize("fig_id, factor", [
    ("a/adam/t1/roofline_frac", 2.0),     # higher is better: the baseline was twice as good
    ("b/sgd/t1/numpy_time", 0.5),         # lower is better: the baseline took half the time
])
def test_compare_names_a_fabricated_regression(smoke, tmp_path, fig_id, factor):
    path, data, _ = smoke
    base = copy.deepcopy(data)
    (fig,) = [f for f in base["figures"] if f["id"] == fig_id]
    fig["value"] *= factor
    base_path = tmp_path / "baseline.json"
    base_path.write_text(json.dumps(base))
    res = _run("--load", str(path), "--compare", str(base_path), "--threshold", "0.10")
    assert res.returncode == 1, res.stdout[-2000:]
    assert fig_id in res.stdout and "REGRESSION" in res.stdout
