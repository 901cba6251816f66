"""API fuzzing: Schemathesis against the project's own OpenAPI schema.

Imports tests.property first: its Hypothesis profiles (deterministic under CI)
must be loaded before any Hypothesis test here is built.
"""

import tests.property  # noqa: F401 - loads the Hypothesis profile
