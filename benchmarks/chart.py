"""The PNG chart of a run: one panel per (regime, figure), bars per optimizer and thread count.

Why it exists: a table of 166 figures is for machines; people read the picture.  So every panel
says what it shows at the sizes actually run, and whether lower or higher is better; targets
are dashed marks, each bar's whisker is the figure's spread (IQR over rounds), and the memory
panel (regime f) shows the bytes a step allocates next to its targets.  The title states the
mode (a smoke run's tiny sizes give no verdicts, and says so), the machine and the commit.
matplotlib is an optional extra (``pip install fastoptim[bench]``): without it ``draw`` returns
False and the run still writes its JSON.
"""

import textwrap

from report import LEGEND, fmt_bytes, fmt_sizes, title

# (regime, figure, log scale): the order of the panels; other figures are not drawn.
PANELS = [
    ("a", "roofline_frac", False), ("a", "torch_time", True),
    ("b", "flat_frac", False), ("c", "flat_frac", False),
    ("b", "torch_time", True), ("c", "torch_time", True),
    ("d", "torch_time", True), ("e", "torch_time", True),
]
SHORT = {"roofline_frac": "fraction of the roofline", "flat_frac": "fraction of flat speed",
         "torch_time": "time / torch's fastest"}
BETTER = {"higher": "higher is better", "lower": "lower is better"}
MEMORY = [("traced_extra", "traced"), ("rss_extra", "RSS"), ("torch_rss_extra", "torch RSS")]


def _sizes_of(data, regime):
    return next((r.get("sizes", {}) for r in data["rows"] if r["regime"] == regime), {})


def _panel(ax, sel, threads, log, width):
    opts = list(dict.fromkeys(f["optimizer"] for f in sel))
    for k, th in enumerate(threads):
        xs, ys, lo, hi = [], [], [], []
        for i, opt in enumerate(opts):
            for f in sel:
                if f["optimizer"] == opt and f["threads"] == th:
                    xs.append(i + (k - (len(threads) - 1) / 2) * width)
                    ys.append(f["value"])
                    s = f.get("spread") or [f["value"], f["value"]]
                    lo.append(f["value"] - s[0])
                    hi.append(s[1] - f["value"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, ecolor="0.3",
               label=f"{th} thread{'s' if th > 1 else ''}")
    for i, opt in enumerate(opts):
        fs = [f for f in sel if f["optimizer"] == opt and f["target"]]
        if fs:   # grey and dotted where the run's sizes give no verdict (smoke, quick's (a))
            judged = any(f.get("verdict") for f in fs)
            ax.hlines(fs[0]["target"][1], i - 0.45, i + 0.45, colors="k" if judged else "0.6",
                      linestyles="dashed" if judged else "dotted")
    if log:
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(opts)))
    ax.set_xticklabels(opts, rotation=30, fontsize=8)


def _memory_panel(ax, figs):
    """Regime (f) at its lowest thread count: bytes per step, log scale (0 B drawn at 1 B)."""
    th = min(f["threads"] for f in figs)
    opts = list(dict.fromkeys(f["optimizer"] for f in figs))
    width = 0.8 / len(MEMORY)
    for k, (name, label) in enumerate(MEMORY):
        xs, ys = [], []
        for i, opt in enumerate(opts):
            for f in figs:
                if (f["optimizer"], f["threads"], f["name"]) == (opt, th, name):
                    xs.append(i + (k - (len(MEMORY) - 1) / 2) * width)
                    ys.append(max(f["value"], 1.0))
        if xs:
            ax.bar(xs, ys, width, label=label)
    for name, label in MEMORY[:2]:
        tgt = next((f["target"] for f in figs if f["name"] == name and f["target"]), None)
        if tgt:
            ax.axhline(tgt[1], color="k", linestyle="dashed", linewidth=0.8)
            ax.text(len(opts) - 0.5, tgt[1], f" {label} target {fmt_bytes(tgt[1])}",
                    fontsize=6, va="bottom", ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("bytes (0 shown as 1)", fontsize=7)
    ax.set_xticks(range(len(opts)))
    ax.set_xticklabels(opts, rotation=30, fontsize=8)
    ax.legend(fontsize=6, loc="upper left")
    return th


def draw(data, path, regime_titles=None):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    regime_titles = regime_titles or {}
    figs = data["figures"]
    panels = [p for p in PANELS if any(f["regime"] == p[0] and f["name"] == p[1] for f in figs)]
    mem = [f for f in figs if f["regime"] == "f" and f["name"] in dict(MEMORY)]
    n = len(panels) + (1 if mem else 0)
    if n == 0:
        return False
    threads = sorted({f["threads"] for f in figs})
    ncol = min(3, n)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.5 * nrow), squeeze=False)
    width = 0.8 / len(threads)
    for ax, (regime, name, log) in zip(axes.flat, panels):
        sel = [f for f in figs if f["regime"] == regime and f["name"] == name]
        _panel(ax, sel, threads, log, width)
        sz = _sizes_of(data, regime)
        head = title(regime_titles.get(regime, ""), sz) or fmt_sizes(sz)
        ax.set_title(textwrap.fill(f"({regime}) {head}", 60) + "\n"
                     f"{SHORT.get(name, LEGEND.get(name, name))}: {BETTER[sel[0]['better']]}",
                     fontsize=8)
    if mem:
        ax = axes.flat[len(panels)]
        th = _memory_panel(ax, mem)
        sz = _sizes_of(data, "f")
        ax.set_title(f"(f) extra memory of one step, {fmt_sizes(sz)}, {th} thread(s)\n"
                     "bytes above the live arrays: lower is better", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if panels:
        axes.flat[0].legend(fontsize=7)
    m = data.get("machine", {})
    mode = data.get("mode")
    what = {"smoke": "SMOKE run: tiny sizes, one round, no verdicts",
            "quick": "quick run: fewer rounds, smaller (a) and (f)",
            "full": "full run"}.get(mode, f"{mode} run")
    if not data.get("complete", True):
        what += f", INCOMPLETE ({len(data['rows'])} rows)"
    commit = (data.get("versions", {}).get("fastoptim_commit") or "?")[:12]
    fig.suptitle(f"fastoptim benchmarks: {what}; commit {commit}; {m.get('cpu', '?')}, "
                 f"{m.get('cpu_count', '?')} cores"
                 + ("; MACHINE BUSY" if (m.get("loadavg") or {}).get("busy") else "")
                 + "\ndashed: target (dotted: no verdict at these sizes); whiskers: IQR over "
                 "rounds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
