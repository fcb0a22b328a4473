"""Every test runs with NumPy floating-point problems raised as errors (and the Hypothesis profile).

Overflow, division by zero and invalid operations (NaN) raise FloatingPointError;
underflow to zero is expected (exp(-1000) == 0) and stays quiet.
"""

import os

import numpy as np
import pytest
from hypothesis import settings

# CI runs the property and fuzz tests on a fixed set of examples (same every run, so a red CI is
# reproducible); elsewhere Hypothesis explores new random examples each run.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def numpy_errors_raise():
    with np.errstate(all="raise", under="ignore"):
        yield
