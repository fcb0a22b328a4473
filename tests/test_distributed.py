"""Data-parallel training over MPI, in real jobs: mpiexec (the mpich wheel's) launches 2 or 3 ranks of
`python -m mpi4py` (an exception in one rank aborts them all) on this 2-core machine (oversubscribed)."""

import json
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
pytestmark = [pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (the mpich wheel of the [mpi] extra brings one)"),
              pytest.mark.slow]  # real mpiexec jobs: not in the quick tier

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
        return dp.Network([dp.Dense(6, 8, "tanh", dropout=0.25), dp.Dense(8, 3, "softmax")], loss="cross_entropy",
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
    """203 rows in global batches of 32 (the last 11 rows do not divide by 2 or 3), sample weights, dropout (every
    rank uses its rows of the one-process masks), a validation split: after 3 epochs in float64 every rank holds
    the one-process weights within 1e-10 relative, the ranks hold the same bits,
    and the logged loss, accuracy and validation loss are the one-process figures."""
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


STREAM_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from mpi4py import MPI
    import deltaprop as dp
    from deltaprop.data.sources import NpySource
    from deltaprop.training.streaming import evaluate_stream

    folder, comm, read = sys.argv[1], MPI.COMM_WORLD, []
    chunks = NpySource.chunks
    NpySource.chunks = lambda self, s, rows: (read.append(s), chunks(self, s, rows))[1]  # which shards a rank reads
    data = dp.data.stream((f"{folder}/X_*.npy", f"{folder}/y_*.npy"), chunk_rows=50, shuffle_buffer=100,
                          validation_fraction=0.1)
    net = dp.Network([dp.Dense(5, 16, "tanh", dropout=0.2), dp.Dense(16, 3, "softmax")], loss="cross_entropy",
                     dtype="float64", seed=3)
    history = net.fit(data, epochs=3, batch_size=32, verbose=0, comm=comm)
    np.savez(f"{folder}/rank{comm.rank}.npz", **{f"{l}.{n}": v for (l, n), v in net.params().items()})
    report = {"read": list(read), "val_loss": history["val_loss"], "val_accuracy": history["val_accuracy"]}
    if comm.rank == 0:
        report["alone"] = evaluate_stream(net, data, "val")  # one process reading every shard's validation rows
    json.dump(report, open(f"{folder}/rank{comm.rank}.json", "w"))
""")


def _blob_shards(folder: Path, sizes=(150, 90, 200, 60, 120)) -> tuple:
    """Shards of unequal sizes of three separable blobs (5 features)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, (3, 5))
    for i, n in enumerate(sizes):
        y = rng.integers(0, 3, n)
        np.save(folder / f"X_{i}.npy", centers[y] + rng.standard_normal((n, 5)))
        np.save(folder / f"y_{i}.npy", y)
    return centers


def test_ranks_stream_their_own_shards_and_agree(tmp_path):
    """3 ranks stream 5 .npy shards of unequal sizes (a 100-row shuffle buffer, so the shard order changes every
    epoch): in every epoch each shard is read by one rank only (for training, and again for validation); the
    first pass is rank 0's alone; the ranks end with the same bits; the validation loss summed over the ranks
    is the one-process figure; and the model learned."""
    from collections import Counter

    _blob_shards(tmp_path)
    script = tmp_path / "child.py"
    script.write_text(STREAM_CHILD)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    result = subprocess.run([MPIEXEC, "-n", "3", sys.executable, "-m", "mpi4py", str(script), str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(3)]
    for key in ranks[0].files:
        assert ranks[1][key].tobytes() == ranks[0][key].tobytes() == ranks[2][key].tobytes(), key
    assert reports[0]["read"][:5] == [0, 1, 2, 3, 4]  # the first pass
    after = Counter(reports[0]["read"][5:] + reports[1]["read"] + reports[2]["read"])
    assert after == {s: 6 for s in range(5)}  # 3 epochs x (training + validation), one rank each time
    assert reports[0]["val_loss"][-1] == pytest.approx(reports[0]["alone"]["loss"], rel=1e-12)
    assert reports[0]["val_accuracy"][-1] == reports[0]["alone"]["accuracy"] > 0.9


def test_mpiexec_trains_from_parquet_shards_and_resumes_exactly(tmp_path):
    """`mpiexec -n 2 deltaprop train --data 'shards/*.parquet'`: one model, written once; a run of 2 epochs whose
    model is resumed (as a checkpoint) under mpiexec for 2 more ends with the bits of the 4-epoch run."""
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
    import pyarrow.parquet as pq

    import deltaprop as dp

    centers = _blob_shards(tmp_path)
    for i in range(5):
        X, y = np.load(tmp_path / f"X_{i}.npy"), np.load(tmp_path / f"y_{i}.npy")
        pq.write_table(pa.table({f"f{j}": X[:, j] for j in range(5)} | {"label": y}), tmp_path / f"part-{i}.parquet")
    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")

    def train(*options):
        done = subprocess.run([MPIEXEC, "-n", "2", exe, "train", "--data", str(tmp_path / "*.parquet"), "--target",
                               "label", "--batch-size", "32", "--shuffle-buffer", "100", "--no-plots", "--quiet",
                               *map(str, options)], capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("wrote ") == 1
        return done

    train("--epochs", "4", "--out", tmp_path / "whole")
    train("--epochs", "2", "--out", tmp_path / "half")
    half = tmp_path / "half"
    (half / "checkpoint.safetensors").write_bytes((half / "model.safetensors").read_bytes())  # as if stopped
    train("--epochs", "4", "--resume", half / "checkpoint.safetensors")
    whole, resumed = dp.load(tmp_path / "whole" / "model.safetensors"), dp.load(half / "model.safetensors")
    assert resumed.training.epoch == whole.training.epoch == 4
    for key, value in whole.params().items():
        np.testing.assert_array_equal(resumed.params()[key], value, err_msg=str(key))
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    X = centers[y] + rng.standard_normal((300, 5))
    assert (whole.predict(X) == y).mean() > 0.9  # raw inputs: the model scales them


def _ends(command, tmp_path, seconds=90):
    """Run a job; (return code, stderr, seconds taken), or a failure naming the hang."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    started = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the job hung: still running after {seconds} s")
    return result.returncode, result.stderr, time.monotonic() - started


def test_a_bad_file_ends_an_mpiexec_deltaprop_train_job_with_its_error_on_every_rank(tmp_path):
    """Reproduction: rank 0's first pass over the shards met text in a numeric column and raised, while rank 1
    waited for its result in a broadcast for ever (the job hung). Now the error travels in the broadcast."""
    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    (tmp_path / "a.csv").write_text("x,label\n1,0\n2,1\noops,0\n4,1\n")
    (tmp_path / "b.csv").write_text("x,label\n1,0\n2,1\n3,0\n4,1\n")
    code, stderr, seconds = _ends([MPIEXEC, "-n", "2", exe, "train", "--data", str(tmp_path / "*.csv"), "--target",
                                   "label", "--epochs", "1", "--no-plots", "--out", str(tmp_path / "run")], tmp_path)
    assert code == 2 and seconds < 60
    assert stderr.count("a.csv: column 'x' holds numbers but also 1 text value(s), e.g. 'oops' at data row 3") == 2


def test_an_error_on_one_rank_ends_the_job_even_without_mpi4py_s_launcher(tmp_path):
    """Reproduction: under `mpiexec -n 2 python script.py` (not `python -m mpi4py`), rank 1 raised in a callback
    and rank 0 waited in the next Allreduce for ever. Now fit prints the error and ends the job (MPI_Abort)."""
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import numpy as np
        from mpi4py import MPI
        import deltaprop as dp

        class Fail(dp.Callback):
            def on_epoch_end(self, net, epoch, logs):
                if MPI.COMM_WORLD.rank == 1 and epoch == 1:
                    raise OSError("no space left on device (rank 1's own disk)")

        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((200, 6)), rng.integers(0, 3, 200)
        net = dp.Network([dp.Dense(6, 8, "tanh"), dp.Dense(8, 3, "softmax")], loss="cross_entropy")
        net.fit(X, y, epochs=4, batch_size=32, verbose=0, callbacks=[Fail()])
    """))
    code, stderr, seconds = _ends([MPIEXEC, "-n", "2", sys.executable, "job.py"], tmp_path)
    assert code != 0 and seconds < 60
    assert "rank 1 of 2 stopped: OSError: no space left on device (rank 1's own disk); ending the job" in stderr


def _iris_csv(path: Path) -> Path:
    """The 150 rows of iris with the species by name (a text target)."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    lines = [",".join(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])]
    lines += [",".join([*map(repr, row.tolist()), iris.target_names[k]])
              for row, k in zip(iris.data, iris.target, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _train(*segments) -> list:
    """An mpiexec command line of one or more segments (MPMD: ``[options of rank r's deltaprop train]`` each,
    one process each), a segment starting with ("-wdir", folder) run there."""
    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    command = [MPIEXEC]
    for i, options in enumerate(segments):
        options = [str(o) for o in options]
        where = options[:2] if options[:1] == ["-wdir"] else []
        command += [":"] * bool(i) + where + ["-n", "1"] + (["prlimit", "--as=900000000"] if "prlimit" in options
                                                            else []) + [exe, "train"]
        command += [o for o in options[len(where):] if o != "prlimit"]
    return command


TABLE = ["--data", "tab.csv", "--target", "species", "--epochs", "2", "--no-plots", "--quiet", "--out", "run"]


def test_a_short_last_global_batch_with_fewer_rows_than_ranks_trains_as_one_process(tmp_path):
    """Reproduction: `mpiexec -n 2 deltaprop train --data tab.csv --target species --batch-size 4` on 150 rows (101
    training rows: the last global batch holds 1 row, none for one rank) exited 1 with ZeroDivisionError
    (mean_factor(wb, 0) in train_step). Now it trains, and its history is the one-process run's."""
    _iris_csv(tmp_path / "tab.csv")
    options = ["--data", "tab.csv", "--target", "species", "--batch-size", "4", "--epochs", "2", "--dtype", "float64",
               "--no-plots"]
    for run, ranks in (("two", 2), ("one", 1)):
        code, stderr, _ = _ends(_train(*[options + ["--out", run]] * ranks), tmp_path)
        assert code == 0, stderr[-3000:]
    two, one = (np.genfromtxt(tmp_path / run / "history.csv", delimiter=",", names=True) for run in ("two", "one"))
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(two[name], one[name], rtol=1e-9, err_msg=name)


def test_ranks_given_different_options_or_data_stop_on_every_rank_naming_the_difference(tmp_path):
    """Reproduction: `mpiexec -n 1 deltaprop train --seed 0 : -n 1 deltaprop train --seed 7` exited 0, the ranks
    having split train and test rows differently (a contaminated test score). Now every rank stops (exit 2)
    naming the option; a file of the same name holding other rows on rank 1 (another folder) is named too."""
    _iris_csv(tmp_path / "tab.csv")
    code, stderr, seconds = _ends(_train(TABLE + ["--seed", "0"], TABLE + ["--seed", "7"]), tmp_path)
    assert code == 2 and seconds < 60, stderr[-3000:]
    assert stderr.count("the ranks of this job differ in their options (seed: 0 on rank 0, 7 on rank 1)") == 2
    (tmp_path / "other").mkdir()
    rows = (tmp_path / "tab.csv").read_text().splitlines()
    (tmp_path / "other" / "tab.csv").write_text("\n".join(rows[:1] + rows[:0:-1]) + "\n")  # the rows reversed
    code, stderr, seconds = _ends(_train(TABLE, ["-wdir", tmp_path / "other", *TABLE]), tmp_path)
    assert code == 2 and seconds < 60, stderr[-3000:]
    assert stderr.count("the ranks of this job differ in their data (contents (digest): ") == 2


@pytest.mark.parametrize("case", ["missing file", "wider table", "other --data", "address-space limit", "bad option"])
def test_a_rank_failing_before_fit_ends_the_job_with_its_message(tmp_path, case):
    """Reproduction: one rank failed before fit and rank 0 waited for it for ever: rank 1 without the data file
    (run in another folder), rank 1 given a table one column wider (the weight broadcast failed with 'Message
    truncated'), rank 1 given --data no_such.csv, rank 1 under `prlimit --as=900000000` (a compiled library
    fails to load), rank 1 given an option argparse refuses (before it joined MPI). Now the job ends within
    seconds, non-zero, with the rank's message."""
    _iris_csv(tmp_path / "tab.csv")
    (tmp_path / "other").mkdir()
    if case == "address-space limit":
        if shutil.which("prlimit") is None:
            pytest.skip("no prlimit")
        alone = subprocess.run(_train(["prlimit", *TABLE]), capture_output=True, cwd=tmp_path, timeout=120,
                               env=dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1"))  # as _ends
        if alone.returncode == 0:
            pytest.skip("here deltaprop train runs under a 900 MB address space: the reproduction needs it to fail")
    if case == "wider table":
        rows = (tmp_path / "tab.csv").read_text().splitlines()
        (tmp_path / "other" / "tab.csv").write_text("\n".join(f"{i},{row}" for i, row in enumerate(rows)) + "\n")
    second = {"missing file": ["-wdir", tmp_path / "other", *TABLE], "wider table": ["-wdir", tmp_path / "other",
                                                                                     *TABLE],
              "other --data": [*TABLE, "--data", "no_such.csv"], "address-space limit": ["prlimit", *TABLE],
              "bad option": [*TABLE, "--epochs", "two"]}[case]
    code, stderr, seconds = _ends(_train(TABLE, second), tmp_path, seconds=60)
    assert code != 0 and seconds < 30, stderr[-3000:]
    expected = {"missing file": "rank 1 of 2 stopped: DataError: no data set or file 'tab.csv'",
                "wider table": "differ in their data (training rows and features: (112, 4) on rank 0, (112, 5) on "
                               "rank 1",
                "other --data": "differ in their options (data: 'tab.csv' on rank 0, 'no_such.csv' on rank 1)",
                "address-space limit": "rank 1 of 2 stopped: ",
                "bad option": "argument --epochs: invalid int value: 'two'"}[case]
    assert expected in stderr, stderr[-3000:]


def test_networks_of_another_width_on_one_rank_end_the_job_before_the_weight_broadcast(tmp_path):
    """Reproduction (the library under `mpiexec -n 2 python job.py`): rank 1's network takes one input more; the
    weight broadcast failed on one rank with 'Message truncated' and the other waited. Now every rank names it."""
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import numpy as np
        from mpi4py import MPI
        import deltaprop as dp

        n = 6 + MPI.COMM_WORLD.rank
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((200, n)), rng.integers(0, 3, 200)
        net = dp.Network([dp.Dense(n, 8, "tanh"), dp.Dense(8, 3, "softmax")], loss="cross_entropy")
        net.fit(X, y, epochs=2, batch_size=32, verbose=0)
    """))
    code, stderr, seconds = _ends([MPIEXEC, "-n", "2", sys.executable, "job.py"], tmp_path)
    assert code != 0 and seconds < 60
    assert stderr.count("differ in their networks (layer sizes: [6, 8, 3] on rank 0, [7, 8, 3] on rank 1") == 2


def test_ctrl_c_removes_every_rank_s_stream_cache(tmp_path):
    """Reproduction: after SIGINT to `mpiexec -n 2 deltaprop train --data 'sh/*.csv' --stream-cache C`, the ranks'
    deltaprop-cache-* folders stayed in C (the first rank to stop ended the job, killing the other while it
    waited in MPI, before its exit handlers ran). Now the job ends and C is empty."""
    import signal

    rng = np.random.default_rng(0)
    (tmp_path / "sh").mkdir()
    (tmp_path / "C").mkdir()
    for i in range(4):
        X, y = rng.standard_normal((4000, 10)), rng.integers(0, 3, 4000)
        lines = [",".join([f"f{j}" for j in range(10)] + ["label"])]
        lines += [",".join([*(f"{v:.4f}" for v in row), str(k)]) for row, k in zip(X, y, strict=True)]
        (tmp_path / "sh" / f"part{i}.csv").write_text("\n".join(lines) + "\n")
    command = _train(*[["--data", "sh/*.csv", "--target", "label", "--stream-cache", "C", "--epochs", "1000",
                        "--no-plots", "--out", "run"]] * 2)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    job = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (tmp_path / "run" / "checkpoint.safetensors").exists():
        time.sleep(0.05)  # an epoch done: both ranks' caches written, the ranks training
    caches = list((tmp_path / "C").glob("deltaprop-cache-*"))
    job.send_signal(signal.SIGINT)
    try:
        _, stderr = job.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail("the job did not end within 30 s of Ctrl-C")
    assert len(caches) == 2, stderr[-3000:]
    assert job.returncode != 0
    assert list((tmp_path / "C").iterdir()) == [], stderr[-3000:]


def test_mpiexec_cross_fits_a_table_as_one_process_does(tmp_path):
    """A table's default, cross-fitting, under `mpiexec -n 2`: every rank runs the same folds, each fold's fit
    sums its gradients over the ranks, and the merged model and its figures are the one-process run's (float64,
    1e-9 relative)."""
    import deltaprop as dp
    from test_cli import deltaprop

    rng = np.random.default_rng(4)
    x = rng.normal(size=(150, 3))
    rows = [f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{'pq'[i % 2]},{r[0] - 2 * r[1] + i % 2:.5f}\n" for i, r in enumerate(x)]
    table = "a,b,c,kind,y\n" + "".join(rows)
    (tmp_path / "t.csv").write_text(table)
    options = ["--data", tmp_path / "t.csv", "--target", "y", "--dtype", "float64", "--no-plots", "--quiet",
               "--layers", "8", "--epochs", "6", "--patience", "2", "--folds", "3"]
    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    both = subprocess.run([MPIEXEC, "-n", "2", exe, "train", *map(str, options), "--out", str(tmp_path / "two")],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert both.returncode == 0, both.stderr[-3000:]
    assert both.stdout.count("cross-fitting: 3 networks") == 1 and both.stdout.count("wrote ") == 1
    one = deltaprop("train", *options, "--out", tmp_path / "one")
    a, b = (dp.load(tmp_path / run / "model.safetensors") for run in ("two", "one"))
    assert a.pipeline.source["out_of_fold"] == pytest.approx(b.pipeline.source["out_of_fold"], rel=1e-9)
    for key, value in b.params().items():
        np.testing.assert_allclose(a.params()[key], value, rtol=1e-9, atol=1e-12)
    assert "out-of-fold R^2" in one.stdout
