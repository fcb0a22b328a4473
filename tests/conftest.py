"""Every test runs with NumPy floating-point problems raised as errors.

Overflow, division by zero and invalid operations (NaN) raise FloatingPointError;
underflow to zero is expected (exp(-1000) == 0) and stays quiet.
"""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def numpy_errors_raise():
    with np.errstate(all="raise", under="ignore"):
        yield
