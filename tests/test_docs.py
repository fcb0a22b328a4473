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
