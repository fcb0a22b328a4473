"""The docs stay true: the quoted code is the code, the explain output is current, the README runs."""

import re
from pathlib import Path

import deltaprop as dp
from deltaprop.explain import notes_example, render_markdown

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "notes-to-code.md").read_text(encoding="utf-8")


def between(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:begin -->\n", 1)[1].split(f"<!-- {name}:end -->", 1)[0]


def test_quoted_backward_pass_is_the_source():
    quoted = between(DOC, "code").removeprefix("```python\n").removesuffix("```\n")
    source = (ROOT / "src" / "deltaprop" / "backprop.py").read_text(encoding="utf-8")
    assert quoted in source
    for equation in ("(1)", "(2)", "(3)", "(4)"):
        assert f"# {equation}" in quoted


def test_explain_output_in_the_docs_is_current():
    net, x, y = notes_example()
    assert between(DOC, "explain") == render_markdown(dp.explain(net, x, y), level=3)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["history"]["loss"][-1] < namespace["history"]["loss"][0]
    assert (tmp_path / "model.safetensors").exists()
