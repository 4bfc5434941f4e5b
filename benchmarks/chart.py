"""The PNG chart of a run: one panel per (regime, figure), bars per optimizer and thread count,
targets as dashed marks.  matplotlib is an optional extra (``pip install fastoptim[bench]``):
without it ``draw`` returns False and the run still writes its JSON."""

PANELS = [
    ("a", "roofline_frac", "(a) 16M param: fraction of the roofline", False),
    ("a", "torch_time", "(a) 16M param: time / torch's fastest", True),
    ("b", "flat_frac", "(b) 1000 params, 1 group: fraction of flat speed", False),
    ("c", "flat_frac", "(c) 1000 groups: fraction of flat speed", False),
    ("b", "torch_time", "(b) 1000 params, 1 group: time / torch", True),
    ("c", "torch_time", "(c) 1000 groups: time / torch", True),
    ("d", "torch_time", "(d) Linear(10,1) loop: time / torch", True),
    ("e", "torch_time", "(e) MLP step: time / torch", True),
]


def draw(data, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figs = data["figures"]
    panels = [p for p in PANELS if any(f["regime"] == p[0] and f["name"] == p[1] for f in figs)]
    if not panels:
        return False
    threads = sorted({f["threads"] for f in figs})
    ncol = min(4, len(panels))
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
    width = 0.8 / len(threads)
    for ax, (regime, name, title, log) in zip(axes.flat, panels):
        sel = [f for f in figs if f["regime"] == regime and f["name"] == name]
        opts = list(dict.fromkeys(f["optimizer"] for f in sel))
        for k, th in enumerate(threads):
            xs, ys = [], []
            for i, opt in enumerate(opts):
                for f in sel:
                    if f["optimizer"] == opt and f["threads"] == th:
                        xs.append(i + (k - (len(threads) - 1) / 2) * width)
                        ys.append(f["value"])
            ax.bar(xs, ys, width, label=f"{th} thread{'s' if th > 1 else ''}")
        for i, opt in enumerate(opts):
            tgt = next((f["target"] for f in sel if f["optimizer"] == opt and f["target"]), None)
            if tgt:
                ax.hlines(tgt[1], i - 0.45, i + 0.45, colors="k", linestyles="dashed")
        if log:
            ax.set_yscale("log")
            ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(opts)))
        ax.set_xticklabels(opts, rotation=30, fontsize=8)
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    m = data.get("machine", {})
    fig.suptitle(f"fastoptim benchmarks ({data.get('mode')}) on {m.get('cpu', '?')}; dashed: "
                 "target", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
