"""From rows to figures: ratios, spreads, verdicts, the table, the JSON and the comparison.

Why it exists: the regimes only time things.  Everything a reader (or CI, or --compare) looks at
is a *figure* derived here from one row: a ratio of two timings taken in the same run (so it
needs no absolute bandwidth and survives a noisy machine better than raw times), or a byte count.
Each figure has a stable id ``regime/optimizer/tN/name``, a direction (lower or higher is better)
and, where the issue sets one, a target.  Targets are reported, never asserted: the exit code
only reflects --compare.  Everything is derived from the rows alone, so a saved run (of any
schema) is re-reported and compared with today's rules.

Noise is part of a figure.  A contender is timed in *rounds* (fresh processes, or one repeat each
when interleaved); a figure's value per round pairs the rounds of its two contenders (round k of
A with round k of B, which ran next to each other), and its ``spread`` is the interquartile
range of those values.  A verdict is

- ``PASS`` / ``FAIL`` when the figure's distance to its target exceeds the spread's width;
- ``unsure`` when it does not (or the spread is unknown: a single round), rather than a coin
  flip called PASS or FAIL; also when the machine was busy while the row was timed (its
  load average, less the row's own threads, above half the cores): a neighbour's load moves
  every round alike, which a few rounds' spread cannot show;
- none (``None``) when the run's sizes are not the target's: a smoke run never gets verdicts, a
  quick run only for the regimes it runs at the full sizes.  Memory figures are single
  deterministic measurements: PASS/FAIL.

--compare (``compare``) first decides what can be compared: across different (or unknown)
machines only machine-independent figures (bytes allocated: the code decides them, not the
hardware), across modes or timing methods only figures measured at the same sizes and the same
way, and never a figure whose sizes differ.  It says so before anything else; ``compare_all``
overrides it.  A regression within the two runs' spreads, or timed while either machine was
busy, is ``unsure``: listed, not failing.
"""

import json
import math
import os
import tempfile

from contenders import EMA, MODES, SCHEDULED, sizes
from machine import busy as busy_load

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
    if regime == "d" and name == "torch_time" and (opt in ("sgd", "adam") or opt in SCHEDULED):
        return ("<=", 0.03)     # with a scheduler stepping every iteration too (issue 12)
    if regime == "b" and name == "torch_time" and opt == EMA:
        return ("<=", 0.2)      # AveragedModel + get_ema_multi_avg_fn (issue 12)
    if regime == "e" and name == "torch_fused_time" and opt in ("adam", "adam+CrossEntropyLoss"):
        return ("<=", 0.90)
    if regime == "e" and name == "torch_time" and opt == "fwd+bwd":
        return ("<=", 1.0)
    if regime == "ta" and name == "torch_time":   # on torch tensors (issue 11)
        return ("<=", 1 / 3) if opt in ("rmsprop", "adadelta") else ("<=", 1.0)
    if regime in ("tb", "tc") and name == "torch_time":
        return ("<=", 0.25 if regime == "tb" else 0.1)
    if regime == "te" and name == "torch_fused_time" and opt == "adam":
        return ("<=", 0.5)
    if regime == "f" and name in ("traced_extra", "rss_extra"):
        return ("<=", ALLOC_SLACK[name.split("_")[0]])
    return None


def target_sizes(regime):
    """The sizes the targets were set for: the full mode's."""
    if regime == "f":
        return {"numel": MODES["full"].f_numel}
    return sizes(regime, MODES["full"])


def is_memory(name):
    return name.endswith("_extra")


# ---- statistics ----------------------------------------------------------------------------

def quantile(xs, q):
    """Linear-interpolation quantile (NumPy's default) of a non-empty list."""
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(xs):
    return quantile(xs, 0.5)


def _median(row, name):
    t = row.get("times", {}).get(name)
    return None if t is None else t["median_ns"]


def rounds(row, name, mode_cfg=None):
    """Per-round values (ns) of one contender: ``rounds_ns`` when the run recorded them; else
    rebuilt from the samples (interleaved: one sample per repeat is one round; isolated: the
    samples came in chunks of ceil(repeats / rounds), as ``isolated.time_isolated`` takes
    them)."""
    t = row.get("times", {}).get(name)
    if t is None:
        return []
    if "rounds_ns" in t:
        return list(t["rounds_ns"])
    s = t.get("samples_ns") or []
    if row.get("timing", {}).get("method") != "isolated" or not mode_cfg:
        return list(s)
    nr = max(1, min(mode_cfg.get("rounds", 1), mode_cfg.get("repeats", 1)))
    per = max(1, math.ceil(mode_cfg.get("repeats", 1) / nr))
    return [median(s[i:i + per]) for i in range(0, len(s), per)]


def ratio_spread(value, num, den, invert=False):
    """[q25, q75] of a ratio figure per round: num_k / den_k (den_k / num_k when ``invert``),
    paired round by round when both have the same number of rounds, else from the quartiles of
    each side (the wider, conservative interval); widened to include ``value`` (the ratio of the
    medians of all samples, which rounds of unequal sizes can put outside).  None with fewer
    than two rounds a side: one round says nothing about noise."""
    if len(num) < 2 or len(den) < 2:
        return None
    if invert:
        num, den = den, num
    if len(num) == len(den):
        vals = [a / b for a, b in zip(num, den) if b]
        if len(vals) < 2:
            return None
        lo, hi = quantile(vals, 0.25), quantile(vals, 0.75)
    else:
        lo = quantile(num, 0.25) / quantile(den, 0.75)
        hi = quantile(num, 0.75) / quantile(den, 0.25)
    return [min(lo, value), max(hi, value)]


def torch_best(row):
    """(variant, median ns) of the fastest torch contender of a row, or (None, None)."""
    best = None
    for name, t in row.get("times", {}).items():
        if name.startswith("torch:") and (best is None or t["median_ns"] < best[1]):
            best = (name[6:], t["median_ns"])
    return best or (None, None)


# ---- figures and verdicts ------------------------------------------------------------------

def verdict(value, spread, target):
    """``PASS``/``FAIL``, or ``unsure`` when the spread's width reaches the margin to the
    target (or the spread is unknown)."""
    op, bound = target
    ok = value >= bound if op == ">=" else value <= bound
    if spread is None:
        return "unsure"
    if spread[1] - spread[0] >= abs(value - bound):
        return "unsure"
    return "PASS" if ok else "FAIL"


def row_busy(row, cores):
    """The 1-minute load average (highest of the row's start and end) when the machine was busy
    while the row was timed, beyond the row's own threads (``machine.busy``); else None.  A row
    of ``--repeat`` runs counts as busy when most of its repeats were."""
    la = row.get("loadavg")
    if not la or not cores:
        return None
    if isinstance(la, list):                       # one entry per repeat
        got = [row_busy(dict(row, loadavg=x), cores) for x in la]
        busy = [g for g in got if g is not None]
        return max(busy) if len(busy) * 2 > len(got) else None
    loads = [v[0] for v in (la.get("start"), la.get("end")) if v]
    worst = max(loads) if loads else None
    return worst if worst is not None and busy_load(worst, cores, row["threads"]) else None


def figures(row, mode="full", mode_cfg=None, cores=None):
    """The figures of one row, as dicts (id, regime, optimizer, threads, name, value, better,
    sizes, spread, target, verdict, passed, no_verdict).  ``mode`` is the run's mode name,
    ``mode_cfg`` its ``config.mode`` (rounds and repeats, to rebuild rounds of old runs),
    ``cores`` the machine's usable cores (a timing figure of a row timed while the machine was
    busy is ``unsure``: a few rounds' spread does not show what a neighbour's load does)."""
    r, opt, th = row["regime"], row["optimizer"], row["threads"]
    vals = []   # (name, value, better, spread)
    fo = _median(row, "fastoptim")
    if fo:
        rf = rounds(row, "fastoptim", mode_cfg)
        variant, tb = torch_best(row)
        if tb:
            vals.append(("torch_time", fo / tb, "lower",
                         ratio_spread(fo / tb, rf, rounds(row, f"torch:{variant}", mode_cfg))))
        fused = _median(row, "torch:fused")
        if r in ("e", "te") and fused:
            vals.append(("torch_fused_time", fo / fused, "lower",
                         ratio_spread(fo / fused, rf, rounds(row, "torch:fused", mode_cfg))))
        for ref, name in (("roofline", "roofline_frac"), ("flat", "flat_frac")):
            t = _median(row, ref)
            if t:
                vals.append((name, t / fo, "higher",
                             ratio_spread(t / fo, rf, rounds(row, ref, mode_cfg), invert=True)))
        t = _median(row, "numpy")
        if t:
            vals.append(("numpy_time", fo / t, "lower",
                         ratio_spread(fo / t, rf, rounds(row, "numpy", mode_cfg))))
    mem = row.get("memory", {})
    # torch's own memory is information only (better=None): --compare does not gate on it.
    for key, name, better in (("fastoptim_traced", "traced_extra", "lower"),
                              ("fastoptim_rss", "rss_extra", "lower"),
                              ("torch_rss", "torch_rss_extra", None)):
        if mem.get(key) is not None:
            vals.append((name, float(mem[key]), better, None))
    row_sizes = row.get("sizes", {})
    if mode == "smoke":
        why = "smoke mode: proves the suite runs, gives no verdicts"
    elif row_sizes != target_sizes(r):
        why = f"{mode} mode runs {fmt_sizes(row_sizes)}; the target is for " \
              f"{fmt_sizes(target_sizes(r))}"
    else:
        why = None
    busy = row_busy(row, cores)
    out = []
    for name, value, better, spread in vals:
        tgt = _target(r, opt, name)
        v = None
        if tgt is not None and why is None:
            if is_memory(name):     # one deterministic measurement: no spread to weigh
                ok = value <= tgt[1] if tgt[0] == "<=" else value >= tgt[1]
                v = "PASS" if ok else "FAIL"
            elif busy is not None:
                v = "unsure"
            else:
                v = verdict(value, spread, tgt)
        out.append({"id": f"{r}/{opt}/t{th}/{name}", "regime": r, "optimizer": opt,
                    "threads": th, "name": name, "value": value, "better": better,
                    "sizes": row_sizes, "spread": spread,
                    "target": list(tgt) if tgt else None, "verdict": v,
                    "passed": {"PASS": True, "FAIL": False}.get(v),
                    "no_verdict": why if tgt is not None and v is None else None,
                    "busy": busy if not is_memory(name) else None})
    return out


def all_figures(data):
    """The figures of every row of a run (any schema), by today's rules."""
    mode = data.get("mode", "full")
    cfg = data.get("config", {}).get("mode")
    m = data.get("machine") or {}
    cores = m.get("cpus_usable") or m.get("cpu_count")
    return [f for row in data["rows"] for f in figures(row, mode, cfg, cores)]


# ---- formatting ----------------------------------------------------------------------------

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


def fmt_count(n):
    """16777216 -> '16M', 32768 -> '32K', 1024 -> '1024' (binary prefixes, as the modes are)."""
    if isinstance(n, int):
        for unit, shift, least in (("M", 20, 1 << 20), ("K", 10, 16 << 10)):
            if n >= least and n % (1 << shift) == 0:
                return f"{n >> shift}{unit}"
    if isinstance(n, list):
        return "-".join(str(x) for x in n)
    return str(n)


def fmt_sizes(sz):
    return ", ".join(f"{k}={fmt_count(v)}" for k, v in sz.items()) or "-"


def title(template, sz):
    """A regime's title with the sizes actually run filled in (``{numel}``, ``{params}``...)."""
    try:
        return template.format(**{k: fmt_count(v) for k, v in sz.items()})
    except (KeyError, IndexError, ValueError):
        return template


def fmt_value(name, v):
    if is_memory(name):
        return fmt_bytes(v)
    if name.endswith("_frac"):
        return f"{v:.0%}"
    return f"{v:.3g}x"


def fmt_spread(name, spread):
    if spread is None:
        return ""
    lo, hi = spread
    if name.endswith("_frac"):
        return f"({lo:.0%}..{hi:.0%})"
    return f"({lo:.3g}..{hi:.3g})"


def fmt_figure(fig):
    s = f"{fig['name']}={fmt_value(fig['name'], fig['value'])}"
    s += fmt_spread(fig["name"], fig.get("spread"))
    if fig["target"] is not None:
        op, bound = fig["target"]
        mark = fig.get("verdict") or "no verdict"
        s += f" [{op}{fmt_value(fig['name'], bound)} {mark}]"
    return s


def load_lines(data):
    """Load average before / during / after, and a warning when the machine was busy."""
    m = data.get("machine", {})
    la = m.get("loadavg") or {}
    cores = m.get("cpus_usable") or m.get("cpu_count") or 1
    parts = []
    for k in ("before", "during", "after"):
        v = la.get(k)
        if isinstance(v, list) and v and k == "during":
            parts.append(f"during {min(v):.2f}..{max(v):.2f}")
        elif isinstance(v, list) and v:
            parts.append(f"{k} {v[0]:.2f}")
    if not parts:
        return []
    lines = [f"load average (1 min) on {cores} cores: " + ", ".join(parts)]
    if la.get("busy"):
        lines.append(f"WARNING: the machine was busy during this run ({la['busy']}, "
                     f"{cores} cores): timings are noisy, 2-thread rows the most; verdicts "
                     "within the noise read 'unsure'")
    return lines


def table(data, regime_titles):
    """The human-readable report: one line per row, times then figures with their marks."""
    lines = [f"fastoptim benchmarks, {data.get('mode', '?')} mode"
             + ("" if data.get("complete", True) else
                f" -- INCOMPLETE run ({len(data['rows'])} rows measured)"),
             f"machine: {describe_machine(data.get('machine'))}"]
    fo_flags = (data.get("flags") or {}).get("fastoptim") or {}
    if "simd" in fo_flags:
        lines.append(f"simd: optimizer loops {fo_flags['simd']}, roofline "
                     f"{fo_flags.get('roofline_simd')}")
    lines += load_lines(data)
    figs_by_row = {}
    for f in data["figures"]:
        figs_by_row.setdefault((f["regime"], f["optimizer"], f["threads"]), []).append(f)
    regimes = list(dict.fromkeys(row["regime"] for row in data["rows"]))
    head = (f"{'optimizer':9} {'thr':>3} {'fastoptim':>10} {'torch best':>19} {'numpy':>9} "
            f"{'yardstick':>10}  figures (IQR over rounds)")
    for reg in regimes:
        lines.append("")
        sz = next(r.get("sizes", {}) for r in data["rows"] if r["regime"] == reg)
        lines.append(f"({reg}) {title(regime_titles.get(reg, ''), sz)}  [{fmt_sizes(sz)}]")
        memory = any("memory" in r for r in data["rows"] if r["regime"] == reg)
        lines.append(head if not memory else
                     f"{'optimizer':9} {'thr':>3} {'live arrays':>11}  figures")
        for row in data["rows"]:
            if row["regime"] != reg:
                continue
            figs = figs_by_row.get((reg, row["optimizer"], row["threads"]), [])
            shown = "  ".join(fmt_figure(f) for f in figs)
            if "memory" in row:
                live = fmt_bytes(row["memory"].get("live_bytes"))
                lines.append(f"{row['optimizer']:9} {row['threads']:>3} {live:>11}  {shown}")
                continue
            variant, tb = torch_best(row)
            torch_s = f"{fmt_ns(tb)} ({variant})" if tb else "-"
            yard = _median(row, "roofline") or _median(row, "flat")
            lines.append(f"{row['optimizer']:9} {row['threads']:>3} "
                         f"{fmt_ns(_median(row, 'fastoptim')):>10} {torch_s:>19} "
                         f"{fmt_ns(_median(row, 'numpy')):>9} {fmt_ns(yard):>10}  {shown}")
    lines.append("")
    lines += verdict_summary(data)
    lines.append("yardstick: roofline (a) or flat buffer (b, c).  figures:")
    for name, text in LEGEND.items():
        lines.append(f"  {name:17} {text}")
    return "\n".join(lines)


def verdict_summary(data):
    targeted = [f for f in data["figures"] if f["target"] is not None]
    judged = [f for f in targeted if f.get("verdict")]
    if data.get("mode") == "smoke":
        return [f"smoke mode: the suite ran ({len(data['rows'])} rows); no target verdicts "
                "(its sizes are not the targets')"]
    out = []
    counts = {k: sum(f["verdict"] == k for f in judged) for k in ("PASS", "FAIL", "unsure")}
    out.append(f"targets: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['unsure']} "
               f"unsure (of {len(judged)} with a verdict)")
    for k in ("FAIL", "unsure"):
        ids = [f["id"] for f in judged if f["verdict"] == k]
        if ids:
            out.append(f"  {k}: {', '.join(ids)}")
    busy = [f for f in judged if f.get("busy") is not None]
    if busy:
        out.append(f"  {len(busy)} of them timed while the machine was busy (load up to "
                   f"{max(f['busy'] for f in busy):.2f}): unsure whatever their spread")
    skipped = [f for f in targeted if not f.get("verdict")]
    if skipped:
        regs = sorted({f["regime"] for f in skipped})
        out.append(f"  no verdict for {len(skipped)} targeted figure(s) of regime(s) "
                   f"{', '.join(regs)}: {skipped[0]['no_verdict']}")
    return out


def describe_machine(m):
    from machine import describe
    if not m or not m.get("fingerprint"):
        return f"unknown (not recorded by this run's schema; cpu {(m or {}).get('cpu', '?')})"
    return describe(m)


# ---- comparison with a baseline ------------------------------------------------------------

class Comparison:
    """What ``compare`` found: ``header`` (what differs between the runs, said first),
    ``compared`` (count), ``skipped`` ({reason: count}), ``regressions`` and ``unsure``
    ((id, old, new, change) tuples), ``refused`` (nothing could be compared)."""

    def __init__(self):
        self.header, self.skipped = [], {}
        self.regressions, self.unsure = [], []
        self.compared = 0

    @property
    def refused(self):
        return self.compared == 0

    def skip(self, reason):
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def same_machine(a, b):
    """True, False, or None when either run did not record a fingerprint (machine unknown)."""
    fa, fb = (a or {}).get("fingerprint"), (b or {}).get("fingerprint")
    if not fa or not fb:
        return None
    return fa == fb


def comparability(current, baseline, compare_all=False):
    """The header lines of a comparison (what differs and what will be compared), and the
    flags deciding which figures are compared: (lines, machine_ok, mode_ok)."""
    lines = []
    mc, mb = current.get("machine"), baseline.get("machine")
    machine_ok = same_machine(mc, mb)
    if machine_ok is None:
        lines.append(f"baseline machine UNKNOWN (the baseline, schema {baseline.get('schema')}, "
                     f"did not record its machine's caches: cpu "
                     f"{(mb or {}).get('cpu', '?')!r}); this run: {describe_machine(mc)}")
    elif not machine_ok:
        lines.append("DIFFERENT MACHINES: baseline " + describe_machine(mb) + "; this run "
                     + describe_machine(mc))
    cfg_c = current.get("config", {}).get("mode")
    cfg_b = baseline.get("config", {}).get("mode")
    mode_ok = current.get("mode") == baseline.get("mode") and cfg_c == cfg_b
    if not mode_ok:
        lines.append(f"DIFFERENT MODES: baseline {baseline.get('mode')!r}, this run "
                     f"{current.get('mode')!r} (sizes, repeats and rounds differ)")
    if compare_all and (not machine_ok or not mode_ok):
        lines.append("--compare-all: comparing every figure anyway; timing ratios need not "
                     "carry over between machines or modes")
    elif not machine_ok:
        lines.append("comparing only machine-independent figures (bytes allocated by a step); "
                     "timing ratios depend on caches, bandwidth and load (--compare-all "
                     "compares them anyway)")
    elif not mode_ok:
        lines.append("comparing only memory figures at equal sizes; timing ratios of another "
                     "mode were measured differently (--compare-all compares them anyway)")
    return lines, machine_ok, mode_ok


def compare(current, baseline, threshold, compare_all=False):
    """Figures of ``current`` worse than the same figure of ``baseline`` by more than
    ``threshold`` (relative), among the figures that can be compared (see the module
    docstring).  Returns a ``Comparison``."""
    res = Comparison()
    res.header, machine_ok, mode_ok = comparability(current, baseline, compare_all)
    iso_c = set(current.get("config", {}).get("isolate") or ())
    iso_b = set(baseline.get("config", {}).get("isolate") or ())
    old = {f["id"]: f for f in baseline["figures"]}
    for f in current["figures"]:
        o = old.get(f["id"])
        if o is None or o["value"] is None or f["value"] is None or f["better"] is None:
            continue
        mem = is_memory(f["name"])
        if not compare_all:
            if f.get("sizes") != o.get("sizes"):
                res.skip("sizes differ")
                continue
            if not mem and not machine_ok:
                res.skip("timing figure, machine differs or unknown")
                continue
            if not mem and not mode_ok:
                res.skip("timing figure, mode differs")
                continue
            if not mem and ((f["regime"] in iso_c) != (f["regime"] in iso_b)):
                res.skip("timing figure, timed by another method (--isolate)")
                continue
        res.compared += 1
        new_v, old_v = f["value"], o["value"]
        if mem:
            slack = ALLOC_SLACK["rss" if "rss" in f["name"] else "traced"]
            worse = new_v > old_v * (1 + threshold) + slack
            change = new_v - old_v
        elif f["better"] == "higher":
            worse = new_v < old_v * (1 - threshold)
            change = new_v / old_v - 1 if old_v else math.inf
        else:
            worse = new_v > old_v * (1 + threshold)
            change = new_v / old_v - 1 if old_v else math.inf
        if not worse:
            continue
        sn, so = f.get("spread"), o.get("spread")
        overlap = sn is not None and so is not None and sn[0] <= so[1] and so[0] <= sn[1]
        loaded = f.get("busy") is not None or o.get("busy") is not None
        (res.unsure if overlap or loaded else res.regressions).append(
            (f["id"], old_v, new_v, change))
    return res


def format_regression(fig_id, old, new, change, mark="REGRESSION"):
    if fig_id.endswith("_extra"):
        return f"  {mark} {fig_id}: {fmt_bytes(old)} -> {fmt_bytes(new)}"
    return f"  {mark} {fig_id}: {old:.4g} -> {new:.4g} ({change:+.1%})"


# ---- files ---------------------------------------------------------------------------------

def write_json(data, path):
    """Write atomically (a temporary file renamed over ``path``): a run killed at any moment
    leaves the previous complete file, never half of one."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path):
    """A saved run, with its figures recomputed by today's rules (spreads, verdicts)."""
    with open(path) as f:
        data = json.load(f)
    data["figures"] = all_figures(data)
    return data
