"""Data-parallel training over MPI, in real jobs: mpiexec (the mpich wheel's) launches 2 or 3 ranks of
`python -m mpi4py` (an exception in one rank aborts them all) on this 2-core machine (oversubscribed)."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason='data-parallel training needs the [mpi] extra: pip install "deltaprop[mpi]"')
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (the mpich wheel of the [mpi] extra brings one)")

CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    from mpi4py import MPI
    import deltaprop as dp
    from deltaprop import distributed

    out, optimizer, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    comm = MPI.COMM_WORLD
    if mode == "no-allreduce":  # the negative control: ranks step on their own gradients
        distributed.MPIComm.sum = lambda self, array: array
    rng = np.random.default_rng(0)
    X, y, w = rng.standard_normal((203, 6)), rng.integers(0, 3, 203), rng.random(203) + 0.5

    def network(seed):
        return dp.Network([dp.Dense(6, 8, "tanh"), dp.Dense(8, 3, "softmax")], loss="cross_entropy",
                          dtype="float64", seed=seed)

    def make_optimizer():
        return dp.Adam(0.01) if optimizer == "adam" else dp.SGD(0.1, momentum=0.9)

    class Die(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            if mode == "kill" and comm.rank == 1 and epoch == 1:
                os.kill(os.getpid(), 9)

    options = dict(epochs=3, batch_size=32, sample_weight=w, validation_split=0.2, verbose=0)
    net = network(seed=1 + comm.rank)  # different seeds: the broadcast from rank 0 must make them equal
    history = net.fit(X, y, optimizer=make_optimizer(), comm=comm, callbacks=[Die()], **options)
    np.savez(f"{out}/rank{comm.rank}.npz", **{f"{l}.{n}": v for (l, n), v in net.params().items()},
             loss=history["loss"], val_loss=history["val_loss"], accuracy=history["accuracy"])
    if comm.rank == 0:  # the one-process run on the same global batches
        alone = network(seed=1)
        history = alone.fit(X, y, optimizer=make_optimizer(), comm=MPI.COMM_SELF, **options)
        np.savez(f"{out}/alone.npz", **{f"{l}.{n}": v for (l, n), v in alone.params().items()},
                 loss=history["loss"], val_loss=history["val_loss"], accuracy=history["accuracy"])
""")


def launch(tmp_path, n, optimizer="adam", mode="normal", timeout=120):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    started = time.monotonic()
    result = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m", "mpi4py", str(script), str(tmp_path),
                             optimizer, mode], capture_output=True, text=True, timeout=timeout, env=env)
    return result, time.monotonic() - started


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("n", [2, 3])
def test_ranks_train_the_one_process_weights(tmp_path, n, optimizer):
    """203 rows in global batches of 32 (the last 11 rows do not divide by 2 or 3), sample weights, a validation
    split: after 3 epochs in float64 every rank holds the one-process weights within 1e-10 relative, the ranks
    hold the same bits, and the logged loss, accuracy and validation loss are the one-process figures."""
    result, _ = launch(tmp_path, n, optimizer)
    assert result.returncode == 0, result.stderr[-3000:]
    alone = np.load(tmp_path / "alone.npz")
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(n)]
    for key in alone.files:
        for rank in ranks[1:]:
            assert rank[key].tobytes() == ranks[0][key].tobytes(), key  # bitwise equal across ranks
        np.testing.assert_allclose(ranks[0][key], alone[key], rtol=1e-10, atol=1e-14, err_msg=key)


def test_the_same_check_catches_ranks_that_do_not_sum_their_gradients(tmp_path):
    """The negative control: without the Allreduce each rank steps on its own rows; the end-of-epoch digest
    comparison must stop the job with a non-zero exit naming the cause."""
    result, _ = launch(tmp_path, 2, mode="no-allreduce")
    assert result.returncode != 0
    assert "differ between ranks" in result.stderr + result.stdout


def test_a_killed_rank_ends_the_whole_job_quickly(tmp_path):
    """Rank 1 is killed (SIGKILL) after epoch 2 while rank 0 waits in the next Allreduce: the job must end,
    non-zero, in well under 60 s, not hang."""
    result, seconds = launch(tmp_path, 2, mode="kill", timeout=120)
    assert result.returncode != 0
    assert seconds < 60


def test_mpiexec_deltaprop_train_writes_once_what_one_process_writes(tmp_path):
    """`mpiexec -n 2 deltaprop train`: one set of output lines and files, from rank 0, whose history and
    weights are those of the one-process run (float64, 1e-9 relative)."""
    import deltaprop as dp
    from test_cli import deltaprop

    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    options = ["--epochs", "3", "--dtype", "float64", "--no-plots", "--batch-size", "50"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    both = subprocess.run([MPIEXEC, "-n", "2", exe, "train", *options, "--out", tmp_path / "two"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert both.returncode == 0, both.stderr[-3000:]
    assert both.stdout.count("wrote ") == 1 and both.stdout.count("epoch   3") == 1
    deltaprop("train", *options, "--out", tmp_path / "one")
    two, one = (np.genfromtxt(tmp_path / run / "history.csv", delimiter=",", names=True) for run in ("two", "one"))
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(two[name], one[name], rtol=1e-9, err_msg=name)
    a, b = (dp.load(tmp_path / run / "model.safetensors") for run in ("two", "one"))
    for key, value in b.params().items():
        np.testing.assert_allclose(a.params()[key], value, rtol=1e-9, atol=1e-12)
