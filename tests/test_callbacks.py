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
    assert dp.load(tmp_path / "e3.safetensors").training.epoch == 3
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    assert dp.load(tmp_path / "best.safetensors").training.epoch == best_epoch


def test_progress_lines_and_silence(capsys, noisy):
    X, y, _, _ = noisy
    net = make_net([10, 4, 2], "relu", "softmax", "cross_entropy")
    net.fit(X, y, epochs=2, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(("training step: compiled", "readable step: "))  # which step trains, then the epochs
    lines = lines[1:]
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
    assert whole.training.epoch == 10  # the scenario: stopped by patience, best weights from epoch 6

    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        fresh().fit(X, y, epochs=30, optimizer=dp.Adam(0.05), **options,
                    callbacks=[dp.ModelCheckpoint(path), dp.EarlyStopping(patience=4), _KillAfter(7)])  # any order
    saved = dp.load(path)
    assert saved.training.epoch == 8 and saved.training.early_stopping["best_epoch"] == 5
    if not keep_record:
        saved.training.early_stopping = None
        saved.save(path)
    resumed = dp.resume(path, X, y, epochs=30, callbacks=[dp.EarlyStopping(patience=4)], **options)
    same = resumed.training.epoch == whole.training.epoch and all(
        np.array_equal(resumed.params()[k], v) for k, v in whole.params().items())
    assert same == keep_record
    assert resumed.training.early_stopping is None  # the finished fit leaves no record behind


class Explode(dp.Callback):
    """After epoch ``at``, raise the learning rate so far that the next epoch diverges."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, net, epoch, logs):
        if epoch == self.at:
            net.training.optimizer.base_lr = 1e12


def test_a_diverged_fit_leaves_no_early_stopping_record_for_the_next(noisy):
    """Keras resets EarlyStopping at each fit; a DivergenceError used to leave the failed run's best
    value and weights on net.training.early_stopping, and the next fit started from them."""
    X, y, Xv, yv = noisy
    y, yv = y.astype(float), yv.astype(float)
    net = make_net([10, 8, 1], "relu", "identity", "mse", seed=0)
    start = net.get_weights()
    with pytest.raises(dp.DivergenceError):
        net.fit(X, y, epochs=10, validation_data=(Xv, yv), optimizer=dp.SGD(lr=1e-3),
                callbacks=[dp.EarlyStopping(patience=5), Explode(at=2)], verbose=0)
    assert net.training.early_stopping is None
    net.set_weights(start)  # the blown-up weights of epochs 3-4 (finite) would make any next run diverge
    stop = dp.EarlyStopping(patience=5)
    history = net.fit(X, y, epochs=1, validation_data=(Xv, yv), optimizer=dp.SGD(lr=1e-3), callbacks=[stop],
                      verbose=0)
    assert stop.best == history["val_loss"][-1] and stop.best_epoch == net.training.epoch - 1  # history spans fits


@pytest.mark.parametrize("monitor,mode", [("loss", "min"), ("val_loss", "min"), ("accuracy", "max"),
                                          ("val_accuracy", "max"), ("acc", "max"), ("val_acc", "max"),
                                          ("auc", "max"), ("val_auc", "max")])
def test_auto_mode_follows_keras(monitor, mode):
    """Keras 3 maximises accuracy-like metrics in mode 'auto' ("acc" and "auc" were minimised)."""
    assert dp.EarlyStopping(monitor=monitor).mode == mode
    assert dp.ModelCheckpoint("m.safetensors", monitor=monitor).mode == mode


def test_min_delta_counts_by_its_size_and_patience_may_be_infinite(noisy):
    """Keras takes |min_delta| (a negative one used as given counted worsening as improvement);
    patience=np.inf never stops (it raised OverflowError) but still keeps the best weights."""
    X, y, Xv, yv = noisy
    assert dp.EarlyStopping(min_delta=-0.5).min_delta == 0.5
    runs = {}
    for min_delta in (-1e9, 1e9):
        net = make_net([10, 8, 2], "relu", "softmax", "cross_entropy", seed=0)
        stop = dp.EarlyStopping(patience=2, min_delta=min_delta)
        runs[min_delta] = len(net.fit(X, y, epochs=10, validation_data=(Xv, yv), callbacks=[stop], verbose=0))
    assert runs[-1e9] == runs[1e9] == 3  # no epoch improves by 1e9: stops after 1 + patience, either sign
    net = make_net([10, 8, 2], "relu", "softmax", "cross_entropy", seed=0)
    stop = dp.EarlyStopping(patience=np.inf, min_delta=1e9)
    assert len(net.fit(X, y, epochs=6, validation_data=(Xv, yv), callbacks=[stop], verbose=0)) == 6
    for bad in (-1, 2.5, "3", float("nan")):
        with pytest.raises(dp.ConfigError, match="patience"):
            dp.EarlyStopping(patience=bad)
