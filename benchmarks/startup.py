"""What the CLI adds to a small table's fit: `deltaprop train` end to end on a 300-row table, and `deltaprop predict`
on one row (issue 29: the CLI adds under 1 s to the fit on a 300-row table).

    python benchmarks/startup.py [--repeats 5]      (PYTHONPATH=src to measure a checkout)

The table is 300 rows of palmerpenguins (numbers, text categories, missing values; `pip install palmerpenguins`),
trained as body_mass_g (a regression: loss and predicted-against-actual plots), as species (a classification: loss,
accuracy and confusion plots), and as body_mass_g with --no-plots (what the plots cost). Each run is `deltaprop
train --data FILE --target T` with default options, plots on (--quiet only drops the per-epoch lines), in a fresh
process, timed from outside (wall). Its fit is what the run reports itself: the summary table's time column (the
training, its per-epoch checkpoint included) plus, on a table this small, the epoch count's cross-validation that
the note before it times (cli/epochs.py). The overhead is wall minus fit: interpreter and imports, reading and
encoding the table, writing the run folder and the plots. Min and median over the repeats (a shared machine adds
noise; the min is the machine's own cost), and the process's CPU time (user + system), which waiting for a busy
core does not inflate. For scale, `python -c "import numpy"` and `python -c "import deltaprop"` are timed the same way.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402  (benchmarks/ is not a package)

CLI = [sys.executable, "-c", "import sys; from deltaprop.cli import main; sys.exit(main())"]  # as the script
TARGETS = ("body_mass_g", "species")
RUNS = [(target, []) for target in TARGETS] + [(TARGETS[0], ["--no-plots"])]  # (the last: what the plots cost)


def timed(command: list) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds: user + system, standard output) of one fresh process; its failure is an error
    naming the command. The CPU time is the steadier figure on a shared machine (waiting for a core is not in it;
    waiting for the disk's fsync is in neither it nor a faster machine's wall time)."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu, result.stdout


def reported_fit(stdout: str) -> float:
    """The seconds the run reports for its fit: the summary's time column plus the cross-validation's note."""
    fit = float(re.search(r"\|\s*([\d.]+) s\s*$", stdout, re.M).group(1))
    cv = re.search(r"at epoch \d+; ([\d.]+) s\)", stdout)
    return fit + (float(cv.group(1)) if cv else 0.0)


def table_file(folder: Path) -> Path:
    from palmerpenguins import load_penguins

    path = folder / "penguins300.csv"
    load_penguins().sample(300, random_state=0).to_csv(path, index=False)
    return path


def spread(values: list) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(describe() + f"\nrepeats {args.repeats}; seconds as min / median\n")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data = table_file(folder)
        rows = []
        for name, code in (("python -c 'import numpy'", "import numpy"), ("python -c 'import deltaprop'",
                                                                         "import deltaprop")):
            runs = [timed([sys.executable, "-c", code]) for _ in range(args.repeats)]
            rows.append(f"| {name} | {spread([r[0] for r in runs])} | {spread([r[1] for r in runs])} | - | - |")
        for target, extra in RUNS:
            walls, cpus, fits = [], [], []
            for _ in range(args.repeats):
                wall, cpu, out = timed(CLI + ["train", "--data", str(data), "--target", target, "--out",
                                              str(folder / target), "--overwrite", "--quiet", *extra])
                walls.append(wall)
                cpus.append(cpu)
                fits.append(reported_fit(out))
            overheads = [w - f for w, f in zip(walls, fits, strict=True)]
            label = f"train --target {target} {' '.join(extra) or '(plots on)'}"
            rows.append(f"| {label} | {spread(walls)} | {spread(cpus)} | {spread(fits)} | {spread(overheads)} |")
        one = folder / "one.csv"
        one.write_text("".join(data.read_text().splitlines(keepends=True)[:2]))
        runs = [timed(CLI + ["predict", str(folder / TARGETS[0] / "model.safetensors"), "--data", str(one)])
                for _ in range(args.repeats)]
        rows.append(f"| predict, one row | {spread([r[0] for r in runs])} | {spread([r[1] for r in runs])} | - | - |")
    print("| command | wall s | CPU s | fit s (reported: time column + cross-validation) | wall - fit s |\n"
          "|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
