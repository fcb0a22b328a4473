"""The docs stay true: every python and bash block of README.md and docs/ runs, the notes-to-code page is
generated from the code, the cluster recipes and the Fashion-MNIST recipe parse with the CLI's own parser.

A block runs with the blocks before it in the same document, in order, in a fresh temporary folder: python
blocks share one namespace, bash blocks run in that folder with this checkout's `deltaprop` (so a page may
write a file in Python and train on it from the shell). A block that cannot run in CI says so on the line
before it, `<!-- no-run: reason -->`; those are counted and listed, never silently left out.
"""

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every README and docs snippet runs (CLI, mpiexec) (not in the quick tier)

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(python|bash)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(.*?)\s*-->[ \t]*\n$")


@dataclass
class Block:
    document: Path
    line: int
    language: str
    code: str
    no_run: str | None  # the reason given in the markdown, or None: the block runs

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line} ({self.language})"


def blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()]
        no_run = NO_RUN.search(before[-300:])
        found.append(Block(document, before.count("\n") + 1, match.group(1), match.group(2),
                           no_run.group(1) if no_run else None))
    return found


def test_every_block_is_collected(capsys):
    """The count is printed; a marker must give its reason; every document with code has some that runs."""
    every = [b for d in DOCUMENTS for b in blocks(d)]
    skipped = [b for b in every if b.no_run is not None]
    fences = sum(len(re.findall(r"^```(?:python|bash)[ \t]*$", d.read_text(encoding="utf-8"), re.M))
                 for d in DOCUMENTS)
    assert len(every) == fences  # no block escapes the collector (an unclosed fence, say)
    assert all(b.no_run for b in skipped), [str(b) for b in skipped if not b.no_run]
    with capsys.disabled():
        print(f"\ndocs: {len(every)} python and bash blocks in {len(DOCUMENTS)} documents: "
              f"{len(every) - len(skipped)} run, {len(skipped)} marked no-run:")
        for b in skipped:
            print(f"  no-run {b}: {b.no_run}")
    assert len(every) - len(skipped) >= 20 and (ROOT / "README.md") in {b.document for b in every}


def run_bash(block: Block, folder: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "MPLBACKEND": "Agg"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{block} failed:\n{block.code}\n--- stdout\n{result.stdout[-3000:]}" \
                                   f"\n--- stderr\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if blocks(d)], ids=lambda d: str(d.relative_to(ROOT)))
def test_the_blocks_of_a_document_run(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(document):
        if block.no_run is not None:
            continue
        if block.language == "python":
            exec(compile("\n" * (block.line) + block.code, str(document), "exec"), namespace)  # tracebacks: real lines
        else:
            run_bash(block, tmp_path)
        ran += 1
    assert ran > 0 or all(b.no_run for b in blocks(document))


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
    for anchor in ("eq-forward", "eq-1", "eq-2a", "eq-2b", "eq-3", "eq-4"):  # the derivation links each one
        assert f'<a id="{anchor}"></a>' in page
        assert f"(notes-to-code.md#{anchor})" in (ROOT / "docs" / "derivation.md").read_text(encoding="utf-8")


def _train_options(args: list[str]) -> dict:
    from deltaprop.cli import build_parser

    assert args[0] == "deltaprop" and args[1] == "train", args
    return vars(build_parser().parse_args(args[1:]))


def test_the_cluster_recipes_run_options_the_cli_has():
    """docs/distributed: the SLURM script's and the MPIJob's `deltaprop train` lines parse with the CLI's own
    parser (an option renamed or removed breaks this test, not a user's job)."""
    import json
    import shlex

    script = (ROOT / "docs" / "distributed" / "slurm.sbatch").read_text(encoding="utf-8")
    lines = re.sub(r"\\\n\s*(#\s*)?", " ", script).splitlines()
    runs = [shlex.split(line.lstrip("# "))[2:] for line in lines if line.lstrip("# ").startswith("srun --mpi=pmi2")]
    assert len(runs) == 2
    first, resumed = (_train_options(args) for args in runs)
    assert first["batch_size"] == 4096 and first["target"] == "clicked"
    assert resumed["resume"].endswith("checkpoint.safetensors")
    manifest = (ROOT / "docs" / "distributed" / "mpijob.yaml").read_text(encoding="utf-8")
    command = json.loads(re.search(r"command: (\[.*?\])", manifest, re.S).group(1))
    assert command[:3] == ["mpiexec", "-n", "8"] and "mpiImplementation: MPICH" in manifest
    slots, workers = re.search(r"slotsPerWorker: (\d+)", manifest), re.search(r"Worker:\s+replicas: (\d+)", manifest)
    assert int(slots.group(1)) * int(workers.group(1)) == 8  # a rank per slot
    assert _train_options(command[3:])["data"] == "/data/shards/*.parquet"


def test_the_fashion_mnist_recipe_is_a_config_the_cli_reads_and_the_benchmark_lists():
    """recipes/fashion-mnist-fast.toml is what `deltaprop train --config` reads (every key an option of the right
    type), and it is the candidate benchmarks/time_to_accuracy.py says it was chosen as."""
    import sys

    import tomllib

    from deltaprop.cli.options import resolve

    path = ROOT / "recipes" / "fashion-mnist-fast.toml"
    opts = resolve({"config": str(path)})
    assert (opts["layers"], opts["lr"], opts["schedule"], opts["epochs"], opts["batch_size"]) == \
        ("256,256", 0.003, "cosine", 14, 512)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import time_to_accuracy

    chosen = time_to_accuracy.BASE | time_to_accuracy.CANDIDATES["256-256, Adam 3e-3, cosine 14, batch 512"]
    recipe = tomllib.loads(path.read_text())
    assert all(recipe[key] == value for key, value in chosen.items())
