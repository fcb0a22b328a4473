"""explain: its numbers are the engine's numbers; the chain rule matches backprop and finite differences."""

import re
import shutil
import subprocess

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.explain import notes_example, render_html, render_markdown, render_text
from deltaprop.explain.document import fmt
from deltaprop.explain.tex import parse, to_mathml
from helpers import make_net


def networks():
    rng = np.random.default_rng(0)
    yield notes_example()
    net = make_net([5, 4, 3, 3], ["relu", "tanh"], "softmax", "cross_entropy", seed=1)
    yield net, rng.normal(size=5), 2
    net = make_net([3, 6, 2], "softmax", "sigmoid", "mse", seed=2)  # a softmax hidden layer: a Jacobian sigma'
    yield net, rng.normal(size=3), np.array([0.2, 0.7])
    net = make_net([9, 8, 7, 1], ["elu", "sigmoid"], "identity", "mse", seed=3)  # wider than shown
    yield net, rng.normal(size=9), 0.4


@pytest.mark.filterwarnings("ignore:layer .* hidden layer with softmax")  # on purpose: its Jacobian sigma'
@pytest.mark.parametrize("case", range(4))
def test_every_number_is_the_engines_number(case):
    net, x, y = list(networks())[case]
    ex = dp.explain(net, x, y, neuron=2)
    X = x.reshape(1, -1)
    y_row = np.asarray(y).reshape(1, -1) if np.size(y) > 1 else np.asarray(y).reshape(1)
    trace = net.forward(X)
    grads = net.backward(trace, y_row)
    assert ex.loss == pytest.approx(net.loss(X, y_row), rel=1e-12)
    for step in ex.layers:
        l = step.l
        np.testing.assert_allclose(step.z, trace.z[l][0], rtol=1e-12)
        np.testing.assert_allclose(step.a, trace.a[l][0], rtol=1e-12)
        np.testing.assert_allclose(step.delta, grads.delta[l][0], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(step.dW, grads.dW[l], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(step.db, grads.db[l], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ex.output.delta, grads.delta[net.L][0], rtol=1e-12)
    for h in ex.hidden:  # equation (2) written out equals the matrix product of the engine
        g = grads.delta[h.l + 1] @ net.layers[h.l].W.T
        assert h.total == pytest.approx(g[0, h.j - 1], rel=1e-12, abs=1e-300)
        assert h.delta == pytest.approx(grads.delta[h.l][0, h.j - 1], rel=1e-12, abs=1e-300)
        if h.sigma_prime is not None:
            assert h.delta == pytest.approx(h.total * h.sigma_prime, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("weight", [(1, 1, 1), (1, 2, 2), (2, 1, 2), (2, 2, 1)])
def test_chain_rule_equals_dW_and_the_finite_difference(weight):
    net, x, y = notes_example()
    c = dp.explain(net, x, y, weight=weight).chain
    assert c.product == pytest.approx(c.backprop, rel=1e-12)
    assert c.relative_difference < 1e-6  # central difference, eps 1e-6, float64
    if weight[0] == 1:
        assert len(c.terms) == 2 and c.sum_k == pytest.approx(sum(t[3] for t in c.terms))


def test_chain_rule_through_three_layers():
    rng = np.random.default_rng(4)
    net = make_net([4, 5, 3, 2], ["tanh", "sigmoid"], "softmax", "cross_entropy", seed=5)
    for weight in [(1, 3, 4), (2, 5, 1), (3, 2, 2)]:
        c = dp.explain(net, rng.normal(size=4), 1, weight=weight).chain
        assert c.product == pytest.approx(c.backprop, rel=1e-10)
        assert c.relative_difference < 1e-6


def test_text_prints_only_engine_numbers():
    """Each decimal in the text is fmt() of a value of the structured result, and the key ones appear."""
    net, x, y = notes_example()
    ex = dp.explain(net, x, y)
    values = [ex.loss, *ex.x, *ex.y, *ex.output.dL_da, *ex.output.sigma_prime]
    for s in ex.layers:
        values += [*s.a_prev, *s.W.ravel(), *s.b, *s.z, *s.a, *s.sigma_prime, *s.delta, *s.dW.ravel(), *s.db]
    for h in ex.hidden:
        values += [v for t in h.terms for v in t[1:]] + [h.total, h.sigma_prime, h.delta]
    c = ex.chain
    values += [v for t in c.terms for v in t[1:]] + [c.sum_k, c.sigma_prime, c.a_i, c.product, c.backprop,
                                                      c.finite_difference]
    known = {fmt(v) for v in values}
    text = render_text(ex)
    printed = re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", "\n".join(line for line in text.splitlines()
                                                               if line.startswith("    ")))
    assert printed and set(printed) <= known
    for must in (ex.layers[0].dW[0, 0], ex.output.delta[1], ex.hidden[0].total, c.finite_difference):
        assert fmt(must) in text


def test_large_layers_are_summarised():
    net = make_net([64, 30, 10], "sigmoid", "softmax", "cross_entropy")
    text = render_text(dp.explain(net, np.linspace(0, 1, 64), 3))
    assert "shape (64, 30), first entries shown" in text
    assert max(len(line) for line in text.splitlines()) < 400


def test_markdown_has_valid_math_for_every_equation():
    net, x, y = notes_example()
    md = render_markdown(dp.explain(net, x, y))
    lines = md.splitlines()
    opens = [i for i, line in enumerate(lines) if line == "$$"]
    assert len(opens) >= 20 and len(opens) % 2 == 0
    blocks = ["\n".join(lines[a + 1:b]) for a, b in zip(opens[::2], opens[1::2], strict=True)]
    for tex in blocks:
        assert tex.count("{") == tex.count("}") and tex.count("\\begin{bmatrix}") == tex.count("\\end{bmatrix}")
        assert "$" not in tex
        parse(tex)  # the subset parses (raises on unbalanced or unknown commands)
    outside = "\n".join(line for i, line in enumerate(lines)
                        if not any(a <= i <= b for a, b in zip(opens[::2], opens[1::2], strict=True)))
    inline = re.findall(r"\$([^$]+)\$", outside)  # headings and sentences hold their math as $inline TeX$
    assert inline and all(parse(tex) for tex in inline)
    assert "\\delta" not in re.sub(r"\$[^$]+\$", "", outside) and outside.count("$") % 2 == 0
    assert any("\\delta^{2} = \\frac{\\partial L}{\\partial a^{2}} \\odot \\sigma'(z^{2})" in b for b in blocks)


def test_mathml_of_a_small_equation():
    ml = to_mathml("\\delta_{j}^{l} = \\frac{a}{b} \\odot \\begin{bmatrix}1 & -2\\end{bmatrix}")
    assert "<msubsup><mi>δ</mi><mrow><mi>j</mi></mrow><mrow><mi>l</mi></mrow></msubsup>" in ml
    assert "<mfrac>" in ml and "<mo>⊙</mo>" in ml and "<mn>-2</mn>" in ml and "<mtable>" in ml


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium(tmp_path, page, *extra):
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result, console


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it)")
def test_html_page_in_a_headless_browser(tmp_path):
    net, x, y = notes_example()
    page = tmp_path / "explain.html"
    page.write_text(render_html(dp.explain(net, x, y)), encoding="utf-8")
    assert "http://" not in page.read_text().replace("http://www.w3.org", "")  # nothing fetched from outside

    broken = tmp_path / "broken.html"  # the console check must see an error when there is one
    broken.write_text("<html><body><script>console.error('x'); missing();</script></body></html>")
    assert len(chromium(tmp_path, broken, "--dump-dom")[1]) == 2

    result, console = chromium(tmp_path, page, "--dump-dom")
    assert result.returncode == 0 and console == []
    dom = result.stdout
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="network"' in dom and dom.count("<circle") == 6
    assert dom.count("<math") >= 20 and "Equation (1)" in dom and "Equation (2)" in dom

    shot = tmp_path / "shot.png"
    result, console = chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1000,1600")
    assert console == [] and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_gradient_flow_is_recorded_per_layer_and_epoch(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    net = make_net([64, 32, 32, 32, 10], "sigmoid", "sigmoid", "mse", seed=0)
    flow = dp.GradientFlow()
    net.fit(X[:500] / 16, y[:500], epochs=3, optimizer=dp.SGD(0.5), callbacks=[flow], verbose=0)
    assert set(flow.dW_norms) == {1, 2, 3, 4} and all(len(v) == 3 for v in flow.delta_norms.values())
    # a deep sigmoid network: the error signal shrinks on its way back to layer 1
    assert flow.delta_norms[1][0] < flow.delta_norms[4][0]
    from deltaprop.plots import plot_gradient_flow

    assert plot_gradient_flow(flow, tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def _trained_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    scaler = dp.data.Scaler("standard").fit(X)
    net = make_net([64, 32, 10], "relu", "softmax", "cross_entropy", seed=0, dtype="float32")
    net.fit(scaler.transform(X[:600]), y[:600], epochs=3, verbose=0)
    net.pipeline.feature_names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return net, scaler.transform(X[600:601])[0], y[600]


def test_the_default_weight_on_a_trained_digits_model_is_informative_and_names_are_shown():
    """The reproduction: on a trained digits model w_11^1's input pixel is always 0, so every factor of its
    chain rule was 0 and "relative difference 0.00e+00" said nothing. Without a weight, explain now picks a
    drawn weight of layer 1 with a non-zero product, and says so; w_11^1 asked for explicitly says why it is 0."""
    net, x, y = _trained_digits()
    assert x[0] == 0  # the corner pixel: 0 in every image, so 0 after scaling
    ex = dp.explain(net, x, y)
    c = ex.chain
    assert (c.l, c.i, c.j) != (1, 1, 1) and c.product != 0 and c.relative_difference < 1e-6
    assert ex.weight_chosen and abs(c.backprop) == np.abs(ex.layers[0].dW[:8, :8]).max()
    text = str(ex)
    assert "shown instead" in text and f"w_{c.i}{c.j}^1" in text
    assert "pixel_0_0 = 0," in text and f"The target: class {int(y)} (output neuron {int(y) + 1})" in text
    assert re.search(r"(?<![\w.])-0(?![.\de])", text) is None  # no -0 anywhere
    asked = dp.explain(net, x, y, weight=(1, 1, 1))
    assert asked.chain.product == 0 and asked.weight_chosen is None
    assert "Both are 0: a_1^0 = 0, so this weight does not change the loss" in str(asked)


def test_an_explanation_prints_saves_and_shows_itself_in_a_notebook(tmp_path):
    import types

    import deltaprop.explain as explain_package

    assert isinstance(explain_package, types.ModuleType) and explain_package is dp.explain  # not the function
    net, x, y = notes_example()
    ex = dp.explain(net, x, y)
    assert repr(ex).startswith("<Explanation of a 2-2-2 network") and len(repr(ex)) < 300
    assert str(ex) == render_text(ex) and "Equation (1)" in str(ex)
    assert ex.save(tmp_path / "e.md").read_text(encoding="utf-8") == render_markdown(ex)
    assert ex.save(tmp_path / "e.html").read_text(encoding="utf-8") == render_html(ex)
    frame = ex._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;") and "&lt;svg" in frame and '"' not in \
        frame[len('<iframe srcdoc="'):frame.index('" title=')]
