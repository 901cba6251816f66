"""Property-based tests (Hypothesis) and the profiles every Hypothesis test runs under.

Profiles, chosen by ``HYPOTHESIS_PROFILE`` (default: ``ci`` when ``CI`` is set,
as CI's run sets it, else ``dev``):

- ``ci``: ``derandomize=True``. The examples are derived from each test's name,
  so a CI run is reproducible: a red build stays red on a re-run and the same
  inputs can be replayed locally with ``HYPOTHESIS_PROFILE=ci``.
- ``dev``: random examples, so local runs keep exploring new inputs; a failure
  found is kept in Hypothesis's example database (``.hypothesis/``, which
  Hypothesis git-ignores itself) and replayed first on the next run.
- ``deep``: ten times the examples of each test, for a long exploration by hand
  (``HYPOTHESIS_PROFILE=deep pytest tests/property tests/fuzz``).

Every failure also prints its ``@reproduce_failure`` blob.

Each test sets its own bounds (``max_examples``, ``stateful_step_count``) with
``@settings``; the profile only decides randomness and the deadline (none: a
database round trip on a loaded CI machine is not a performance bug). The
profile is loaded on import, and tests/fuzz imports this package first, so every
Hypothesis test in the suite is built on it whatever the collection order.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "print_blob": True,
    # Examples that touch the test database are slow by Hypothesis's standards.
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

# Derandomized examples are the same every run: nothing to remember between runs.
settings.register_profile("ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.register_profile("deep", max_examples=1000, **_COMMON)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def scaled(examples: int) -> int:
    """``examples`` under ci/dev, ten times as many under the ``deep`` profile."""
    return examples * 10 if PROFILE == "deep" else examples
