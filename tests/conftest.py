"""Every test runs with NumPy floating-point problems raised as errors (and the Hypothesis profile).

Overflow, division by zero and invalid operations (NaN) raise FloatingPointError;
underflow to zero is expected (exp(-1000) == 0) and stays quiet.
"""

import os

# scikit-learn runs its array API estimator checks only where SciPy was imported with its array API support on
# (otherwise they are skipped): set before anything imports SciPy, as scikit-learn's own test suite does
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# CI runs the property and fuzz tests on a fixed set of examples (same every run, so a red CI is
# reproducible); elsewhere Hypothesis explores new random examples each run.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def numpy_errors_raise():
    with np.errstate(all="raise", under="ignore"):
        yield
