"""Callbacks: early stopping with best-weight restore, checkpoints, progress output."""

import numpy as np
import pytest

import deltaprop as dp
from helpers import make_net


@pytest.fixture
def noisy():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 10))
    return X, rng.integers(0, 2, 60), rng.normal(size=(60, 10)), rng.integers(0, 2, 60)


class Recorder(dp.Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_end(self, net, epoch, logs):
        self.weights.append(net.get_weights())


def test_early_stopping_restores_the_best_weights(noisy):
    """Random labels: validation loss soon rises; the network must end at its best epoch."""
    X, y, Xv, yv = noisy
    net = make_net([10, 64, 2], "relu", "softmax", "cross_entropy", seed=0)
    stop, recorder = dp.EarlyStopping(patience=3), Recorder()
    history = net.fit(X, y, epochs=200, validation_data=(Xv, yv), optimizer=dp.Adam(0.01),
                      callbacks=[recorder, stop], verbose=0)
    assert len(history) < 200  # it stopped early
    best = int(np.argmin(history["val_loss"]))
    assert stop.best_epoch == best and len(history) == best + 1 + 3
    for key, value in recorder.weights[best].items():
        np.testing.assert_array_equal(net.get_weights()[key], value)
    assert net.loss(Xv, yv) == pytest.approx(min(history["val_loss"]))


def test_early_stopping_names_a_missing_metric(noisy):
    X, y, _, _ = noisy
    net = make_net([10, 4, 2], "relu", "softmax", "cross_entropy")
    with pytest.raises(dp.ConfigError, match="monitors 'val_loss'"):
        net.fit(X, y, epochs=2, callbacks=[dp.EarlyStopping()], verbose=0)


def test_checkpoint_every_epoch_and_best_only(tmp_path, noisy):
    X, y, Xv, yv = noisy
    net = make_net([10, 8, 2], "relu", "softmax", "cross_entropy")
    every = dp.ModelCheckpoint(tmp_path / "e{epoch}.safetensors")
    best = dp.ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    history = net.fit(X, y, epochs=3, validation_data=(Xv, yv), callbacks=[every, best], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors", "e1.safetensors",
                                                          "e2.safetensors", "e3.safetensors"]
    assert dp.load(tmp_path / "e3.safetensors").epochs_trained == 3
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    assert dp.load(tmp_path / "best.safetensors").epochs_trained == best_epoch


def test_progress_lines_and_silence(capsys, noisy):
    X, y, _, _ = noisy
    net = make_net([10, 4, 2], "relu", "softmax", "cross_entropy")
    net.fit(X, y, epochs=2, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch   1  loss ") and "accuracy" in lines[0]
    net.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_progress_bar_on_a_terminal(noisy):
    """On a terminal the batches get a tqdm bar (carriage returns), then the epoch line stays."""
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    X, y, _, _ = noisy
    screen = Terminal()
    net = make_net([10, 4, 2], "relu", "softmax", "cross_entropy")
    net.fit(X, y, epochs=2, batch_size=8, callbacks=[dp.callbacks.Progress(screen)], verbose=0)
    text = screen.getvalue()
    assert "\r" in text and "/8 [" in text and "batch/s" in text  # 60 samples in batches of 8: 8 steps
    assert text.count("epoch   1  loss") == 1 and text.rstrip().endswith("s") and "epoch   2  loss" in text


def test_epoch_line_shows_milliseconds_for_fast_epochs():
    from deltaprop.callbacks import format_logs

    assert format_logs(2, {"loss": 0.5, "time": 0.0043}).endswith("  4.3 ms")  # not '0.00s'
    assert format_logs(2, {"loss": 0.5, "time": 2.1}) == "epoch   3  loss 0.5000  2.10 s"


class _KillAfter(dp.callbacks.Callback):
    """Ends the process's training abruptly after an epoch (after the checkpoint is written)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 5))
    y = rng.integers(0, 3, 200)
    return centers[y] + rng.normal(size=(200, 5)), y


@pytest.mark.parametrize("keep_record", [True, False])
def test_resume_with_early_stopping_stops_and_restores_like_the_uninterrupted_run(tmp_path, keep_record):
    """Here the best epoch (6) comes before the kill (after epoch 8) and patience ends the run at 10:
    the checkpoint's early-stopping record makes the resumed run do the same. Without the record
    (keep_record=False, how checkpoints were before) the resumed run counts afresh and ends elsewhere."""
    X, y = _blobs()
    options = dict(batch_size=16, validation_split=0.3, verbose=0)

    def fresh():
        return make_net([5, 32, 3], "relu", "softmax", "cross_entropy", seed=0)

    whole = fresh()
    whole.fit(X, y, epochs=30, optimizer=dp.Adam(0.05), callbacks=[dp.EarlyStopping(patience=4)], **options)
    assert whole.epochs_trained == 10  # the scenario: stopped by patience, best weights from epoch 6

    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        fresh().fit(X, y, epochs=30, optimizer=dp.Adam(0.05), **options,
                    callbacks=[dp.ModelCheckpoint(path), dp.EarlyStopping(patience=4), _KillAfter(7)])  # any order
    saved = dp.load(path)
    assert saved.epochs_trained == 8 and saved.early_stopping["best_epoch"] == 5
    if not keep_record:
        saved.early_stopping = None
        saved.save(path)
    resumed = dp.resume(path, X, y, epochs=30, callbacks=[dp.EarlyStopping(patience=4)], **options)
    same = resumed.epochs_trained == whole.epochs_trained and all(
        np.array_equal(resumed.params()[k], v) for k, v in whole.params().items())
    assert same == keep_record
    assert resumed.early_stopping is None  # the finished fit leaves no record behind
