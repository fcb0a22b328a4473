"""The documentation site builds with warnings as errors and shows its math offline.

The site is built from mkdocs.yml into a temporary folder, then the home page and the derivation page are
opened from the file system (file://) in headless Chromium with every host name unresolvable, so nothing can
be fetched from a network. The rendered DOM must hold the equations as MathML (drawn by the browser itself)
and no raw TeX; the screenshots must not be blank. DOCS_SCREENSHOTS=DIR keeps the screenshots for a look.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the site and drives headless Chromium (not in the quick tier)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: any host name fails to resolve
         "--enable-logging=stderr", "--v=0"]
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\\frac|\\delta|\\sigma|\\partial|\$[^$\s](?:[^$<]*[^$\s\\])?\$")


def build_site(site: Path) -> None:
    pytest.importorskip("mkdocs", reason="building the site needs the [docs] extra")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                             "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def visible_text(dom: str) -> str:
    """The DOM less its scripts, styles, MathML and tags: what a reader sees as text."""
    dom = re.sub(r"<(script|style|math)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"<[^>]+>", " ", dom)


def not_blank(png: Path) -> bool:
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    return pixels.shape[0] > 500 and float(pixels[..., :3].std()) > 0.05


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it)")
def test_the_site_shows_rendered_math_offline(tmp_path):
    site = tmp_path / "site"
    build_site(site)
    keep = os.environ.get("DOCS_SCREENSHOTS")
    for name, least in (("index", 4), ("derivation", 25)):
        page = site / f"{name}.html"
        html = page.read_text(encoding="utf-8")
        external = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="(https?://[^"]+)"', html)
        assert external == [], external  # everything the page loads is in the site
        result = chromium(tmp_path, page, "--dump-dom")
        assert result.returncode == 0, result.stderr[-2000:]
        dom = result.stdout
        assert dom.count("<math") >= least and "<mfrac>" in dom  # the equations are MathML elements
        assert RAW_TEX.findall(visible_text(dom)) == []  # and no TeX is left on the page as text
        shot = tmp_path / f"{name}.png"
        result = chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1200,1600")
        assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
        assert not_blank(shot)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)


def test_raw_tex_is_seen_when_it_is_there():
    """The check above must fail on a page whose math was not converted."""
    assert RAW_TEX.findall(visible_text('<p>\\(\\delta^l\\) and $x^2$</p><math><mi>x</mi></math>'))
    assert not RAW_TEX.findall(visible_text('<p>costs $5 and $6</p><math><mi>δ</mi></math>'))
