"""What a learner sees in a notebook or a terminal: net.summary(), print(history), the HTML of Network, History
and a gradcheck report, and the hints a teacher would give (a softmax hidden layer, vanishing gradients)."""

import re
import warnings

import numpy as np
import pytest

import deltaprop as dp
from helpers import make_net

pytestmark = pytest.mark.slow  # trains and prints through the CLI (not in the quick tier)


def test_summary_lists_every_layer_with_its_parameters_and_the_total(capsys):
    net = dp.Network([dp.Dense(64, 32, "relu", dropout=0.2), dp.Dense(32, 10, "softmax")], loss="cross_entropy",
                     dtype="float32", seed=0)
    net.summary()
    text = capsys.readouterr().out
    assert text.startswith("Network 64-32-10: loss cross_entropy, float32")
    assert re.search(r"1\s+Dense\s+W\^1 \(64, 32\), b\^1 \(32,\)\s+relu\s+0.2\s+2,080", text)
    assert re.search(r"2\s+Dense\s+W\^2 \(32, 10\), b\^2 \(10,\)\s+softmax\s+-\s+330", text)
    assert "total: 2,410 parameters (9.4 KiB in float32)" in text and "trained" not in text
    net.fit(np.random.default_rng(0).random((40, 64)), np.arange(40) % 10, epochs=2, verbose=0)
    net.summary()
    text = capsys.readouterr().out
    assert "trained: 2 epoch(s) (adam, lr 0.001)" in text and "classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in text
    page = net._repr_html_()
    assert page.count("<tr>") == 3 and "<td>W^1 (64, 32), b^1 (32,)</td>" in page and "2,410" in page


def test_a_history_prints_as_a_table_and_shows_a_curve():
    history = dp.History.from_lists({"loss": [1.0 / (e + 1) for e in range(30)],
                                     "val_loss": [1.2 / (e + 1) for e in range(30)],
                                     "accuracy": [e / 30 for e in range(30)], "time": [0.5] * 30})
    text = str(history)
    lines = text.splitlines()
    assert lines[0] == "History: 30 epoch(s)" and lines[1].split() == ["epoch", "loss", "accuracy", "val_loss", "time"]
    assert lines[2].split() == ["1", "1", "0", "1.2", "0.50s"] and lines[-1].split()[0] == "30"
    assert "..." in text and len(lines) == 2 + 12 + 1  # the first and last 6 epochs, and a gap
    assert repr(history).startswith("History(epochs=30")
    html = history._repr_html_()
    assert html.count("<polyline") == 2 and "<th>val_loss</th><td>0.04</td>" in html
    assert str(dp.History()) == "History: no epochs yet"


def test_a_gradcheck_report_is_a_table_in_a_notebook():
    rng = np.random.default_rng(0)
    net = make_net([3, 4, 2], "tanh", "softmax", "cross_entropy", seed=0)
    report = dp.gradcheck(net, rng.normal(size=(5, 3)), rng.integers(0, 2, 5))
    html = report._repr_html_()
    assert html.count("<tr>") == 1 + len(report.rows) and "<strong>OK</strong>" in html


def test_a_softmax_hidden_layer_is_warned_about_naming_it():
    with pytest.warns(dp.DeltapropWarning, match="layer 1 is a hidden layer with softmax"):
        dp.Network([dp.Dense(3, 4, "softmax"), dp.Dense(4, 2, "softmax")], loss="cross_entropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dp.Network([dp.Dense(3, 4, "relu"), dp.Dense(4, 2, "softmax")], loss="cross_entropy")  # none


def _deep(activation):
    sizes = [64] + [32] * 6 + [10]
    return dp.Network([dp.Dense(sizes[l - 1], sizes[l], activation if l < len(sizes) - 1 else "softmax")
                       for l in range(1, len(sizes))], loss="cross_entropy", seed=0)


def test_a_run_that_ends_at_chance_with_vanishing_gradients_gets_a_hint():
    """The issue's case: a deep sigmoid network ends near chance accuracy with ||delta^1|| four orders of
    magnitude below ||delta^L||; fit says so and what to try. The same network with relu learns, silently."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:1000] / 16, y[:1000]
    with pytest.warns(dp.DeltapropWarning, match=r"near chance accuracy .* vanish .* 6 sigmoid layers. Try relu"):
        history = _deep("sigmoid").fit(X, y, epochs=3, optimizer=dp.SGD(0.01), verbose=0)
    assert history["accuracy"][-1] < 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = _deep("relu").fit(X, y, epochs=3, optimizer=dp.SGD(0.05), verbose=0)
    assert history["accuracy"][-1] > 0.3


def test_the_cli_prints_the_hint_as_one_line(tmp_path):
    from test_cli import deltaprop

    result = deltaprop("train", "--layers", "32,32,32,32,32,32", "--activation", "sigmoid", "--optimizer", "sgd",
                       "--lr", "0.01", "--epochs", "3", "--no-plots", "--quiet", "--out", tmp_path / "run")
    hints = [line for line in result.stderr.splitlines() if line.startswith("deltaprop: hint: ")]
    assert len(hints) == 1 and "vanish" in hints[0] and "Try relu" in hints[0]
