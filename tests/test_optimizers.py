"""Optimizers: first steps against hand computations and against torch.optim."""

import numpy as np
import pytest

import deltaprop as dp

THETA0 = np.array([[1.0, -2.0], [0.5, 3.0]])
GRADS = [np.array([[0.1, -0.2], [0.3, 0.4]]), np.array([[-0.5, 0.25], [0.1, 0.0]]),
         np.array([[0.2, 0.2], [-0.3, 0.6]])]


DECAYED = {(1, name) for name in dp.Dense.decayed}  # the keys a Dense layer 1 declares decayed: (1, "W")


def run(optimizer, key=(1, "W"), steps=3):
    theta = THETA0.copy()
    out = []
    for g in GRADS[:steps]:
        optimizer.step({key: theta}, {key: g.copy()}, decayed=DECAYED)
        out.append(theta.copy())
    return out


def test_sgd_plain_is_theta_minus_lr_g():
    steps = run(dp.SGD(lr=0.1), steps=2)
    np.testing.assert_allclose(steps[0], THETA0 - 0.1 * GRADS[0], rtol=1e-15)
    np.testing.assert_allclose(steps[1], THETA0 - 0.1 * (GRADS[0] + GRADS[1]), rtol=1e-15)


def test_sgd_momentum_by_hand():
    steps = run(dp.SGD(lr=0.1, momentum=0.9), steps=2)
    v1 = GRADS[0]
    v2 = 0.9 * v1 + GRADS[1]
    np.testing.assert_allclose(steps[1], THETA0 - 0.1 * v1 - 0.1 * v2, rtol=1e-14)


def test_adam_first_step_moves_each_weight_by_lr_times_sign():
    """After one step m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps)."""
    steps = run(dp.Adam(lr=0.01), steps=1)
    g = GRADS[0]
    np.testing.assert_allclose(steps[0], THETA0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_adam_two_steps_by_hand():
    b1, b2, lr, eps = 0.9, 0.999, 0.01, 1e-8
    m1, v1 = (1 - b1) * GRADS[0], (1 - b2) * GRADS[0] ** 2
    theta1 = THETA0 - lr * (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
    m2, v2 = b1 * m1 + (1 - b1) * GRADS[1], b2 * v1 + (1 - b2) * GRADS[1] ** 2
    theta2 = theta1 - lr * (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
    np.testing.assert_allclose(run(dp.Adam(lr=lr), steps=2)[1], theta2, rtol=1e-12)


def test_rmsprop_first_step_by_hand():
    g = GRADS[0]
    v = 0.01 * g**2
    np.testing.assert_allclose(run(dp.RMSprop(lr=0.01), steps=1)[0], THETA0 - 0.01 * g / (np.sqrt(v) + 1e-8),
                               rtol=1e-12)


def test_adamw_decays_weights_not_biases():
    w_step = run(dp.AdamW(lr=0.01, weight_decay=0.1), key=(1, "W"), steps=1)[0]
    b_step = run(dp.AdamW(lr=0.01, weight_decay=0.1), key=(1, "b"), steps=1)[0]
    adam = run(dp.Adam(lr=0.01), steps=1)[0]
    np.testing.assert_allclose(w_step, THETA0 * (1 - 0.001) - (THETA0 - adam), rtol=1e-12)
    np.testing.assert_allclose(b_step, adam, rtol=1e-15)


def test_weight_decay_without_the_decayed_keys_is_refused():
    """Which parameters decay is what the layers declare: the dict step does not guess it from the names."""
    with pytest.raises(dp.errors.ConfigError, match="layer.decayed"):
        dp.AdamW(lr=0.01, weight_decay=0.1).step({(1, "W"): THETA0.copy()}, {(1, "W"): GRADS[0]})


def test_state_is_keyed_and_holds_no_weight_references():
    opt = dp.Adam()
    theta = THETA0.copy()
    opt.step({(1, "W"): theta}, {(1, "W"): GRADS[0]})
    assert set(opt.state) == {(1, "W")}
    assert all(not np.shares_memory(arr, theta) for arr in opt.state[(1, "W")].values())
    replacement = THETA0.copy()  # the network's array replaced (e.g. by load): state still applies
    opt.step({(1, "W"): replacement}, {(1, "W"): GRADS[1]})
    assert not np.array_equal(replacement, THETA0)


@pytest.mark.parametrize("bad", [lambda: dp.SGD(lr=0), lambda: dp.SGD(lr=0.1, nesterov=True),
                                 lambda: dp.Adam(beta1=1.0), lambda: dp.optimizers.get_optimizer("adagrad")])
def test_bad_settings_are_refused(bad):
    with pytest.raises(dp.ConfigError):
        bad()


torch = pytest.importorskip("torch", reason="torch.optim is the oracle; CI installs torch==2.13.0")

TORCH_PAIRS = [
    (lambda: dp.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda: dp.SGD(lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (lambda: dp.SGD(lr=0.1, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (lambda: dp.SGD(lr=0.1, momentum=0.5, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01)),
    (lambda: dp.Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (lambda: dp.Adam(lr=0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    (lambda: dp.AdamW(lr=0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    (lambda: dp.RMSprop(lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    (lambda: dp.RMSprop(lr=0.01, momentum=0.9), lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9)),
]


@pytest.mark.parametrize("ours,theirs", TORCH_PAIRS)
def test_matches_torch_optim_for_three_steps(ours, theirs):
    """Same weights after each step, float64, relative 1e-12 (weight decay on W, as ours does)."""
    W = torch.tensor(THETA0.copy(), requires_grad=True)
    opt = theirs([W])
    mine = run(ours(), steps=3)
    for g, expected in zip(GRADS, mine, strict=True):
        opt.zero_grad()
        W.grad = torch.tensor(g.copy())
        opt.step()
        np.testing.assert_allclose(expected, W.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("ours,theirs", TORCH_PAIRS)
def test_step_flat_matches_torch_optim_on_a_whole_network(ours, theirs):
    """``step_flat``, the update ``fit`` uses (all W^l, b^l in one vector, weight decay on the W^l
    views only), against torch.optim on the same four arrays for 4 steps: float64, relative 1e-12.
    torch gets the biases in a param group without weight decay, as ours treats them."""
    from helpers import make_net

    net = make_net([3, 4, 2], "tanh", "softmax", "cross_entropy", seed=5)
    flat, opt = dp.TrainingState().flat_for(net.layers, net.dtype), ours()
    tensors = {key: torch.tensor(value.copy(), requires_grad=True) for key, value in net.params().items()}
    torch_opt = theirs([{"params": [t for (l, name), t in tensors.items() if name == "W"]},
                        {"params": [t for (l, name), t in tensors.items() if name == "b"], "weight_decay": 0.0}])
    rng = np.random.default_rng(11)
    for _ in range(4):
        g = rng.normal(size=flat.grad.shape)
        flat.grad[...] = g
        opt.step_flat(flat, net.ops)
        for key, view in flat.views(g).items():
            tensors[key].grad = torch.tensor(view.copy())
        torch_opt.step()
        for key, value in net.params().items():
            np.testing.assert_allclose(value, tensors[key].detach().numpy(), rtol=1e-12, atol=1e-15,
                                       err_msg=str(key))
