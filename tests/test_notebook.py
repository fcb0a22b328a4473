"""docs/tutorial.ipynb runs from top to bottom in a fresh Jupyter kernel (nbclient): its cells assert the
numbers they show, so a cell that raises (an assertion, or anything else) fails this test."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a Jupyter kernel runs the tutorial: not in the quick tier (pytest -m "not slow")

ROOT = Path(__file__).resolve().parent.parent


def test_the_tutorial_notebook_runs_and_its_checks_hold(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="running the notebook needs the [test] extra (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="running the notebook needs the [test] extra (nbclient)")
    pytest.importorskip("ipykernel", reason="running the notebook needs the [test] extra (ipykernel)")
    notebook = nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4)
    checks = sum("assert " in cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert checks >= 7  # the notebook states its facts as checks
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any error
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].outputs == []  # the imports and np.seterr print nothing (np.seterr returns the old settings)
    outputs = [o for cell in code for o in cell.outputs]
    texts = [o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs]
    assert not any("'divide':" in t for t in texts)  # no stray np.seterr dict anywhere
    html = [o["data"]["text/html"] for o in outputs if o.get("data", {}).get("text/html")]
    assert any(h.startswith("<iframe srcdoc=") for h in html)  # the explain page, inline
    assert any("History:" in h for h in html) and any("rel error" in h for h in html)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the gradient flow and W^1's images
