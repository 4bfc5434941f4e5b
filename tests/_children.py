"""Child Python processes that run a script against the installed fastoptim and print JSON.

Why it exists: the tests that compare whole runs under different process-level settings (the SIMD
variant picked at load: test_simd_dispatch*.py; the thread count and hash seed:
test_determinism.py) each start children the same way and read them back the same way.  A child
must import the fastoptim under test, never the source tree of the repository it starts in
(``-P`` drops the current directory from its path; conftest explains), and ``ROOT`` puts the
directory holding the tested package first on its path.
"""
import json
import os
import subprocess
import sys

import fastoptim

PY = [sys.executable] + (["-P"] if sys.version_info >= (3, 11) else [])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastoptim.__file__)))


def start(code, *args, unset=(), **env):
    """Start ``python -c code *args`` with os.environ, minus ``unset``, plus ``env``."""
    child_env = {k: v for k, v in os.environ.items() if k not in unset}
    child_env.update(env)
    child_env["PYTHONPATH"] = ROOT + os.pathsep + child_env.get("PYTHONPATH", "")
    return subprocess.Popen([*PY, "-c", code, *args], env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def collect(procs, timeout=600):
    """{name: the JSON each child printed}, after asserting that every child succeeded."""
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr
        out[name] = json.loads(stdout)
    return out
