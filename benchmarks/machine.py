"""Machine facts recorded with every run: what a reader needs to tell machine from change.

Why it exists: the same commit met 80/80 targets on one machine and 61/80 on another (a larger
L3, other work running), and nothing in the JSON could say why.  Every run now records

- the CPU: model, the flags ``/proc/cpuinfo`` lists (and the SIMD ones among them), cores usable;
- the caches: level, type, size and sharing of each, from sysfs
  (``/sys/devices/system/cpu/cpu0/cache/index*``), with ``lscpu`` as the fallback;
- memory bandwidth from a short STREAM-like probe (NumPy copy and add over arrays several times
  the last-level cache, one thread, best of a few passes: about a second);
- the load average before, during (per row) and after the run, judged against the cores.

``fingerprint`` is what "the same machine" means for ``--compare``: CPU model, core count,
cache sizes and memory size -- not the hostname (containers rename themselves) and not the
bandwidth (a measurement, so noisy; it is shown beside the fingerprint, never part of it).
A run saved before these facts existed has no fingerprint: its machine is *unknown*.
"""

import os
import platform
import subprocess
import time

MIB = 1 << 20
SIMD_FLAGS = ("sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
              "avx512_bf16", "amx_tile", "neon", "asimd", "sve")
BUSY_FRACTION = 0.5   # load beyond the run's own threads, per usable core, that counts as busy


def _cpuinfo():
    """(model name, flags list) from /proc/cpuinfo (first processor)."""
    model, flags = None, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = val.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = val.split()
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), sorted(flags)


def _size_bytes(text):
    """'32K' / '1024K' / '32768K' / '32 MiB' -> bytes."""
    t = text.strip().replace("iB", "").replace("B", "").replace(" ", "")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if t and t[-1].upper() in scale:
        return int(float(t[:-1]) * scale[t[-1].upper()])
    return int(t)


def _caches_sysfs():
    base = "/sys/devices/system/cpu/cpu0/cache"
    out = []
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("index"))
    except OSError:
        return []
    for name in names:
        d = os.path.join(base, name)
        try:
            def read(field, d=d):
                with open(os.path.join(d, field)) as f:
                    return f.read().strip()
            entry = {"level": int(read("level")), "type": read("type"),
                     "size_bytes": _size_bytes(read("size"))}
            try:
                entry["shared_cpus"] = read("shared_cpu_list")
            except OSError:
                pass
            out.append(entry)
        except (OSError, ValueError):
            continue
    return out


def _caches_lscpu():
    """lscpu's 'L1d cache: 64 KiB (2 instances)' lines: totals over instances, so per-instance
    sizes are the total divided by the instance count."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                              check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    out = []
    kinds = {"L1d": (1, "Data"), "L1i": (1, "Instruction"), "L2": (2, "Unified"),
             "L3": (3, "Unified")}
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key = key.replace(" cache", "").strip()
        if key not in kinds:
            continue
        parts = val.strip().split("(")
        try:
            total = _size_bytes(parts[0])
            inst = int(parts[1].split()[0]) if len(parts) > 1 else 1
        except (ValueError, IndexError):
            continue
        level, typ = kinds[key]
        out.append({"level": level, "type": typ, "size_bytes": total // max(inst, 1),
                    "instances": inst})
    return out


def caches():
    """Cache levels of cpu0: ``[{level, type, size_bytes, ...}]`` (empty when unknown)."""
    return _caches_sysfs() or _caches_lscpu()


def cache_summary(cs):
    """``{"L1d": bytes, "L1i": ..., "L2": ..., "L3": ...}`` from ``caches()``."""
    out = {}
    for c in cs:
        name = f"L{c['level']}" + {"Data": "d", "Instruction": "i"}.get(c["type"], "")
        out[name] = c["size_bytes"]
    return out


def last_level_bytes(cs):
    levels = [c for c in cs if c["type"] in ("Unified", "Data")]
    return max(levels, key=lambda c: c["level"])["size_bytes"] if levels else None


def bandwidth(seconds=1.0, llc_bytes=None):
    """A STREAM-like probe: NumPy ``copyto`` (reads a, writes b) and ``add`` (reads a, b, writes
    c) over float64 arrays of twice the last-level cache (64-256 MiB each), one thread, best of
    the passes that fit in ``seconds``.  GB/s counts the bytes the kernel reads and writes (no
    write-allocate traffic), as STREAM does."""
    import numpy as np

    nbytes = min(max(2 * (llc_bytes or 32 * MIB), 64 * MIB), 256 * MIB)
    n = nbytes // 8
    a = np.ones(n)
    b = np.zeros(n)
    c = np.zeros(n)          # first touch here, not in the timed passes
    best = {"copy": None, "add": None}
    passes = 0
    clock = time.perf_counter
    t_end = clock() + seconds
    while passes < 3 or clock() < t_end:
        t0 = clock()
        np.copyto(b, a)
        t1 = clock()
        np.add(a, b, out=c)
        t2 = clock()
        for k, dt, moved in (("copy", t1 - t0, 2 * nbytes), ("add", t2 - t1, 3 * nbytes)):
            gbs = moved / dt / 1e9
            best[k] = gbs if best[k] is None else max(best[k], gbs)
        passes += 1
        if passes >= 50:
            break
    return {"copy_gbs": round(best["copy"], 2), "add_gbs": round(best["add"], 2),
            "array_bytes": nbytes, "passes": passes, "threads": 1,
            "method": "numpy copyto/add, float64, best pass"}


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def usable_cores():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def busy(load1, cores, own_threads=0):
    """True when the 1-minute load average, less the threads this run itself keeps busy,
    exceeds ``BUSY_FRACTION`` of the usable cores."""
    if load1 is None:
        return False
    return load1 - own_threads > BUSY_FRACTION * cores


def facts(probe_s=1.0):
    """Everything above, as the JSON's ``machine`` dict (the load is added by the caller)."""
    model, flags = _cpuinfo()
    cs = caches()
    m = {"cpu": model, "machine": platform.machine(), "os": platform.platform(),
         "hostname": platform.node(), "cpu_count": os.cpu_count(), "cpus_usable": usable_cores(),
         "cpu_flags": flags, "simd": [f for f in SIMD_FLAGS if f in flags],
         "caches": cs, "cache_sizes": cache_summary(cs)}
    try:
        m["memory_bytes"] = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        m["memory_bytes"] = None
    m["fingerprint"] = fingerprint(m)
    fp = m["fingerprint"]
    m["id"] = "|".join([str(fp["cpu"]), str(fp["cpu_count"]),
                        *(f"{k}={v}" for k, v in sorted(fp["cache_sizes"].items())),
                        f"{fp['memory_gib']}GiB"])
    m["bandwidth"] = bandwidth(probe_s, last_level_bytes(cs)) if probe_s > 0 else None
    return m


def fingerprint(m):
    """The identity ``--compare`` checks.  Memory is rounded to GiB: the same kind of VM reports
    a few KiB more or less from one boot to the next."""
    mem = m.get("memory_bytes")
    return {"cpu": m.get("cpu"), "cpu_count": m.get("cpu_count"),
            "cache_sizes": m.get("cache_sizes"),
            "memory_gib": None if mem is None else round(mem / (1 << 30))}


def describe(m):
    """One line: model, cores, L2/L3, bandwidth (or what is unknown)."""
    if not m:
        return "machine unknown"
    cs = m.get("cache_sizes") or {}
    parts = [str(m.get("cpu", "?")), f"{m.get('cpu_count', '?')} cores"]
    for k in ("L2", "L3"):
        if k in cs:
            parts.append(f"{k} {cs[k] / MIB:.3g} MiB")
    if not cs:
        parts.append("caches not recorded")
    bw = m.get("bandwidth")
    if bw:
        parts.append(f"copy {bw['copy_gbs']:.3g} GB/s")
    return ", ".join(parts)
