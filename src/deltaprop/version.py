"""The version of deltaprop, written here only: pyproject.toml reads it (setuptools' dynamic version), and the
distribution's metadata, `deltaprop --version` and the model files' library_version all come from it."""

__version__ = "0.1.0"
