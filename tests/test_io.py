"""Model files: exact round trips, exact resumption, and files that must be refused."""

import json
import struct

import numpy as np
import pytest

import deltaprop as dp
from helpers import make_net


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


def trained(data, epochs=2, **options):
    net = dp.Network([dp.Dense(6, 12, "relu", dropout=0.2), dp.Dense(12, 3, "softmax")],
                     loss="cross_entropy", seed=3, **options)
    net.fit(*data, epochs=epochs, batch_size=16, optimizer=dp.AdamW(lr=0.01), verbose=0)
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_predict_is_identical(tmp_path, data, dtype):
    net = trained(data, dtype=dtype)
    net.save(tmp_path / "model.safetensors")
    loaded = dp.load(tmp_path / "model.safetensors")
    X = data[0]
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes, net.classes)
    assert loaded.dtype == net.dtype and repr(loaded) == repr(net)
    assert loaded.training.history.history == net.training.history.history


def test_two_epochs_save_load_two_more_equals_four_straight(tmp_path, data):
    straight = trained(data, epochs=4)
    first = trained(data, epochs=2)
    first.save(tmp_path / "half.safetensors")
    resumed = dp.load(tmp_path / "half.safetensors")
    assert isinstance(resumed.training.optimizer, dp.AdamW) and resumed.training.epoch == 2
    resumed.fit(*data, epochs=2, batch_size=16, verbose=0)
    for key, value in straight.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[key], value)


def test_string_classes_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    net = make_net([2, 4, 3], "tanh", "softmax", "cross_entropy")
    net.fit(X, np.array(["cat", "dog", "emu"])[rng.integers(0, 3, 40)], epochs=1, verbose=0)
    net.save(tmp_path / "m.safetensors", )
    assert list(dp.load(tmp_path / "m.safetensors").classes) == ["cat", "dog", "emu"]


def rewrite_config(path, change):
    """Rewrite the JSON config inside a saved file's header (what a tamperer would do)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    config = json.loads(header["__metadata__"]["config"])
    change(config)
    header["__metadata__"]["config"] = json.dumps(config)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])


TAMPERING = [
    (lambda c: [c["layers"][0].update(n_out=13), c["layers"][1].update(n_in=13)],
     "tensor 'layers.1.W' is F64 \\[6, 12\\], the config says F64 \\[6, 13\\]"),
    (lambda c: c["layers"][0].update(n_out=13), "invalid model config: layer 1 has n_out=13"),
    (lambda c: c["layers"][0].update(activation="os.system"), "not registered"),
    (lambda c: c.update(loss="__import__('os')"), "unknown loss"),
    (lambda c: c.update(format_version=99), "version 99 is not supported"),
    (lambda c: c["layers"][0].update(n_in=10**6), "the config says F64 \\[1000000, 12\\]"),  # before allocating
    (lambda c: c.update(classes={"kind": "U", "values": ["a", "b", "c", "d", "e"]}), "5 classes for 3"),
    (lambda c: c.update(seed="0"), "'seed' must be"),
    (lambda c: c["optimizer"].update(name="pickle"), "unknown optimizer"),
    (lambda c: c["optimizer"]["hyperparameters"].update(evil=1), "invalid optimizer settings"),
]


def _with_early_stopping_record(data):
    """A network saved mid-fit by a checkpoint: EarlyStopping's record is on it."""
    net = trained(data)
    net.training.early_stopping = {"monitor": "val_loss", "best": 0.25, "best_epoch": 1, "wait": 0,
                          "weights": net.get_weights()}
    for value in net.params().values():
        value += 1.0  # the current weights differ from the best ones
    return net


EARLY_STOPPING_TAMPERING = [
    (lambda c: c["early_stopping"].update(best_epoch=7), "best_epoch must be an epoch already trained"),
    (lambda c: c["early_stopping"].update(best=None), "finite best value"),
    (lambda c: c["early_stopping"].update(weights="yes"), "weights flag"),
]


@pytest.mark.parametrize("make,change,message", [(trained, *case) for case in TAMPERING] +
                         [(_with_early_stopping_record, *case) for case in EARLY_STOPPING_TAMPERING])
def test_tampered_config_fails_clearly(tmp_path, data, make, change, message):
    path = tmp_path / "m.safetensors"
    make(data).save(path)
    rewrite_config(path, change)
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(path)


def test_corrupt_files_fail_clearly(tmp_path, data):
    path = tmp_path / "m.safetensors"
    trained(data).save(path)
    raw = path.read_bytes()
    cases = {
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "huge header": struct.pack("<Q", 2**40) + raw[8:],
        "not json": struct.pack("<Q", 8) + b"\xff" * 8 + raw[16:],
    }
    for name, content in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(content)
        with pytest.raises(dp.ModelFileError):
            dp.load(bad)
    with pytest.raises(dp.ModelFileError, match="no such model file"):
        dp.load(tmp_path / "missing.safetensors")


def test_a_pickle_file_is_refused_without_running_it(tmp_path):
    import pickle

    marker = tmp_path / "ran"
    path = tmp_path / "evil.safetensors"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(dp.ModelFileError):
        dp.load(path)
    assert not marker.exists()


def test_non_finite_weights_are_never_saved(tmp_path, data):
    net = trained(data)
    path = tmp_path / "m.safetensors"
    net.save(path)
    before = path.read_bytes()
    net.layers[0].W[0, 0] = np.nan
    with pytest.raises(dp.ModelFileError, match="NaN"):
        net.save(path)
    assert path.read_bytes() == before  # the good model on disk is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left behind


def test_a_changed_byte_anywhere_is_detected(tmp_path, data):
    """A flipped bit in a weight, or an edit of the config that still validates, fails the checksum."""
    path = tmp_path / "m.safetensors"
    trained(data).save(path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # inside the last tensor's data
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(dp.ModelFileError, match="checksum mismatch"):
        dp.load(flipped)
    rewrite_config(path, lambda c: c["optimizer"]["hyperparameters"].update(lr=0.5))
    with pytest.raises(dp.ModelFileError, match="checksum mismatch"):
        dp.load(path)


def test_early_stopping_record_round_trips(tmp_path, data):
    net = _with_early_stopping_record(data)
    net.save(tmp_path / "ckpt.safetensors")
    loaded = dp.load(tmp_path / "ckpt.safetensors")
    record = loaded.training.early_stopping
    assert {k: record[k] for k in ("monitor", "best", "best_epoch", "wait")} == \
        {"monitor": "val_loss", "best": 0.25, "best_epoch": 1, "wait": 0}
    for key, value in net.training.early_stopping["weights"].items():
        np.testing.assert_array_equal(record["weights"][key], value)
    dp.save(net, tmp_path / "final.safetensors", include_optimizer=False)  # a final model: no training state
    assert dp.load(tmp_path / "final.safetensors").training.early_stopping is None
