"""The benchmark suite (benchmarks/run.py) runs end to end, says what it is, and --compare
catches regressions without crying wolf.

Speed is not tested here (CI runs on a shared machine): the suite runs in its tiny ``--smoke``
configuration, and the assertions are about what it produces -- every regime's rows, the JSON's
provenance and machine facts, no verdicts in smoke mode, a loadable JSON from a killed run,
subsets merged into a saved run, and --compare's exit code on fabricated regressions, on the
same machine and across machines or modes (where it refuses to compare timings).
"""
import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fastoptim.optim._descriptions import DESCRIPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")
BASELINE = os.path.join(ROOT, "benchmarks", "baselines", "2core-full.json")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import report  # noqa: E402  (benchmarks/report.py: pure Python over saved rows)


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
    opts = [d.name for d in DESCRIPTIONS]    # the benchmarks run every described one
    extra = {("e", "fwd+bwd"), ("e", "adam+CrossEntropyLoss"), ("d", "sgd+StepLR"),
             ("d", "sgd+OneCycleLR"), ("b", "ema")}
    extra |= {(reg, "adafactor") for reg in "abc"}   # not elementwise: (a)-(c) only
    assert got == {(reg, o) for reg in "abcdef" for o in opts} | extra
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
        if row["regime"] in "bc" and row["optimizer"] != "ema":   # (ema: no optimizer step)
            assert "flat" in times


def test_timing_method_per_regime(smoke):
    """By default every timed regime times each contender in its own processes."""
    _, data, _ = smoke
    assert data["config"]["isolate"] == ["a", "b", "c", "d", "e", "ta", "tb", "tc", "te"]
    for row in data["rows"]:
        if row["regime"] == "f":
            continue
        timing = row["timing"]
        assert timing["method"] == "isolated"
        assert timing["processes"] >= len(row["times"])
        libs = timing["libraries"]
        # fastoptim over torch's tensors runs in a process that loads both libraries
        ours = "fastoptim+torch" if row["regime"] in ("ta", "tb", "tc", "te") else "fastoptim"
        assert libs[ours]["threads"] == 1
        assert libs[ours]["wait_policy"] is not None   # fastoptim's own default
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
                   ("e", "fwd+bwd"): "interleaved", ("e", "adam+CrossEntropyLoss"): "interleaved"}
    assert all(t["median_ns"] > 0 for r in rows for t in r["times"].values())


def test_json_records_provenance_and_figures(smoke):
    _, data, res = smoke
    assert data["mode"] == "smoke" and data["schema"] == 2 and data["complete"] is True
    assert data["versions"]["numpy"] and data["flags"]["fastoptim"]
    assert data["thread_check"][0]["fastoptim_omp"] >= 1
    ids = {f["id"] for f in data["figures"]}
    assert "a/adam/t1/roofline_frac" in ids and "b/sgd/t1/flat_frac" in ids
    assert "(a)" in res.stdout and "[numel=32K]" in res.stdout   # the sizes actually run


def test_json_records_the_machine(smoke):
    _, data, _ = smoke
    m = data["machine"]
    assert m["cpu"] and m["cpu_flags"] and m["cpus_usable"] >= 1
    levels = {c["level"] for c in m["caches"]}
    assert m["caches"] and all(c["size_bytes"] > 0 for c in m["caches"]) and 1 in levels
    assert m["fingerprint"]["cache_sizes"] == m["cache_sizes"]
    assert m["bandwidth"]["copy_gbs"] > 0 and m["bandwidth"]["add_gbs"] > 0
    la = m["loadavg"]
    assert len(la["before"]) == 3 and len(la["after"]) == 3
    assert len(la["during"]) == len(data["rows"])


def test_smoke_gives_no_verdicts(smoke):
    """Smoke sizes are not the targets': no PASS, FAIL or unsure, and the summary says so."""
    _, data, res = smoke
    targeted = [f for f in data["figures"] if f["target"] is not None]
    assert targeted and all(f["verdict"] is None and f["passed"] is None for f in targeted)
    assert all("smoke" in f["no_verdict"] for f in targeted)
    assert "no target verdicts" in res.stdout
    assert not any(w in res.stdout for w in ("PASS", "FAIL", "unsure]"))
    # the regime titles carry the sizes run, not the full mode's
    assert "16M" not in res.stdout and "1000 params" not in res.stdout


def test_verdicts_weigh_the_spread():
    """A figure whose spread reaches its margin to the target is unsure, not PASS/FAIL."""
    assert report.verdict(0.79, [0.75, 0.83], (">=", 0.80)) == "unsure"
    assert report.verdict(0.90, [0.88, 0.92], (">=", 0.80)) == "PASS"
    assert report.verdict(0.50, [0.49, 0.51], (">=", 0.80)) == "FAIL"
    assert report.verdict(0.02, None, ("<=", 0.03)) == "unsure"   # one round: spread unknown
    # paired per round: round k of one contender against round k of the other
    assert report.ratio_spread(2.0, [2, 2, 2, 2], [1, 1, 1, 1]) == [2.0, 2.0]
    assert report.ratio_spread(1.0, [1], [1]) is None


def test_a_row_timed_on_a_busy_machine_is_unsure():
    row = _timed_row("b", {"params": 1000, "numel": 1024}, [100.0, 101.0, 99.0], "flat",
                     [90.0, 90.5, 89.5])
    row["loadavg"] = {"start": [0.9, 0.5, 0.2], "end": [1.1, 0.6, 0.2]}   # 1 thread: its own
    (quiet,) = [f for f in report.figures(row, "full", cores=2) if f["name"] == "flat_frac"]
    row["loadavg"] = {"start": [4.0, 3.0, 2.0], "end": [4.2, 3.1, 2.0]}   # a neighbour's load
    (loaded,) = [f for f in report.figures(row, "full", cores=2) if f["name"] == "flat_frac"]
    assert quiet["verdict"] == "PASS" and quiet["busy"] is None
    assert loaded["verdict"] == "unsure" and loaded["busy"] == 4.2


def _timed_row(regime, sizes, fo_rounds, ref, ref_rounds):
    times = {name: {"median_ns": report.median(r), "samples_ns": r, "rounds_ns": r}
             for name, r in (("fastoptim", fo_rounds), (ref, ref_rounds))}
    return {"regime": regime, "optimizer": "adam", "threads": 1, "sizes": sizes,
            "times": times, "timing": {"method": "isolated"}}


def test_quick_gives_verdicts_only_at_the_targets_sizes():
    rounds = [100.0, 101.0, 99.0]
    b = _timed_row("b", {"params": 1000, "numel": 1024}, rounds, "flat", [90.0, 90.5, 89.5])
    a = _timed_row("a", {"numel": 4 << 20}, rounds, "roofline", [95.0, 95.0, 95.0])
    (fb,) = [f for f in report.figures(b, "quick") if f["name"] == "flat_frac"]
    (fa,) = [f for f in report.figures(a, "quick") if f["name"] == "roofline_frac"]
    assert fb["verdict"] == "PASS" and fb["spread"][0] <= fb["value"] <= fb["spread"][1]
    assert fa["verdict"] is None and "4M" in fa["no_verdict"] and "16M" in fa["no_verdict"]
    (fs,) = [f for f in report.figures(b, "smoke") if f["name"] == "flat_frac"]
    assert fs["verdict"] is None


def _scale(data, fig_id, contender, factor):
    """Fabricate: multiply one contender's times in the row of ``fig_id``."""
    regime, opt, th, _ = fig_id.split("/")
    (row,) = [r for r in data["rows"] if (r["regime"], r["optimizer"], f"t{r['threads']}")
              == (regime, opt, th)]
    t = row["times"][contender]
    t["median_ns"] *= factor
    t["samples_ns"] = [x * factor for x in t["samples_ns"]]
    t["rounds_ns"] = [x * factor for x in t["rounds_ns"]]


def _quiet(data):
    """The run as if timed on a quiet machine (its rows' load averages dropped), so that a
    fabricated regression is judged on the figures alone, whatever load the test ran under."""
    data = copy.deepcopy(data)
    for row in data["rows"]:
        row.pop("loadavg", None)
    return data


def _other_machine(data):
    data["machine"]["cpu"] = "Some Other CPU"
    data["machine"]["fingerprint"]["cpu"] = "Some Other CPU"


def test_compare_against_itself_passes(smoke):
    path, _, _ = smoke
    res = _run("--load", str(path), "--compare", str(path))
    assert res.returncode == 0, res.stdout[-2000:]
    assert "no figure regressed" in res.stdout


@pytest.mark.parametrize("fig_id, contender, factor", [
    ("a/adam/t1/roofline_frac", "roofline", 2.0),   # higher is better: the baseline was 2x as good
    ("b/sgd/t1/numpy_time", "numpy", 2.0),          # lower is better: numpy took 2x as long
])
def test_compare_names_a_fabricated_regression(smoke, tmp_path, fig_id, contender, factor):
    _, data, _ = smoke
    cur, base = _quiet(data), _quiet(data)
    _scale(base, fig_id, contender, factor)
    base_path, cur_path = tmp_path / "baseline.json", tmp_path / "cur.json"
    base_path.write_text(json.dumps(base))
    cur_path.write_text(json.dumps(cur))
    res = _run("--load", str(cur_path), "--compare", str(base_path), "--threshold", "0.10")
    assert res.returncode == 1, res.stdout[-2000:]
    assert fig_id in res.stdout and "REGRESSION" in res.stdout


def test_compare_across_machines_refuses_timings(smoke, tmp_path):
    """Another machine: said first, timing ratios not compared (a fabricated timing regression
    is not listed), unless --compare-all forces the full comparison."""
    _, data, _ = smoke
    cur, base = _quiet(data), _quiet(data)
    _other_machine(base)
    _scale(base, "a/adam/t1/roofline_frac", "roofline", 2.0)
    base_path, cur_path = tmp_path / "other.json", tmp_path / "cur.json"
    base_path.write_text(json.dumps(base))
    cur_path.write_text(json.dumps(cur))
    res = _run("--load", str(cur_path), "--compare", str(base_path))
    assert res.returncode == 0, res.stdout[-2000:]
    assert res.stdout.splitlines()[0].startswith("compare: DIFFERENT MACHINES")
    assert "REGRESSION" not in res.stdout and "machine-independent" in res.stdout
    forced = _run("--load", str(cur_path), "--compare", str(base_path), "--compare-all")
    assert forced.returncode == 1 and "REGRESSION a/adam/t1/roofline_frac" in forced.stdout


def test_compare_across_machines_still_checks_memory(smoke, tmp_path):
    path, data, _ = smoke
    base = copy.deepcopy(data)
    _other_machine(base)
    base_path = tmp_path / "other.json"
    base_path.write_text(json.dumps(base))
    cur = copy.deepcopy(data)
    (row,) = [r for r in cur["rows"] if (r["regime"], r["optimizer"]) == ("f", "sgd")]
    row["memory"]["fastoptim_traced"] = 8 << 20     # a step that now allocates an array
    cur_path = tmp_path / "cur.json"
    cur_path.write_text(json.dumps(cur))
    res = _run("--load", str(cur_path), "--compare", str(base_path))
    assert res.returncode == 1, res.stdout[-2000:]
    assert "REGRESSION f/sgd/t1/traced_extra" in res.stdout


def test_compare_across_modes_and_old_schema_refuses(smoke):
    """Smoke against the saved full baseline (schema 1: no machine facts): the machine is
    unknown and the modes differ, said first; nothing is comparable, so no regression is
    listed and the exit code is 2 (refused), not 1."""
    path, _, _ = smoke
    res = _run("--load", str(path), "--compare", BASELINE)
    assert res.returncode == 2, res.stdout[-3000:]
    first = res.stdout.splitlines()[:2]
    assert first[0].startswith("compare: baseline machine UNKNOWN")
    assert first[1].startswith("compare: DIFFERENT MODES")
    assert "REGRESSION" not in res.stdout and "REFUSED" in res.stdout


def test_old_baseline_is_reported_with_spreads():
    res = _run("--load", BASELINE, "--compare", BASELINE)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "machine: unknown" in res.stdout and "baseline machine UNKNOWN" in res.stdout
    assert "targets:" in res.stdout and "(0." in res.stdout     # figures carry their IQR


def _rows_in(path):
    try:
        with open(path) as f:
            return len(json.load(f)["rows"])
    except (OSError, ValueError):
        return 0


def test_a_killed_run_leaves_a_loadable_json(tmp_path):
    path = tmp_path / "killed.json"
    # (f) first: its rows need no contender processes, so two come quickly; (a)-(d) follow
    proc = subprocess.Popen([sys.executable, RUN, "--smoke", "--threads", "1", "--regimes",
                             "f,a,b,c,d", "--json", str(path)], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _rows_in(path) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # the run, its worker and its zygotes
        proc.wait()
    data = json.loads(path.read_text())
    assert data["complete"] is False and 2 <= len(data["rows"]) < 30
    res = _run("--load", str(path))
    assert res.returncode == 0, res.stdout[-2000:]
    assert "INCOMPLETE" in res.stdout


def test_a_subset_merges_into_a_saved_run(smoke, tmp_path):
    """--regimes/--optimizers subset, --repeat 2: the subset's rows (median of two medians)
    replace the saved run's, the others stay."""
    path, data, _ = smoke
    target = tmp_path / "merged.json"
    target.write_text(path.read_text())
    res = _run("--smoke", "--threads", "1", "--regimes", "d,f", "--optimizers", "sgd",
               "--isolate", "none", "--repeat", "2", "--json", str(tmp_path / "sub.json"),
               "--merge-into", str(target))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    merged = json.loads(target.read_text())
    assert len(merged["rows"]) == len(data["rows"])
    (row,) = [r for r in merged["rows"] if (r["regime"], r["optimizer"]) == ("d", "sgd")]
    assert row["repeats"] == 2 and "merged_from" in row
    assert row["timing"]["method"] == "interleaved"
    assert len(row["times"]["fastoptim"]["repeat_medians_ns"]) == 2
    # (d) is now interleaved
    assert merged["config"]["isolate"] == ["a", "b", "c", "e", "ta", "tb", "tc", "te"]
    # (d) runs sgd with and without a scheduler stepping every iteration: three rows
    assert merged["merges"][0]["rows"] == ["d/sgd/t1", "d/sgd+StepLR/t1", "d/sgd+OneCycleLR/t1",
                                           "f/sgd/t1"]
    assert sum("merged_from" in r for r in merged["rows"]) == 4


def test_merge_refuses_another_machine(smoke, tmp_path):
    _, data, _ = smoke
    other = copy.deepcopy(data)
    _other_machine(other)
    target = tmp_path / "other.json"
    target.write_text(json.dumps(other))
    res = _run("--smoke", "--threads", "1", "--regimes", "f", "--optimizers", "sgd",
               "--json", str(tmp_path / "sub.json"), "--merge-into", str(target))
    assert res.returncode == 2 and "refusing to merge" in res.stderr
    assert json.loads(target.read_text()) == other      # untouched


def test_regimes_on_torch_tensors(tmp_path):
    """(ta)-(te): fastoptim's optimizer and torch's on the same torch tensors, figures against
    torch; without torch, the rows hold no timings."""
    path = tmp_path / "torch.json"
    res = _run("--smoke", "--threads", "1", "--regimes", "ta,tc,te", "--optimizers", "adam",
               "--isolate", "none", "--json", str(path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rows = json.loads(path.read_text())["rows"]
    assert [r["regime"] for r in rows] == ["ta", "tc", "te"]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert all(not r["times"] for r in rows)
        return
    for row in rows:
        assert {"fastoptim", "torch:fused", "torch:foreach", "torch:forloop"} <= set(row["times"])
        names = {f["name"] for f in report.figures(row, "smoke")}
        assert "torch_time" in names
        assert ("torch_fused_time" in names) == (row["regime"] == "te")
