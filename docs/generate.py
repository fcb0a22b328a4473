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

The notes (`shared/backprop-notes.md`) derive backpropagation by hand and collapse it to four
equations. deltaprop computes exactly those four, in one short function,
`backward()` in [`src/deltaprop/backprop.py`](../src/deltaprop/backprop.py). This page puts the
notes and the code side by side, then shows every number of the notes' own 2-2-2 example as
`deltaprop explain` computes it.

## The four equations, line by line

| notes | the line in `backward()` | shapes |
|---|---|---|
| (1) `delta^L = dL/da^L ⊙ sigma'(z^L)` | `delta[L] = output_delta(loss, sigma[L], z[L], a[L], y, weights)` | `(m, n_L)` |
| (2) `delta^l = (delta^{{l+1}} (W^{{l+1}})^T) ⊙ sigma'(z^l)` | `g = matmul(delta[l], W[l].T)` then `delta[l - 1] = sigma[l - 1].times_sigma_prime(g, z[l - 1])` | `(m, n_{{l-1}})` |
| (3) `dL/dW^l = (a^{{l-1}})^T delta^l` | `dW[l] = matmul(a[l - 1].T, delta[l], out=dW[l])` | `(n_{{l-1}}, n_l)`, the shape of `W^l` |
| (4) `dL/db^l = sum over the batch of delta^l` | `db[l] = batch_sum(delta[l], out=db[l])` | `(n_l,)` |

The loop runs `l = L, L-1, ..., 1`; equation (2) is written for the layer below the current one
(`l - 1`), which is the notes' `delta^l` from `delta^{{l+1}}` with the index shifted by one. The
input layer (`l = 0`) has no delta: the loop stops at `l = 1`.

The code, from line {line} of `backprop.py`:

<!-- code:begin -->
{code}<!-- code:end -->

### The details the four lines rely on

* `output_delta` (same file) is equation (1). For softmax + cross-entropy and sigmoid + binary
  cross-entropy the `sigma'` factor cancels and it returns `(a^L - y) / m`; every other pairing
  (sigmoid + mse as in the notes, softmax + mse, ...) takes the general product
  `dL/da^L ⊙ sigma'(z^L)`, never both.
* `times_sigma_prime(g, z)` (`activations.py`) is `g ⊙ sigma'(z)`, with `sigma'` evaluated at `z`,
  not at `a`. For softmax, whose `sigma'` is a Jacobian, it is the product
  `a ⊙ (g - rowsum(g ⊙ a))` of the notes.
* `matmul(A, B)` (`products.py`) is the matrix product `A @ B` (NumPy's `np.dot` for small
  products, whose call is cheaper, `np.matmul` for large ones); `batch_sum(delta)` (same file as
  `backward`) is `delta.sum(axis=0)`, the sum over the rows of the batch.
* `dL/da^L` (`losses.py`) carries the `1/m` of the batch average, so `dW` and `db` are the
  gradients of the averaged loss.
* Dropout, when a layer has it, multiplies `g` by the layer's mask: the forward pass multiplied
  `a^{{l-1}}` by the same mask.
* `out=dW[l]`: called as `net.backward(trace, y)`, the lists start empty and NumPy returns fresh
  arrays; the training loop passes preallocated views of one gradient vector instead, so the
  optimizer updates every parameter in a few whole-vector operations.
* In the training loop, with numba installed, a few element-wise steps run as compiled one-pass
  loops (`fused.py`): the shortcut's `(a^L - y) / m`, relu's `g ⊙ sigma'(z)`, the sum over the
  batch in (4) (`batch_sum`), `z = a W + b` with relu or softmax, and the optimizer step. They
  compute the same numbers as the NumPy lines they replace (the tests hold them to it, bit for
  bit where no exp or log is involved); the matrix products and the four lines above are the
  same either way.
  `DELTAPROP_KERNELS=numpy` runs everything as the NumPy you read.

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


def page() -> str:
    line, code = backward_lines()
    net, x, y = notes_example()
    return TEMPLATE.format(line=line, code=code + "```\n", explain=render_markdown(dp.explain(net, x, y), level=3))


if __name__ == "__main__":
    (ROOT / "docs" / "notes-to-code.md").write_text(page(), encoding="utf-8")
