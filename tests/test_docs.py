"""The docs stay true: the notes-to-code page is generated from the code, the README runs."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_notes_to_code_page_is_current():
    """docs/notes-to-code.md quotes backward() and the explain output; `python docs/generate.py` renews it."""
    spec = importlib.util.spec_from_file_location("generate", ROOT / "docs" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    page = (ROOT / "docs" / "notes-to-code.md").read_text(encoding="utf-8")
    assert page == generate.page()
    quoted = page.split("<!-- code:begin -->", 1)[1]
    for equation in ("# (1)", "# (2)", "# (3)", "# (4)"):
        assert equation in quoted


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["history"]["loss"][-1] < namespace["history"]["loss"][0]
    assert (tmp_path / "model.safetensors").exists()
