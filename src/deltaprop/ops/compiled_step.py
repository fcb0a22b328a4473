"""Whole training steps of a small Dense network in one compiled call (numba), assembled from the rules.

The readable step (training/loop.py's train_step: propagate, backprop.backward, the
optimizer) makes about twenty backend calls a batch; at 32 rows of a 64-64-10 network the
arithmetic is a third of its time and the Python between the calls the rest. Here a span
of batches runs in one call (step_template.py's ``train``), built from the kernels the
rules hold beside their NumPy lines: each activation's forward and chain, the loss's total
and dL/da, the optimizer's update and constants, weight decay, clipping. Nothing of a rule
is written here, so a new activation, loss or optimizer with a kernel runs compiled as it is.

How it is assembled: generated source, not numba's first-class functions. ``assemble``
writes step_template.py's text plus this run's part (its constants, and a dispatch by
activation code over the activations the network uses) into a file named by the hash of
that text and of the kernels' sources, then binds the kernels' names in it and compiles it
with numba's ``cache=True``. First-class functions would keep one generic step but call
each kernel through a pointer numba cannot inline or vectorize through, and numba cannot
cache functions that take them; the generated step inlines what it calls, compiles only
the rules the run uses (the first run waits for a fraction of the old all-rules step), and
numba's cache on disk applies because the source is a real file: later runs load the
machine code. The file's name changes with any kernel's source, so a stale cache is never
used. Where no folder is writable, ``CACHED`` is False and training/fused.py keeps the
readable step (every process would compile again).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import kernels
from .jit import ERRORS as ERRORS  # (fused.py catches them from the step's module)
from .jit import compiled, refused

TEMPLATE = Path(__file__).with_name("step_template.py")
STEP_FUNCTIONS = ("rows", "params", "forward", "output_error", "backward", "update", "gather", "record", "train",
                  "activate", "times_sigma_prime", "flush_state")


@dataclass(frozen=True)
class Recipe:
    """What one run's step is made of (training/fused.py reads it off the network, loss and optimizer).

    activations: ((forward, chain or None), ...) of the distinct activations, code = index; loss: (total,
    dL_da or None); shortcut: delta^L = a^L - y; optimizer: (kernel, constants, number of state arrays,
    decoupled weight decay); parts: ((name, kernel), ...) of the shared rules the template names (difference,
    batch_scale, add_l2, shrink, clip_to, flush); flush_every: optimizers.FLUSH_EVERY.
    """

    activations: tuple
    loss: tuple
    shortcut: bool
    optimizer: tuple
    parts: tuple
    flush_every: int


def cache_folder() -> Path | None:
    """Where the generated steps are written (numba caches their machine code beside them): a deltaprop-steps
    folder in NUMBA_CACHE_DIR when set, else in the user's cache folder; None when none is writable."""
    base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    folder = Path(base) / "deltaprop-steps"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


# Compiling a step takes seconds, once: numba keeps the machine code in its cache. Where it cannot (no writable
# folder), every process would pay that again, so training/fused.py keeps the readable step there.
CACHED = cache_folder() is not None
_assembled: dict = {}  # Recipe -> its compiled train, in this process


def assemble(recipe: Recipe):
    """The compiled ``train`` of step_template.py for this recipe (made once per process; from disk after)."""
    train = _assembled.get(recipe)
    if train is None:
        source, bindings = render(recipe)
        module = _load(source, _digest(source, bindings))
        module.__dict__.update({name: compiled(kernel) for name, kernel in bindings.items()})
        for name in STEP_FUNCTIONS:  # compiled from the module's file, so numba's cache applies
            module.__dict__[name] = compiled(module.__dict__[name])
        train = _assembled[recipe] = module.train
    return train


def failed(exc: BaseException, rules: dict) -> Exception:
    """The error for a step numba could not compile (ERRORS, raised by its first call): it names the rule of
    ``rules`` (its name -> its kernel functions) whose kernel numba's message names first (the innermost call),
    in place of numba's traceback through the generated step."""
    named = {fn.__name__: rule for rule, functions in rules.items() for fn in functions if fn is not None}
    for found in re.finditer(r"<function (\w+) at ", str(exc)):
        if found.group(1) in named:
            return refused(named[found.group(1)], exc)
    return refused("a rule of this network", exc)


def render(recipe: Recipe) -> tuple[str, dict]:
    """The step's source (the template, then this run's constants and dispatch) and the kernels it names."""
    bindings = {"batch_sum": kernels.batch_sum, "loss_total": recipe.loss[0], **dict(recipe.parts)}
    bindings["loss_dL_da"] = recipe.loss[1] or bindings["difference"]  # (not called for a shortcut pair)
    bindings["opt_kernel"], bindings["opt_constants"], n_slots, decoupled = recipe.optimizer
    lines = ["", "", "# --- this run's part (compiled_step.render)",
             f"SHORTCUT, DECOUPLED, FLUSH_EVERY = {recipe.shortcut}, {decoupled}, {recipe.flush_every}"]
    forwards = ["", "", "def activate(z, b, a, code):", '    """z += b, then a = sigma(z), for activation code."""']
    chains = ["", "", "def times_sigma_prime(g, z, code):", '    """g ⊙ sigma\'(z) in place, for activation code."""',
              "    pass"]
    for code, (forward, chain) in enumerate(recipe.activations):
        bindings[f"forward_{code}"] = forward
        forwards += [f"    {'if' if code == 0 else 'elif'} code == {code}:", f"        forward_{code}(z, b, a)"]
        if chain is not None:
            bindings[f"chain_{code}"] = chain
            chains += [f"    if code == {code}:", f"        chain_{code}(g, z)"]
    flushes = ["", "", "def flush_state(state, tiny):", '    """Zero the state entries about to turn subnormal."""',
               "    pass"] + [f"    flush(state[{i}], tiny)" for i in range(n_slots)]
    return TEMPLATE.read_text() + "\n".join(lines + forwards + chains + flushes) + "\n", bindings


def _digest(source: str, bindings: dict) -> str:
    """A hash of the step's text and of every kernel's source (and numba's version): its file's name."""
    import numba

    text = [source, numba.__version__]
    for name in sorted(bindings):
        kernel = bindings[name]
        try:
            text.append(f"{name}={kernel.__module__}.{kernel.__qualname__}\n{inspect.getsource(kernel)}")
        except (OSError, TypeError):  # no source to read (made at run time): its code object's bytes
            text.append(f"{name}={kernel.__code__.co_code.hex()}{kernel.__code__.co_consts}")
    return hashlib.sha256("\n".join(text).encode()).hexdigest()[:20]


def _load(source: str, digest: str):
    """The step's module, from its file in cache_folder() (written once, atomically; its time stamp kept, which
    numba's cache index checks)."""
    folder = cache_folder()
    if folder is None:
        raise RuntimeError("no writable folder for the compiled training step")  # fused.py checks CACHED first
    path = folder / f"step_{digest}.py"
    if not path.exists() or path.read_text() != source:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(source)
        os.replace(partial, path)
    spec = importlib.util.spec_from_file_location(f"deltaprop_step_{digest}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba finds a function's module by name (its cache's environment too)
    spec.loader.exec_module(module)
    return module


def compiled_before(train) -> bool:
    """True when ``train`` is loaded in this process or numba's cache on disk holds it (False: its first call
    compiles it). A best guess from numba's index file; True when numba's internals do not say."""
    if train.signatures:
        return True
    try:
        return os.path.exists(train._cache._cache_file._index_path)
    except AttributeError:
        return True
