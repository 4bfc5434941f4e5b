"""From rows to figures: ratios, targets, the table, the JSON, the chart and the comparison.

Why it exists: the regimes only time things.  Everything a reader (or CI, or --compare) looks at
is a *figure* derived here from one row: a ratio of two timings taken in the same run (so it
needs no absolute bandwidth and survives a noisy machine better than raw times), or a byte count.
Each figure has a stable id ``regime/optimizer/tN/name``, a direction (lower or higher is better)
and, where the issue sets one, a target with a pass/fail mark.  Targets are reported, never
asserted: the exit code only reflects --compare.
"""

import json
import math

KIB, MIB = 1024, 1024 * 1024
ALLOC_SLACK = {"traced": 64 * KIB, "rss": 1 * MIB}   # "allocates nothing", allowing bookkeeping

# (regime, figure name) -> what it means, for the table legend and the README.
LEGEND = {
    "roofline_frac": "roofline time / fastoptim time (1.0 = at the memory limit)",
    "flat_frac": "fastoptim on one flat buffer of the same size: flat time / fastoptim time",
    "torch_time": "fastoptim time / fastest torch variant's time (< 1: fastoptim faster)",
    "torch_fused_time": "fastoptim time / torch fused=True time",
    "numpy_time": "fastoptim time / NumPy twin's time",
    "traced_extra": "bytes allocated at the peak of a step, above the live arrays (tracemalloc)",
    "rss_extra": "resident bytes added at the peak of a step (VmHWM - VmRSS)",
    "torch_rss_extra": "the same for torch's default step (information)",
}


def _target(regime, opt, name):
    """(comparison, bound) for a figure the issue sets a target on, else None."""
    if regime == "a" and name == "roofline_frac":
        return (">=", 0.85)
    if regime == "a" and name == "torch_time":
        return ("<=", 1 / 3) if opt in ("rmsprop", "adadelta") else ("<=", 1.0)
    if regime == "b" and name == "flat_frac":
        return (">=", 0.80)
    if regime == "c" and name == "flat_frac":
        return (">=", 0.50)
    if regime == "d" and name == "torch_time" and opt in ("sgd", "adam"):
        return ("<=", 0.03)
    if regime == "e" and name == "torch_fused_time" and opt == "adam":
        return ("<=", 0.90)
    if regime == "e" and name == "torch_time" and opt == "fwd+bwd":
        return ("<=", 1.0)
    if regime == "f" and name in ("traced_extra", "rss_extra"):
        return ("<=", ALLOC_SLACK[name.split("_")[0]])
    return None


def _median(row, name):
    t = row.get("times", {}).get(name)
    return None if t is None else t["median_ns"]


def torch_best(row):
    """(variant, median ns) of the fastest torch contender of a row, or (None, None)."""
    best = None
    for name, t in row.get("times", {}).items():
        if name.startswith("torch:") and (best is None or t["median_ns"] < best[1]):
            best = (name[6:], t["median_ns"])
    return best or (None, None)


def figures(row):
    """The figures of one row, as dicts (id, regime, optimizer, threads, name, value, better,
    target, passed)."""
    r, opt, th = row["regime"], row["optimizer"], row["threads"]
    vals = []   # (name, value, better)
    fo = _median(row, "fastoptim")
    if fo:
        _, tb = torch_best(row)
        if tb:
            vals.append(("torch_time", fo / tb, "lower"))
        fused = _median(row, "torch:fused")
        if r == "e" and fused:
            vals.append(("torch_fused_time", fo / fused, "lower"))
        for ref, name in (("roofline", "roofline_frac"), ("flat", "flat_frac")):
            t = _median(row, ref)
            if t:
                vals.append((name, t / fo, "higher"))
        t = _median(row, "numpy")
        if t:
            vals.append(("numpy_time", fo / t, "lower"))
    mem = row.get("memory", {})
    # torch's own memory is information only (better=None): --compare does not gate on it.
    for key, name, better in (("fastoptim_traced", "traced_extra", "lower"),
                              ("fastoptim_rss", "rss_extra", "lower"),
                              ("torch_rss", "torch_rss_extra", None)):
        if mem.get(key) is not None:
            vals.append((name, float(mem[key]), better))
    out = []
    for name, value, better in vals:
        tgt = _target(r, opt, name)
        passed = None
        if tgt is not None:
            passed = value >= tgt[1] if tgt[0] == ">=" else value <= tgt[1]
        out.append({"id": f"{r}/{opt}/t{th}/{name}", "regime": r, "optimizer": opt,
                    "threads": th, "name": name, "value": value, "better": better,
                    "target": list(tgt) if tgt else None, "passed": passed})
    return out


# ---- the table -----------------------------------------------------------------------------

def fmt_ns(ns):
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_bytes(b):
    if b is None:
        return "-"
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", KIB)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{int(b)} B"


def fmt_value(fig):
    v = fig["value"]
    if fig["name"].endswith("_extra"):
        return fmt_bytes(v)
    if fig["name"].endswith("_frac"):
        return f"{v:.0%}"
    return f"{v:.3g}x"


def fmt_figure(fig):
    s = f"{fig['name']}={fmt_value(fig)}"
    if fig["target"] is not None:
        op, bound = fig["target"]
        shown = fmt_value(dict(fig, value=bound))
        s += f" [{op}{shown} {'PASS' if fig['passed'] else 'FAIL'}]"
    return s


def table(data, regime_titles):
    """The human-readable report: one line per row, times then figures with their marks."""
    lines = []
    figs_by_row = {}
    for f in data["figures"]:
        figs_by_row.setdefault((f["regime"], f["optimizer"], f["threads"]), []).append(f)
    regimes = []
    for row in data["rows"]:
        if row["regime"] not in regimes:
            regimes.append(row["regime"])
    head = (f"{'optimizer':9} {'thr':>3} {'fastoptim':>10} {'torch best':>19} {'numpy':>9} "
            f"{'yardstick':>10}  figures")
    for reg in regimes:
        lines.append("")
        sizes = next(r.get("sizes", {}) for r in data["rows"] if r["regime"] == reg)
        shown_sizes = ", ".join(f"{k}={v}" for k, v in sizes.items())
        lines.append(f"({reg}) {regime_titles.get(reg, '')}  [{shown_sizes}]")
        lines.append(head if reg != "f" else
                     f"{'optimizer':9} {'thr':>3} {'live arrays':>11}  figures")
        for row in data["rows"]:
            if row["regime"] != reg:
                continue
            figs = figs_by_row.get((reg, row["optimizer"], row["threads"]), [])
            shown = "  ".join(fmt_figure(f) for f in figs if f["name"] != "numpy_time"
                              or reg != "f")
            if reg == "f":
                live = fmt_bytes(row["memory"]["live_bytes"])
                lines.append(f"{row['optimizer']:9} {row['threads']:>3} {live:>11}  {shown}")
                continue
            variant, tb = torch_best(row)
            torch_s = f"{fmt_ns(tb)} ({variant})" if tb else "-"
            yard = _median(row, "roofline") or _median(row, "flat")
            lines.append(f"{row['optimizer']:9} {row['threads']:>3} "
                         f"{fmt_ns(_median(row, 'fastoptim')):>10} {torch_s:>19} "
                         f"{fmt_ns(_median(row, 'numpy')):>9} {fmt_ns(yard):>10}  {shown}")
    marked = [f for f in data["figures"] if f["passed"] is not None]
    failed = [f for f in marked if not f["passed"]]
    lines.append("")
    lines.append(f"targets: {len(marked) - len(failed)}/{len(marked)} pass"
                 + (f"; failing: {', '.join(f['id'] for f in failed)}" if failed else ""))
    lines.append("yardstick: roofline (a) or flat buffer (b, c).  figures:")
    for name, text in LEGEND.items():
        lines.append(f"  {name:17} {text}")
    return "\n".join(lines)


# ---- comparison with a baseline ------------------------------------------------------------

def compare(current, baseline, threshold):
    """Figures of ``current`` worse than the same figure of ``baseline`` by more than
    ``threshold`` (relative).  Returns (regressions, notes): regressions are
    (id, old, new, change) tuples; notes say what could not be compared."""
    notes = []
    if current.get("machine", {}).get("id") != baseline.get("machine", {}).get("id"):
        notes.append("baseline was measured on another machine; ratios may not carry over")
    if current.get("config", {}).get("mode") != baseline.get("config", {}).get("mode"):
        notes.append(f"baseline mode {baseline.get('mode')!r} differs from this run's "
                     f"{current.get('mode')!r}: sizes and repeats differ")
    iso_new = current.get("config", {}).get("isolate")
    iso_old = baseline.get("config", {}).get("isolate")
    if iso_new != iso_old:
        notes.append(f"baseline isolated regimes {iso_old or 'none'} in their own processes, "
                     f"this run {iso_new or 'none'}: those rows were timed differently")
    old = {f["id"]: f for f in baseline.get("figures", [])}
    regressions = []
    matched = 0
    for f in current["figures"]:
        o = old.get(f["id"])
        if o is None or o["value"] is None or f["value"] is None or f["better"] is None:
            continue
        matched += 1
        new_v, old_v = f["value"], o["value"]
        if f["name"].endswith("_extra"):
            slack = ALLOC_SLACK["rss" if "rss" in f["name"] else "traced"]
            worse = new_v > old_v * (1 + threshold) + slack
            change = new_v - old_v
        elif f["better"] == "higher":
            worse = new_v < old_v * (1 - threshold)
            change = new_v / old_v - 1 if old_v else math.inf
        else:
            worse = new_v > old_v * (1 + threshold)
            change = new_v / old_v - 1 if old_v else math.inf
        if worse:
            regressions.append((f["id"], old_v, new_v, change))
    if matched == 0:
        notes.append("no figure in common with the baseline")
    return regressions, notes


def format_regression(fig_id, old, new, change):
    if fig_id.endswith("_extra"):
        return f"  REGRESSION {fig_id}: {fmt_bytes(old)} -> {fmt_bytes(new)}"
    return f"  REGRESSION {fig_id}: {old:.4g} -> {new:.4g} ({change:+.1%})"


# ---- files ---------------------------------------------------------------------------------

def write_json(data, path):
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)
