"""products.matmul: the same numbers as np.matmul, whichever NumPy entry point it takes."""

import numpy as np
import pytest

from deltaprop.products import SMALL, matmul

SHAPES = [(32, 64, 64), (3, 5, 2), (128, 256, 128)]  # np.dot, np.dot, np.matmul (the result's size vs SMALL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", SHAPES)
def test_matmul_into_out_equals_numpy_matmul(m, k, n, dtype):
    """Forward (a W), backward (a^T delta) and (delta W^T) shapes, transposed views included."""
    rng = np.random.default_rng(0)
    a, W, delta = (rng.standard_normal(s).astype(dtype) for s in [(m, k), (k, n), (m, n)])
    for left, right in [(a, W), (a.T, delta), (delta, W.T)]:
        out = np.empty((left.shape[0], right.shape[1]), dtype)
        assert matmul(left, right, out=out) is out
        np.testing.assert_allclose(out, np.matmul(left, right), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert min(m * n for m, _, n in SHAPES) <= SMALL < max(m * n for m, _, n in SHAPES)  # both paths run


def test_out_np_dot_cannot_take_falls_back_to_matmul():
    """A strided out, or one of another dtype, still gets the product (np.dot would refuse both)."""
    a, b = np.ones((4, 3), np.float32), np.full((3, 5), 2, np.float32)
    strided = np.zeros((4, 10), np.float32)[:, ::2]
    np.testing.assert_array_equal(matmul(a, b, out=strided), 6)
    wider = np.zeros((4, 5))
    np.testing.assert_array_equal(matmul(a, b, out=wider), 6)
    np.testing.assert_array_equal(matmul(a, b), 6)  # no out: a fresh array
    with pytest.raises(ValueError):
        matmul(a, a, out=np.empty((4, 3), np.float32))  # mismatched shapes still fail loudly
