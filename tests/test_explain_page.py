"""The interactive explain page in a real browser: Debian's headless Chromium driven by selenium through
chromium-driver (WebDriver). Clicks are WebDriver's mouse actions at a point of the drawing, keys are key
events, and what the page shows is read back from its DOM."""

import shutil

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.explain import notes_example
from deltaprop.explain.document import fmt
from helpers import make_net

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                 reason="Debian's chromium and chromium-driver are not installed (CI installs them)"),
              pytest.mark.slow]  # headless Chromium: not in the quick tier

# the screen point of a spot t of the way along an edge's line, and what element the browser finds there
POINT_ON_EDGE = """
const [id, t] = arguments, line = document.getElementById(id).querySelector("line.vis");
const m = line.getScreenCTM(), svg = line.ownerSVGElement, p = svg.createSVGPoint();
p.x = +line.getAttribute("x1") + t * (line.getAttribute("x2") - line.getAttribute("x1"));
p.y = +line.getAttribute("y1") + t * (line.getAttribute("y2") - line.getAttribute("y1"));
const q = p.matrixTransform(m), hit = document.elementFromPoint(q.x, q.y);
return [q.x, q.y, hit && hit.closest(".edge") ? hit.closest(".edge").id : null];
"""


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="the page tests need selenium (the [test] extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def open_page(browser, tmp_path, ex):
    page = tmp_path / "explain.html"
    ex.save(page)
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # nothing fetched
    browser.get(page.as_uri())
    return browser


def click_edge(browser, edge_id):
    """A real mouse click (a W3C pointer action at viewport coordinates) on a spot of the edge that no other
    element covers."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    for t in np.linspace(0.3, 0.7, 9):
        x, y, hit = browser.execute_script(POINT_ON_EDGE, edge_id, float(t))
        if hit == edge_id:
            actions = ActionBuilder(browser)
            actions.pointer_action.move_to_location(int(round(x)), int(round(y))).click()
            actions.perform()
            return
    raise AssertionError(f"no spot of {edge_id} is free to click")


def label(browser) -> str:
    """The panel's title as text (its MathML's text content, scripts run together: w_23^1 reads w231)."""
    return browser.execute_script("return document.getElementById('step-label').textContent")


def panel(browser) -> str:
    return browser.find_element("id", "detail").text


def severe(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_clicking_an_edge_shows_its_chain_rule_and_lights_the_sum_over_k(browser, tmp_path):
    rng = np.random.default_rng(0)
    net = make_net([5, 4, 3, 3], ["relu", "tanh"], "softmax", "cross_entropy", seed=1)
    ex = dp.explain(net, rng.normal(size=5), 2)
    open_page(browser, tmp_path, ex)
    for l, i, j in [(1, 2, 3), (2, 4, 1), (3, 1, 2)]:
        click_edge(browser, f"e-{l}-{i}-{j}")
        c, shown = ex.chains[(l, i, j)], panel(browser)
        for number in (c.product, c.backprop, c.finite_difference, c.a_i):
            assert fmt(number) in shown, (l, i, j, fmt(number), shown)
        assert "central difference" in shown
        assert label(browser) == f"The weight w{i}{j}{l}={fmt(ex.layers[l - 1].W[i - 1, j - 1])}"  # MathML's text
        lit = {e.get_attribute("id") for e in browser.find_elements("css selector", ".path")}
        edge = browser.find_element("id", f"e-{l}-{i}-{j}")
        assert "on" in edge.get_attribute("class")
        if l < ex.L:  # the sum over k: every weight out of neuron j of layer l, and the neurons they reach
            assert {f"e-{l + 1}-{j}-{k}" for k in range(1, ex.sizes[l + 1] + 1)} <= lit
            assert f"n-{l + 1}-1" in lit
        else:
            assert not any(x.startswith("e-") for x in lit)
    assert severe(browser) == []


def test_a_neuron_focused_from_the_keyboard_shows_z_a_and_delta(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    net, x, y = notes_example()
    ex = dp.explain(net, x, y)
    open_page(browser, tmp_path, ex)
    neuron = browser.find_element("id", "n-1-2")
    neuron.send_keys(Keys.ENTER)
    shown, s = panel(browser), ex.layers[0]
    for number in (s.z[1], s.a[1], s.delta[1], s.sigma_prime[1]):
        assert fmt(number) in shown
    total = float(ex.layers[1].W[1] @ ex.layers[1].delta)  # the sum over k of equation (2)
    assert fmt(total) in shown and "(2)" in shown
    assert severe(browser) == []


def test_the_stepper_walks_the_passes_in_the_notes_order(browser, tmp_path):
    net = make_net([4, 5, 3, 2], ["tanh", "sigmoid"], "softmax", "cross_entropy", seed=5)
    ex = dp.explain(net, np.linspace(-1, 1, 4), 1)
    open_page(browser, tmp_path, ex)
    labels = []
    for _ in range(12):
        browser.find_element("id", "next").click()
        labels.append(label(browser).split(": ", 1)[1])
    c = ex.chain
    assert labels == ["the sample, a0=x", "forward pass, layer 1", "forward pass, layer 2", "forward pass, layer 3",
                      "equation (1), δ3", "equation (2), δ2", "equation (2), δ1",
                      "equations (3) and (4), dW1 and db1", "equations (3) and (4), dW2 and db2",
                      "equations (3) and (4), dW3 and db3", f"the chain rule for w{c.i}{c.j}1",
                      f"the chain rule for w{c.i}{c.j}1"]  # the last step stays (the math's text: w_ij^l reads wijl)
    assert browser.find_elements("css selector", "#step-label math")  # the label's math is MathML
    assert fmt(ex.chain.finite_difference) in panel(browser)
    browser.find_element("id", "prev").click()
    assert fmt(ex.layers[2].dW[0, 0]) in panel(browser)


def test_a_wide_network_is_drawn_in_part_with_labels_inside_their_circles_and_is_not_blank(browser, tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(3)
    net = make_net([64, 128, 10], "relu", "softmax", "cross_entropy", seed=0)
    ex = dp.explain(net, rng.random(64) * 1e-4, 7)
    open_page(browser, tmp_path, ex)
    assert len(browser.find_elements("css selector", ".neuron")) == 8 + 8 + 8
    widths = browser.execute_script("return [...document.querySelectorAll('.neuron text')]"
                                    ".map(t => t.getBBox().width)")
    assert widths and max(widths) <= 2 * 36 - 6  # inside the circle (radius 36)
    shot = tmp_path / "shot.png"
    browser.save_screenshot(str(shot))
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # not a blank page
    blue = (pixels[..., 2] > 0.55) & (pixels[..., 0] < 0.35)  # the edges' colour for dW > 0
    assert blue.sum() > 200
    assert severe(browser) == []
