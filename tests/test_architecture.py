"""The shape of the house: imports point down (no cycle, no deferred import hiding one), layers declare their
parameters (a new kind is one class plus its registration), and model files of the earlier format still load."""

import ast
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.layers import LAYERS, Layer, register_layer
from helpers import make_net

SRC = Path(__file__).resolve().parents[1] / "src"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# deferred imports of deltaprop's own modules that exist to keep an optional library out of `import deltaprop`
LAZY = {("deltaprop", "deltaprop.estimators"): "scikit-learn", ("deltaprop", "deltaprop.export.onnx"): "onnx",
        ("deltaprop.cli.export", "deltaprop.export.onnx"): "onnx",
        ("deltaprop.ops.numba_ops", "deltaprop.ops.compiled_step"): "numba",
        ("deltaprop.ops.numba_ops", "deltaprop.ops.jit"): "numba",
        ("deltaprop.activations.base", "deltaprop.ops.jit"): "numba"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported deltaprop module, deferred?) for every import in the file; ``from pkg import name`` counts as
    pkg.name when that is a module, else pkg; importing a.b.c also runs a and a.b (their __init__)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if _exists(f"{base}.{alias.name}") else base for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            deferred = id(node) not in top_level
            if target.startswith("deltaprop") and deferred:
                yield target, True
            elif target.startswith("deltaprop"):
                parts = target.split(".")
                for i in range(2, len(parts) + 1):  # the packages on the way run first (the root is the facade)
                    yield ".".join(parts[:i]), False


def _exists(module: str) -> bool:
    base = SRC / Path(*module.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _graph() -> dict:
    graph = {}
    for path in sorted((SRC / "deltaprop").rglob("*.py")):
        name = _module_name(path)
        graph[name] = set()
        for target, deferred in _imports(path):
            if target == name or name.startswith(target + "."):
                continue  # a module's own packages ran before it (importing from them adds no edge)
            if deferred:
                assert (name, target) in LAZY, f"{name} imports {target} inside a function: move it to the top"
            else:
                graph[name].add(target)
    return graph


def test_the_import_graph_has_no_cycle():
    """A cycle here is what the deferred imports of the past hid: each module must be importable on its own,
    its dependencies first. The root package is the public facade (it imports everything), left out."""
    graph = _graph()
    assert "deltaprop.network" in graph and "deltaprop.ops.numba_ops" in graph
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt])
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_layers_point_down():
    """The model does not import the CLI, and the trainer, the backend and the layers never import the model."""
    graph = _graph()

    def reaches(start, goal, seen=None):
        seen = seen or set()
        return start == goal or any(reaches(n, goal, seen | {start}) for n in graph.get(start, ()) if n not in seen)

    for low in ("deltaprop.training.loop", "deltaprop.ops", "deltaprop.layers", "deltaprop.backprop", "deltaprop.io"):
        assert not reaches(low, "deltaprop.network"), f"{low} imports the model"
    assert not reaches("deltaprop.network", "deltaprop.cli")
    assert not any(reaches(f"deltaprop.ops.{m}", "deltaprop.backprop") for m in ("numpy_ops", "numba_ops"))


class NoBias(Layer):
    """z^l = a^{l-1} W^l: a layer kind without a bias, written for this test in one class."""

    kind = "test_no_bias"
    decayed = ("W",)

    def param_shapes(self):
        return {"W": (self.n_in, self.n_out)}

    def init_param(self, name, rng):
        return rng.uniform(-0.5, 0.5, size=(self.n_in, self.n_out))

    def pre_activation(self, a_prev, ops, out=None):
        return ops.gemm(a_prev, self.W, out=out)

    def backward(self, delta, a_prev, grads, ops, below, out=None):
        grads["W"] = ops.gemm(a_prev.T, delta, out=grads.get("W"))
        return ops.gemm(delta, self.W.T, out=out) if below else None


class Scale(Layer):
    """z^l = c a^{l-1}, c fixed: a layer kind with no parameters at all (n_in == n_out)."""

    kind = "test_scale"

    def __init__(self, n, activation="identity", factor=2.0):
        super().__init__(n, n, activation)
        self.factor = float(factor)

    def param_shapes(self):
        return {}

    def pre_activation(self, a_prev, ops, out=None):
        return np.multiply(a_prev, self.factor, out=out)

    def backward(self, delta, a_prev, grads, ops, below, out=None):
        return np.multiply(delta, self.factor, out=out) if below else None

    def config(self):
        return {**super().config(), "factor": self.factor}

    @classmethod
    def from_config(cls, spec):
        return cls(spec["n_in"], spec["activation"], spec["factor"])


@pytest.fixture
def registered():
    for cls in (NoBias, Scale):
        register_layer(cls)
    yield
    for cls in (NoBias, Scale):
        LAYERS.pop(cls.kind)


def test_new_layer_kinds_train_gradcheck_save_and_load(registered, tmp_path):
    """Two kinds defined above, each one class plus register_layer: the flat vector, the optimizer, the
    workspace, gradcheck and the model file take them from what they declare."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((120, 4)), rng.integers(0, 3, 120)
    net = dp.Network([NoBias(4, 6, "tanh"), Scale(6, "sigmoid", 0.5), dp.Dense(6, 3, "softmax")],
                     loss="cross_entropy", seed=1)
    assert set(net.params()) == {(1, "W"), (3, "W"), (3, "b")}
    report = dp.gradcheck(net, X[:10], y[:10])
    assert report.ok and {(row.layer, row.param) for row in report.rows} == set(net.params())
    before = net.loss(X, y)
    net.fit(X, y, epochs=30, batch_size=16, optimizer=dp.AdamW(0.01), verbose=0)
    assert net.loss(X, y) < 0.8 * before
    net.save(tmp_path / "m.safetensors")
    back = dp.load(tmp_path / "m.safetensors")
    assert [type(layer) for layer in back.layers] == [NoBias, Scale, dp.Dense] and back.layers[1].factor == 0.5
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    back.fit(X, y, epochs=1, verbose=0)  # the optimizer state came back keyed by what the layers declare


def test_an_unregistered_kind_in_a_file_is_refused_by_name(registered, tmp_path):
    net = dp.Network([NoBias(2, 2, "tanh"), dp.Dense(2, 1, "sigmoid")], loss="binary_cross_entropy", seed=0)
    net.save(tmp_path / "m.safetensors")
    LAYERS.pop(NoBias.kind)
    try:
        with pytest.raises(dp.ModelFileError, match="kind 'test_no_bias', which is not registered"):
            dp.load(tmp_path / "m.safetensors")
    finally:
        register_layer(NoBias)


def test_a_model_file_of_the_earlier_format_still_loads_and_predicts():
    """Written by the code before the ops / training-state change (tests/fixtures, never regenerated): its
    predictions, classes, history and optimizer come back."""
    expected = np.load(FIXTURES / "model-v1-expected.npz")
    net = dp.load(FIXTURES / "model-v1.safetensors")
    _assert_same(net.predict_proba(expected["X"]), expected["proba"])
    assert net.classes.tolist() == ["cat", "dog", "emu"] and net.dtype == np.float32
    assert net.training.epoch == 4 and len(net.training.history["loss"]) == 4 and net.training.optimizer.t == 12


def test_a_checkpoint_of_the_earlier_format_resumes_to_the_uninterrupted_run():
    """The fixture checkpoint (epoch 3 of 4, with early stopping's record) continued for one epoch gives the
    weights the uninterrupted run saved, to the last bit (with the kernels it was written with)."""
    data = np.load(FIXTURES / "model-v1-expected.npz")
    resumed = dp.load(FIXTURES / "checkpoint-v1.safetensors")
    assert resumed.training.epoch == 3 and resumed.training.early_stopping["monitor"] == "val_loss"
    resumed.fit(data["X64"], data["y"], epochs=1, batch_size=16, validation_split=0.25,
                callbacks=[dp.EarlyStopping(monitor="val_loss", patience=50)], verbose=0)
    final = dp.load(FIXTURES / "model-v1.safetensors")
    for key, value in final.params().items():
        _assert_same(resumed.params()[key], value)


def _assert_same(actual, expected):
    """The fixtures were written with numba's kernels: the same bits with them; with NumPy alone
    (DELTAPROP_KERNELS=numpy) softmax's exp may differ in the last place of float32 (rtol 1e-5)."""
    if dp.ops.default_ops().name == "numba":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7)


def test_the_model_holds_no_training_state_until_fit():
    net = make_net([3, 4, 2], "tanh", "softmax", "cross_entropy")
    assert net.training is None and not hasattr(net, "optimizer") and not hasattr(net, "history")
    net.fit(np.ones((4, 3)), [0, 1, 0, 1], epochs=2, verbose=0)
    assert net.training.epoch == 2 and net.training.optimizer.t == 2


# The engine's modules: every array they make comes from the network's backend (``ops.alloc``), so that a backend
# on a device (ArrayAPIOps) holds every buffer of a pass where it computes.
ENGINE = ["params.py", "workspace.py", "network.py", "backprop.py",
          *(f"{package}/{path.name}" for package in ("activations", "optimizers", "losses")
            for path in sorted((SRC / "deltaprop" / package).glob("*.py"))),
          "layers/base.py", "layers/dense.py", "training/loop.py", "training/trainer.py", "regularizer.py"]
ALLOCATORS = {"empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like", "eye",
              "ndarray"}
# (module, function) -> why it may make a NumPy array itself: host memory at the edges, never a pass's buffer
HOST_ALLOCATIONS = {
    ("network.py", "host_buffer"): "SciPy densifies a sparse X's rows only into a NumPy buffer (then sent over)",
    ("layers/dense.py", "init_param"): "initial values are drawn on the host (the same draws on every backend)",
    ("activations/base.py", "_check_kernel"): "a registered kernel is checked once, on host probe arrays, when "
                                              "registered",
    ("activations/base.py", "_check_compiles"): "a registered kernel is compiled once, on host probe arrays, "
                                                "when registered",
    ("losses/cross_entropy.py", "softmax_cross_entropy_total"): "the kernel's 'no weights' marker: a compiled "
                                                                "kernel (NumbaOps) takes host arrays only",
}


def _allocations(path: Path):
    """(function name, allocator) for each call np.<allocator>(...) in the file (function: the innermost def)."""
    def visit(node, name):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and \
                    isinstance(child.func.value, ast.Name) and child.func.value.id in ("np", "numpy") and \
                    child.func.attr in ALLOCATORS:
                yield name, child.func.attr
            yield from visit(child, inner)

    yield from visit(ast.parse(path.read_text()), "<module>")


def test_the_engine_allocates_through_its_backend():
    """No engine module calls np.empty / np.zeros / ... itself (outside the justified host allocations): a
    buffer made so would live in host memory while the backend's passes run on a device."""
    package = SRC / "deltaprop"
    found = {(module, func, alloc) for module in ENGINE for func, alloc in _allocations(package / module)}
    stray = sorted(f"{module}:{func} calls np.{alloc}" for module, func, alloc in found
                   if (module, func) not in HOST_ALLOCATIONS)
    assert not stray, "allocate through ops.alloc (or justify a host allocation in HOST_ALLOCATIONS):\n" + \
        "\n".join(stray)
    assert {(module, func) for module, func, _ in found} == set(HOST_ALLOCATIONS), "an allow-list entry is stale"


def test_the_rule_packages_register_in_the_order_help_and_info_list():
    """Each rule family's module registers its rules when its package's __init__ imports it: that import order
    (kept out of import sorting) is the registries' order, which help texts and `deltaprop info` show."""
    from deltaprop.activations import ACTIVATIONS
    from deltaprop.losses import LOSSES
    from deltaprop.optimizers import OPTIMIZERS

    assert list(ACTIVATIONS)[:9] == ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity",
                                     "softmax", "mish"]
    assert list(LOSSES)[:3] == ["mse", "cross_entropy", "binary_cross_entropy"]
    assert list(OPTIMIZERS)[:4] == ["sgd", "adam", "adamw", "rmsprop"]


def test_the_rule_packages_import_only_below_them():
    """activations/, losses/, optimizers/ hold the rules: they import the arrays, errors, ops, the regularizer and
    each other (losses use activations' functions, the optimizers' flush the step mask), never the model, the
    training loop or the CLI."""
    graph = _graph()
    below = ("deltaprop.arrays", "deltaprop.errors", "deltaprop.ops", "deltaprop.regularizer",
             "deltaprop.activations", "deltaprop.losses", "deltaprop.optimizers")
    rules = [name for name in graph if name.split(".")[:2] in (["deltaprop", "activations"], ["deltaprop", "losses"],
                                                                ["deltaprop", "optimizers"])]
    assert len(rules) >= 15
    stray = sorted(f"{name} imports {target}" for name in rules for target in graph[name]
                   if not any(target == b or target.startswith(b + ".") for b in below))
    assert not stray, "\n".join(stray)


# What each path must not import (run in a fresh interpreter, sys.modules read after it): `import deltaprop` loads
# none of the optional libraries; `deltaprop predict` on a one-row table runs the model on NumPy's backend; a table's
# `deltaprop train` splits and cross-validates with data/splits.py and counts its confusion matrix itself
# (scikit-learn's model_selection import alone would cost more than the run's 1 s budget: benchmarks/startup.py).
HEAVY = ("sklearn", "matplotlib", "scipy", "numba")
PATH_SCRIPT = """
import sys
from deltaprop.cli import main
if sys.argv[1:]:
    assert main(sys.argv[1:]) == 0
print("\\nmodules:", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _top_modules(tmp_path, *args) -> set:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", PATH_SCRIPT, *map(str, args)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.rpartition("\nmodules:")[2].split())


def test_import_deltaprop_and_predict_leave_the_heavy_libraries_unimported(tmp_path):
    assert not _top_modules(tmp_path) & set(HEAVY)
    rng = np.random.default_rng(0)
    rows = [f"{x:.3f},{z},{'ab'[int(x > 0)]}" for x, z in zip(rng.normal(size=60), rng.choice(["u", "v"], 60),
                                                                strict=True)]
    (tmp_path / "t.csv").write_text("x,z,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "one.csv").write_text("x,z\n0.5,u\n")
    trained = _top_modules(tmp_path, "train", "--data", "t.csv", "--target", "label", "--out", "run", "--quiet")
    assert "sklearn" not in trained and "matplotlib" in trained  # (plots on, as by default)
    predicted = _top_modules(tmp_path, "predict", "run/model.safetensors", "--data", "one.csv")
    assert not predicted & set(HEAVY), predicted & set(HEAVY)
