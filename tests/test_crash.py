"""SIGKILL during training and checkpointing: the previous checkpoint survives, resuming is exact."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from crash_child import EPOCHS, FIT, setup

pytestmark = pytest.mark.slow  # training subprocesses killed mid-run: not in the quick tier (pytest -m "not slow")

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def uninterrupted():
    net, X, y = setup()
    net.fit(X, y, epochs=EPOCHS, **FIT)
    return net.get_weights()


def kill_at(tmp_path, mode: str, epoch: int) -> Path:
    checkpoint, marker = tmp_path / "ckpt.safetensors", tmp_path / "stopped"
    child = subprocess.Popen([sys.executable, str(HERE / "crash_child.py"), str(checkpoint), mode, str(epoch),
                              str(marker)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never reached the kill point"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return checkpoint


@pytest.mark.parametrize("mode,epoch,intact", [
    ("mid-write", 3, 2),       # killed halfway through writing epoch 3's checkpoint: epoch 2's is there
    ("before-rename", 4, 3),   # epoch 4's file complete but not renamed: epoch 3's is there
    ("after-epoch", 2, 2),     # killed between epochs
    ("mid-write", 1, None),    # killed during the very first save: no file rather than a broken one
])
def test_kill_leaves_the_previous_checkpoint_and_resume_is_exact(tmp_path, uninterrupted, mode, epoch, intact):
    checkpoint = kill_at(tmp_path, mode, epoch)
    if intact is None:
        assert not checkpoint.exists()
        return
    saved = dp.load(checkpoint)  # loads cleanly: never a half-written file at the target path
    assert saved.training.epoch == intact
    _, X, y = setup()
    resumed = dp.resume(checkpoint, X, y, epochs=EPOCHS, **FIT)
    assert resumed.training.epoch == EPOCHS
    for key, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed.get_weights()[key], value)


def test_cli_resume_equals_an_uninterrupted_run(tmp_path):
    """deltaprop train --resume: a run stopped after 2 epochs and resumed ends like a 4-epoch run."""
    from test_cli import deltaprop

    deltaprop("train", "--epochs", 4, "--dropout", 0.2, "--out", tmp_path / "full", "--quiet", "--no-plots")
    deltaprop("train", "--epochs", 2, "--dropout", 0.2, "--out", tmp_path / "half", "--quiet", "--no-plots")
    partial = tmp_path / "half" / "model.safetensors"
    deltaprop("train", "--epochs", 4, "--dropout", 0.2, "--resume", partial, "--out", tmp_path / "resumed",
              "--quiet", "--no-plots")
    full = dp.load(tmp_path / "full" / "model.safetensors")
    resumed = dp.load(tmp_path / "resumed" / "model.safetensors")
    assert resumed.training.epoch == 4
    for key, value in full.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[key], value)


def test_a_later_save_removes_the_temp_file_of_a_killed_save(tmp_path):
    checkpoint = kill_at(tmp_path, "mid-write", 3)
    orphans = list(tmp_path.glob(".ckpt.safetensors.*.tmp"))
    assert len(orphans) == 1  # the killed writer's half-written file
    mine = tmp_path / f".ckpt.safetensors.{os.getpid()}.busy.tmp"  # a live writer's: kept
    other = tmp_path / ".ckpt.safetensors.notapid.tmp"  # not ours to judge: kept
    mine.write_bytes(b"x")
    other.write_bytes(b"x")
    dp.load(checkpoint).save(checkpoint)
    assert sorted(p.name for p in tmp_path.glob(".ckpt.safetensors.*.tmp")) == sorted([mine.name, other.name])
