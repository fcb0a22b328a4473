"""The notes' 2-2-2 sigmoid network with mse, one sample, worked out by hand.

Weights (rows = inputs i, columns = outputs j, as W^l in the notes):
    W^1 = [[0.15, 0.25], [0.20, 0.30]]   b^1 = [0.35, 0.35]
    W^2 = [[0.40, 0.50], [0.45, 0.55]]   b^2 = [0.60, 0.60]
    x = a^0 = [0.05, 0.10]               y = [0.01, 0.99]

If a number here disagrees with backward(), the engine does not compute the
notes' equations (1)-(4) (or sigma' is taken at the wrong point).
"""

import numpy as np
import pytest

import deltaprop as dp

RTOL = 1e-8  # the hand values carry 12 decimals: at least 9 significant digits for dW^1

# Forward pass.
# z^1_1 = 0.05*0.15 + 0.10*0.20 + 0.35 = 0.3775 ; z^1_2 = 0.05*0.25 + 0.10*0.30 + 0.35 = 0.3925
Z1 = [0.3775, 0.3925]
# a^1 = 1 / (1 + e^{-z^1})
A1 = [0.593269992107, 0.596884378260]
# z^2_1 = 0.593269992107*0.40 + 0.596884378260*0.45 + 0.60 = 1.105905967060
# z^2_2 = 0.593269992107*0.50 + 0.596884378260*0.55 + 0.60 = 1.224921404096
Z2 = [1.105905967060, 1.224921404096]
A2 = [0.751365069552, 0.772928465321]
# L = 1/2 [(0.751365069552 - 0.01)^2 + (0.772928465321 - 0.99)^2] = 0.298371108760
LOSS = 0.298371108760

# Equation (1): delta^2_j = (a^2_j - y_j) * a^2_j (1 - a^2_j)
#   sigma'(z^2) = [0.751365069552*0.248634930448, 0.772928465321*0.227071534679]
#               = [0.186815601809, 0.175510052817]
#   delta^2_1 = 0.741365069552 * 0.186815601809 =  0.138498561629
#   delta^2_2 = -0.217071534679 * 0.175510052817 = -0.038098236517
DELTA2 = [0.138498561629, -0.038098236517]
# Equation (2): delta^1_j = (sum_k w^2_jk delta^2_k) * a^1_j (1 - a^1_j)
#   j=1: (0.40*0.138498561629 + 0.50*(-0.038098236517)) * 0.241300708572 = 0.008771354689
#   j=2: (0.45*0.138498561629 + 0.55*(-0.038098236517)) * 0.240613417249 = 0.009954254705
DELTA1 = [0.008771354689, 0.009954254705]
# Equation (3): dW^2_ij = a^1_i delta^2_j
#   0.593269992107*0.138498561629 = 0.082167040564 ; 0.593269992107*(-0.038098236517) = -0.022602540477
#   0.596884378260*0.138498561629 = 0.082667627848 ; 0.596884378260*(-0.038098236517) = -0.022740242216
DW2 = [[0.082167040564, -0.022602540477], [0.082667627848, -0.022740242216]]
# dW^1_ij = x_i delta^1_j: 0.05*0.008771354689 = 0.000438567734, 0.05*0.009954254705 = 0.000497712735,
#                          0.10*0.008771354689 = 0.000877135469, 0.10*0.009954254705 = 0.000995425471
DW1 = [[0.000438567734, 0.000497712735], [0.000877135469, 0.000995425471]]
# Equation (4): db^l = delta^l (one sample, so the batch sum is the sample's delta)


@pytest.fixture
def notes_net():
    net = dp.Network([dp.Dense(2, 2, "sigmoid"), dp.Dense(2, 2, "sigmoid")], loss="mse", dtype="float64")
    net.layers[0].W[...] = [[0.15, 0.25], [0.20, 0.30]]
    net.layers[0].b[...] = [0.35, 0.35]
    net.layers[1].W[...] = [[0.40, 0.50], [0.45, 0.55]]
    net.layers[1].b[...] = [0.60, 0.60]
    return net


X = np.array([[0.05, 0.10]])
Y = np.array([[0.01, 0.99]])


def test_forward_matches_hand_values(notes_net):
    trace = notes_net.forward(X)
    assert trace.a[0] is not None and np.array_equal(trace.a[0], X)
    np.testing.assert_allclose(trace.z[1][0], Z1, rtol=RTOL)
    np.testing.assert_allclose(trace.a[1][0], A1, rtol=RTOL)
    np.testing.assert_allclose(trace.z[2][0], Z2, rtol=RTOL)
    np.testing.assert_allclose(trace.a[2][0], A2, rtol=RTOL)
    assert notes_net.loss(X, Y) == pytest.approx(LOSS, rel=RTOL)


def test_backward_matches_hand_values(notes_net):
    grads = notes_net.backward(notes_net.forward(X), Y)
    np.testing.assert_allclose(grads.delta[2][0], DELTA2, rtol=RTOL)
    np.testing.assert_allclose(grads.delta[1][0], DELTA1, rtol=RTOL)
    np.testing.assert_allclose(grads.dW[2], DW2, rtol=RTOL)
    np.testing.assert_allclose(grads.dW[1], DW1, rtol=RTOL)
    np.testing.assert_allclose(grads.db[2], DELTA2, rtol=RTOL)
    np.testing.assert_allclose(grads.db[1], DELTA1, rtol=RTOL)


def test_backward_returns_fresh_arrays(notes_net):
    """Two backward passes give equal, separate arrays: nothing accumulates in place."""
    trace = notes_net.forward(X)
    first = notes_net.backward(trace, Y)
    second = notes_net.backward(trace, Y)
    for l in (1, 2):
        np.testing.assert_array_equal(first.dW[l], second.dW[l])
        assert first.dW[l] is not second.dW[l]
        assert not np.shares_memory(first.dW[l], notes_net.layers[l - 1].W)
