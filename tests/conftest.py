"""Shared pytest set-up: the hypothesis profiles of the property-based tests.

Why here: a profile must be registered before any ``@given`` test runs, and the property tests
also run in child pytest processes (``tests/test_properties.py`` runs its risky cases there, so
that a crash fails one test instead of killing the suite), which load this file too.

* ``ci`` (the default): a fixed, derandomized budget, so a CI run is reproducible and its cost
  bounded (the whole property file stays well under a minute of CPU).
* ``long``: ``HYPOTHESIS_PROFILE=long pytest tests/test_properties.py``, 40x the examples of
  ``ci``, random seeds, for a session of hunting (tens of minutes).
* ``dev``: the ``ci`` budget without shrinking, for a quick look at whether anything fails.
"""

import os
import tempfile

try:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # pragma: no cover - hypothesis is in the `test` extra
    settings = None

if settings is not None:
    # hypothesis' example database and failure patches go to the temp dir, not the source tree
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "fastoptim-hypothesis"))
    _common = {"deadline": None, "print_blob": True,
               "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
    settings.register_profile("ci", max_examples=100, stateful_step_count=30, derandomize=True,
                              **_common)
    settings.register_profile("long", max_examples=4000, stateful_step_count=60, **_common)
    # `dev`: the ci budget without shrinking, for a quick look at whether something fails
    settings.register_profile("dev", max_examples=40, stateful_step_count=30,
                              phases=[Phase.explicit, Phase.reuse, Phase.generate], **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
