"""fastoptim.distributed: the MPI scripts of tests/mpi/ under ``mpiexec -n 2`` and ``-n 3``,
and the parts that need no MPI (the ImportError without mpi4py, the partition rule).

The MPI cases run in subprocesses (``mpiexec -n N python -m mpi4py tests/mpi/<script>``) with a
timeout, so a deadlock fails the test instead of hanging the suite; ``-m mpi4py`` makes an
uncaught exception on any rank abort the job. They are skipped when mpi4py or mpiexec is
missing (install the extra: ``pip install "fastoptim[distributed]"``).
"""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import fastoptim as fo
from fastoptim._sharding import partition_parameters

# a `python -c` child must not import the source tree of the repository it starts in (conftest)
_PY = [sys.executable] + (["-P"] if sys.version_info >= (3, 11) else [])

MPI_DIR = Path(__file__).parent / "mpi"
TIMEOUT = 240  # seconds per launch: minutes more than the slowest run seen on a loaded machine


def _mpiexec():
    # the one next to this python first (the mpich wheel installs it into the venv's bin)
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and _mpiexec() is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec "
                               '(pip install "fastoptim[distributed]")')


def _launch(script, n):
    env = dict(os.environ)
    # the scripts import the fastoptim this test imported (an in-place build or an install)
    root = str(Path(fo.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, str(MPI_DIR)] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["OMP_NUM_THREADS"] = "1"       # N ranks on a small machine: no thread oversubscription
    env["OPENBLAS_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "mpi4py", str(MPI_DIR / script)]
    if n is not None:   # None: one process, no mpiexec (MPI's singleton mode)
        cmd = [_mpiexec(), "-n", str(n)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=str(MPI_DIR), start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # mpiexec and every rank: the group we started
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {TIMEOUT} s (deadlock?):\n"
                    + out[-4000:])
    return proc.returncode, out


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("script", ["data_parallel.py", "zero.py", "errors.py"])
def test_mpi_script(script, n):
    rc, out = _launch(script, n)
    assert rc == 0, f"mpiexec -n {n} {script} exited with {rc}:\n{out[-4000:]}"
    name = script[:-3]
    ranks = sorted(int(r) for r in re.findall(rf"OK {name} rank (\d+)", out))
    assert ranks == list(range(n)), out[-4000:]


@needs_mpi
def test_one_process_without_mpiexec():
    rc, out = _launch("single.py", None)
    assert rc == 0, out[-4000:]
    assert "OK single rank 0" in out, out[-4000:]


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_uncaught_error_outside_step_aborts_the_job(n):
    rc, out = _launch("abort.py", n)
    assert rc != 0, out[-4000:]
    assert "rank failed outside the optimizer" in out
    assert "UNREACHABLE" not in out


# ---------------------------------------------------------------------------- without MPI

def _run_python(code):
    env = dict(os.environ)
    root = str(Path(fo.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]]
                                                  if env.get("PYTHONPATH") else []))
    return subprocess.run([*_PY, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


def test_import_fastoptim_does_not_import_mpi4py():
    r = _run_python("import sys, fastoptim, fastoptim.optim, fastoptim.nn\n"
                    "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n"
                    "assert 'fastoptim.distributed' not in sys.modules\nprint('clean')")
    assert r.returncode == 0 and "clean" in r.stdout, r.stderr


def test_import_distributed_without_mpi4py_names_the_extra():
    # sys.modules[name] = None makes `import name` raise ImportError, as if not installed
    r = _run_python("import sys\nsys.modules['mpi4py'] = None\n"
                    "try:\n    import fastoptim.distributed\n"
                    "except ImportError as e:\n    print('ERR', e)\n")
    assert r.returncode == 0, r.stderr
    assert 'pip install "fastoptim[distributed]"' in r.stdout, r.stdout


class _P:
    """A stand-in param: partition_parameters only asks for numel()."""

    def __init__(self, n, name):
        self.n, self.name = n, name

    def numel(self):
        return self.n

    def __repr__(self):
        return self.name


def _names(per_rank):
    return [[[p.name for p in g["params"]] for g in groups] for groups in per_rank]


def test_partition_sorted_greedy_as_torch():
    a, b, c, d, e = _P(10, "a"), _P(7, "b"), _P(7, "c"), _P(3, "d"), _P(1, "e")
    groups = [{"params": [d, a, b, e, c], "lr": 0.1}]
    # sorted by size (b before c: stable), each to the currently smallest rank (lowest wins)
    # 2 ranks: a->0 (10), b->1 (7), c->1 (14), d->0 (13), e->0 (14)
    assert _names(partition_parameters(groups, 2)) == [[["a", "d", "e"]], [["b", "c"]]]
    # 3 ranks: a->0, b->1, c->2, d->1 (10), e->2 (8)
    assert _names(partition_parameters(groups, 3)) == [[["a"]], [["b", "d"]], [["c", "e"]]]
    per_rank = partition_parameters(groups, 1)
    assert _names(per_rank) == [[["a", "b", "c", "d", "e"]]]
    assert per_rank[0][0]["lr"] == 0.1 and per_rank[0][0] is not groups[0]
    assert groups[0]["params"] == [d, a, b, e, c]   # the caller's group is untouched


def test_partition_sizes_carry_over_groups_and_empty_ranks():
    a, b, c = _P(5, "a"), _P(4, "b"), _P(4, "c")
    groups = [{"params": [a], "lr": 1}, {"params": [b, c], "lr": 2}]
    per_rank = partition_parameters(groups, 3)
    # one group per global group on every rank, possibly empty; sizes carry over
    assert _names(per_rank) == [[["a"], []], [[], ["b"]], [[], ["c"]]]
    assert [g["lr"] for g in per_rank[2]] == [1, 2]
    assert _names(partition_parameters([{"params": [a]}], 3)) == [[["a"]], [[]], [[]]]
    # adding a group never moves an earlier param (torch relies on it in add_param_group)
    before = partition_parameters(groups, 2)
    after = partition_parameters(groups + [{"params": [_P(100, "z")]}], 2)
    assert _names(after)[0][:2] == _names(before)[0] and _names(after)[1][:2] == _names(before)[1]


def test_partition_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    zro = pytest.importorskip("torch.distributed.optim.zero_redundancy_optimizer")
    sizes = [13, 7, 7, 200, 1, 64, 64, 3, 31, 2]
    params = [torch.nn.Parameter(torch.zeros(n)) for n in sizes]
    groups = [{"params": params[:6]}, {"params": params[6:]}]
    for world in (2, 3, 4):
        z = zro.ZeroRedundancyOptimizer.__new__(zro.ZeroRedundancyOptimizer)
        z.param_groups, z.world_size = groups, world
        z._partition_parameters_cache = []
        pos = {id(p): i for i, p in enumerate(params)}
        want = [[[pos[id(p)] for p in g["params"]] for g in gs]
                for gs in zro.ZeroRedundancyOptimizer._partition_parameters(z)]
        fake = [_P(n, str(i)) for i, n in enumerate(sizes)]
        got = partition_parameters([{"params": fake[:6]}, {"params": fake[6:]}], world)
        assert [[[int(p.name) for p in g["params"]] for g in gs] for gs in got] == want


def test_partition_rejects_a_bad_world_size():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="world_size must be a positive int"):
            partition_parameters([{"params": []}], bad)
