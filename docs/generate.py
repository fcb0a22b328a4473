# ruff: noqa: E501  (the page template holds long Markdown table rows)
"""Regenerate docs/notes-to-code.md from the source and from `deltaprop explain`.

    python docs/generate.py

tests/test_docs.py fails when the page is out of date.
"""

from pathlib import Path

import deltaprop as dp
from deltaprop.explain import notes_example, render_markdown

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = """# From the notes to the code

[The derivation](derivation.md) works backpropagation out by hand and collapses it to four
equations. deltaprop computes exactly those four: the loop over the layers in the derivation's
order is [`backward()`](reference.md#deltaprop.backprop.backward) in `src/deltaprop/backprop.py`,
and a Dense layer's own lines of (2)-(4) are `Dense.backward` in `src/deltaprop/layers/dense.py`.
This page is generated from the source by `python docs/generate.py` (a test fails when it is out
of date): it quotes each line that computes an equation with its line number, puts the
derivation and the code side by side, then shows every number of the derivation's 2-2-2 example
as `deltaprop explain` computes it.

## Each equation's line

{lines}
## The four equations, line by line

| notes | the line | shapes |
|---|---|---|
| (1) `delta^L = dL/da^L ⊙ sigma'(z^L)` | `delta[L] = output_delta(loss, layers[L - 1].activation, z[L], a[L], y, weights, ...)` in `backward()` | `(m, n_L)` |
| (2) `delta^l = (delta^{{l+1}} (W^{{l+1}})^T) ⊙ sigma'(z^l)` | `ops.gemm(delta, self.W.T)` in `Dense.backward` (`dL/da^{{l-1}}`), then `layers[l - 2].delta(g, z[l - 1], ...)` in `backward()`: `g ⊙ sigma'(z^{{l-1}})` (`Layer.delta`, `layers/base.py`) | `(m, n_{{l-1}})` |
| (3) `dL/dW^l = (a^{{l-1}})^T delta^l` | `grads["W"] = ops.gemm(a_prev.T, delta)` in `Dense.backward` | `(n_{{l-1}}, n_l)`, the shape of `W^l` |
| (4) `dL/db^l = sum over the batch of delta^l` | `grads["b"] = ops.batch_sum(delta)` in `Dense.backward` | `(n_l,)` |

The loop runs `l = L, L-1, ..., 1`; equation (2) is written for the layer below the current one
(`l - 1`), which is the notes' `delta^l` from `delta^{{l+1}}` with the index shifted by one. The
input layer (`l = 0`) has no delta: the loop stops at `l = 1`.

The loop, from line {line} of `backprop.py`:

<!-- code:begin -->
<!-- no-run: quoted from the source, a fragment of backward() -->
{code}<!-- code:end -->

A Dense layer's part, from line {dense_line} of `layers/dense.py`:

<!-- dense:begin -->
<!-- no-run: quoted from the source, a method of Dense -->
{dense}<!-- dense:end -->

### The details the four lines rely on

* `output_delta` (`backprop.py`) is equation (1). For softmax + cross-entropy and sigmoid + binary
  cross-entropy the `sigma'` factor cancels and it returns `(a^L - y) / m`; every other pairing
  (sigmoid + mse as in the notes, softmax + mse, ...) takes the general product
  `dL/da^L ⊙ sigma'(z^L)`, never both.
* `Layer.delta(g, z, ...)` is `g ⊙ sigma'(z)` (`times_sigma_prime` in `activations/base.py`), with
  `sigma'` evaluated at `z`, not at `a`. For softmax, whose `sigma'` is a Jacobian, it is the
  product `a ⊙ (g - rowsum(g ⊙ a))` of the notes.
* `ops` is the network's array backend (`ops/`), chosen once: `ops.gemm(A, B)` is the matrix
  product `A @ B`, `ops.batch_sum(delta)` is `delta.sum(axis=0)`, the sum over the rows of the
  batch. `NumpyOps` (`ops/numpy_ops.py`) is each of them as the NumPy lines you read; with numba
  installed, `NumbaOps` runs the element-wise steps as compiled one-pass loops: each rule's
  kernel, written beside its NumPy lines (`activations/`: `z = a W + b` with sigma, and
  `g ⊙ sigma'(z)`; `losses/`; `optimizers/`; `regularizer.py`), and the shortcut's
  `(a^L - y) / m` and the batch sum of (4) (`ops/kernels.py`). They compute the same numbers
  (the tests hold them to it, bit for bit where no exp or log is involved);
  `DELTAPROP_KERNELS=numpy` or `Network(..., ops="numpy")` runs everything as the NumPy you read.
  `Network(..., ops="array_api")` runs the same lines on the arrays it is given (array_api_strict,
  PyTorch tensors, CuPy), each step in its fresh form (`sigmoid(z)`, `g * sigma_prime(z)`).
* For small networks and batches (every product of a step at most 2^18 multiply-adds: the
  64-64-10 digits network at 32 rows), numba also runs whole training steps in one compiled call
  (`ops/step_template.py`, assembled from the rules' kernels by `ops/compiled_step.py`, chosen by
  `training/fused.py`), because there the Python between twenty small calls costs more than the
  arithmetic. Its `backward` is equations (3), (4) and (2) again, as compiled lines with the same
  BLAS products and the same kernels; the loop above stays the reference, and
  `tests/test_compiled_step.py` holds the compiled steps to it (the gradients against
  `backward()` to 1e-12; trained weights bit for bit for relu and softmax).
* `dL/da^L` (`losses/`) carries the `1/m` of the batch average, so `dW` and `db` are the
  gradients of the averaged loss.
* Dropout, when a layer has it, multiplies `g` by the layer's mask: the forward pass multiplied
  `a^{{l-1}}` by the same mask.
* Called as `net.backward(trace, y)`, every gradient is a fresh array; the training loop passes
  preallocated views of one gradient vector instead (`out=`), so the optimizer updates every
  parameter in a few whole-vector operations.

## The notes' example, computed

`deltaprop explain` (or `dp.explain(net, x, y)` in Python) runs the derivation on one sample and
prints each step with its numbers; `--format md` gives the Markdown below, `--format html` a
page with MathML and a drawing of the network. For the notes' 2-2-2 sigmoid network with the
squared error:

<!-- explain:begin -->
{explain}<!-- explain:end -->
"""


def backward_lines() -> tuple[int, str]:
    """The four-equation part of backward(), and its first line number."""
    source = (ROOT / "src" / "deltaprop" / "backprop.py").read_text(encoding="utf-8")
    start = source.index("    delta[L] = output_delta(")
    end = source.index("    return grads\n")
    return source[:start].count("\n") + 1, "```python\n" + source[start:end]


def dense_lines() -> tuple[int, str]:
    """Dense.backward, and its first line number."""
    source = (ROOT / "src" / "deltaprop" / "layers" / "dense.py").read_text(encoding="utf-8")
    start = source.index("    def backward(")
    end = source.index("        return None\n", start) + len("        return None\n")
    return source[:start].count("\n") + 1, "```python\n" + source[start:end]


# (anchor, what the derivation calls it, file under src/deltaprop, a unique piece of the line that computes it)
EQUATIONS = [
    ("eq-forward", "$z^l = a^{{l-1}} W^l + b^l$, $a^l = \\sigma(z^l)$", "layers/dense.py", "z = ops.gemm(a_prev, self.W, out=z)"),
    ("eq-1", "(1) $\\delta^L = \\frac{{\\partial L}}{{\\partial a^L}} \\odot \\sigma'(z^L)$", "backprop.py",
     "delta[L] = output_delta("),
    ("eq-2a", "(2), first factor: $\\delta^{{l+1}} (W^{{l+1}})^T$", "layers/dense.py", "return ops.gemm(delta, self.W.T"),
    ("eq-2b", "(2), times $\\sigma'(z^l)$", "backprop.py", "delta[l - 1] = layers[l - 2].delta("),
    ("eq-3", "(3) $\\frac{{\\partial L}}{{\\partial W^l}} = (a^{{l-1}})^T \\delta^l$", "layers/dense.py",
     'grads["W"] = ops.gemm(a_prev.T, delta'),
    ("eq-4", "(4) $\\frac{{\\partial L}}{{\\partial b^l}} = \\sum_{{\\text{{batch}}}} \\delta^l$", "layers/dense.py",
     'grads["b"] = ops.batch_sum(delta'),
]


def equation_lines() -> str:
    """One anchored entry per equation: the file, the line number and the line itself, found in the source."""
    entries = []
    for anchor, name, file, piece in EQUATIONS:
        source = (ROOT / "src" / "deltaprop" / file).read_text(encoding="utf-8").splitlines()
        (number,) = [i + 1 for i, line in enumerate(source) if piece in line]  # exactly one line holds it
        entries.append(f'<a id="{anchor}"></a>\n{name.format()}: `src/deltaprop/{file}`, line {number}\n\n'
                       f"    {source[number - 1].strip()}\n")
    return "\n".join(entries)


def page() -> str:
    line, code = backward_lines()
    dense_line, dense = dense_lines()
    net, x, y = notes_example()
    return TEMPLATE.format(lines=equation_lines(), line=line, code=code + "```\n", dense_line=dense_line, dense=dense + "```\n",
                           explain=render_markdown(dp.explain(net, x, y), level=3))


if __name__ == "__main__":
    (ROOT / "docs" / "notes-to-code.md").write_text(page(), encoding="utf-8")
