"""The package itself: a light import and the public names."""

import shutil
import subprocess
import sys
from pathlib import Path

import deltaprop as dp


def test_import_needs_numpy_only():
    code = ("import sys, deltaprop; heavy = {'sklearn', 'torch', 'matplotlib', 'safetensors', 'tqdm', 'scipy'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_api_names():
    for name in ("Network", "Dense", "gradcheck", "load", "save", "SGD", "Adam", "AdamW", "RMSprop",
                 "EarlyStopping", "ModelCheckpoint", "DeltaClassifier", "DeltaRegressor"):
        assert hasattr(dp, name), name
    assert dp.DeltaClassifier.__module__ == "deltaprop.estimators"


def test_cli_version_is_the_distributions():
    """The version is written once (version.py); the installed metadata and `deltaprop --version` agree with it."""
    import importlib.metadata

    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))  # the installed console script
    command = [exe] if exe else [sys.executable, "-m", "deltaprop.cli"]
    out = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["deltaprop", importlib.metadata.version("deltaprop")]
    assert dp.__version__ == importlib.metadata.version("deltaprop")


def test_the_wheel_ships_type_information():
    """PEP 561: py.typed sits in the package and pyproject names it as package data (so the wheel carries it)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the tomli the package depends on there
        import tomli as tomllib

    assert (Path(dp.__file__).parent / "py.typed").is_file()
    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["deltaprop"]
