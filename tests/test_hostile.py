"""Hostile files and careless inputs: each case was a traceback, a memory bomb or a silent wrong result.

Memory: readers of small hostile files run in a subprocess whose address space is capped (RLIMIT_AS,
3 GiB) and whose peak resident memory (VmHWM) is reported; a reader that trusted the file would
allocate gigabytes. The bound asserted: under 400 MB of peak RSS for the whole Python process
(interpreter, NumPy, pandas: about 150 MB), for files of a few KB or MB.
"""

import gzip
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib

import numpy as np
import pytest

import deltaprop as dp
import deltaprop.data
from test_cli import deltaprop
from test_io import rewrite_config

pytestmark = pytest.mark.slow  # memory bombs in address-space-limited subprocesses: not in the quick tier

PEAK_MB = 400


def peak_of(code: str) -> tuple[str, float]:
    """Run ``code`` in a fresh interpreter capped at 3 GiB of address space: (its stdout, peak RSS in MB)."""
    wrapper = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        import deltaprop as dp
        import deltaprop.data
        import pandas
        try:
{textwrap.indent(textwrap.dedent(code), ' ' * 12)}
        except dp.DeltapropError as exc:
            print("DeltapropError:", exc)
        status = open("/proc/self/status").read()  # VmHWM: this program's peak (ru_maxrss can carry the parent's)
        print("PEAK", int(status.split("VmHWM:")[1].split()[0]) / 1024)
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    out, peak = result.stdout.rsplit("PEAK", 1)
    return out, float(peak)


def _npy_header(shape, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_npz_empty_array_with_a_huge_second_dimension(tmp_path):
    """X of shape (0, 2^40) in 450 bytes: the size check passed (0 bytes) and 2^40 feature names followed."""
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("X.npy", _npy_header((0, 2**40)))
        z.writestr("y.npy", _npy_header((0,)))
    out, peak = peak_of(f"dp.data.load_file({str(tmp_path / 'z.npz')!r})")
    assert "has shape (0, 1099511627776): no values" in out and peak < PEAK_MB


def test_npz_whose_zip_directory_lies_about_the_size(tmp_path):
    """A 598-byte file whose member claims 100 GB (directory and array header agree): MemoryError before."""
    member = _npy_header((100 * 2**30 // 8,)) + b"\0" * 64
    with zipfile.ZipFile(tmp_path / "lie.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("X.npy", member)
        z.writestr("y.npy", _npy_header((1,)) + b"\0" * 8)
    raw = bytearray((tmp_path / "lie.npz").read_bytes())
    claimed = struct.pack("<I", 0xFFFFFFFF)  # file_size fields: local header (offset 22), central directory (24)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        raw[at + offset:at + offset + 4] = claimed
    (tmp_path / "lie.npz").write_bytes(bytes(raw))
    out, peak = peak_of(f"dp.data.load_file({str(tmp_path / 'lie.npz')!r})")
    assert "DeltapropError" in out and peak < PEAK_MB


def test_npz_deflate_bomb_is_refused_before_inflating(tmp_path):
    """About 1 MB of deflated zeros that would inflate to 1 GB (the issue's: 2.8 MB to 2.9 GB of resident
    memory): refused by the compression ratio, before anything is inflated."""
    n = 2**30 // 8
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    parts, chunk = [compressor.compress(_npy_header((n, 1)))], b"\0" * 2**24
    for _ in range(n * 8 // len(chunk)):
        parts.append(compressor.compress(chunk))
    deflated = b"".join(parts) + compressor.flush()
    y = _npy_header((n,), "|u1")
    (tmp_path / "bomb.npz").write_bytes(_hand_zip([("y.npy", y)], "X.npy", deflated, len(_npy_header((n, 1))) + n * 8))
    assert (tmp_path / "bomb.npz").stat().st_size < 3e6
    out, peak = peak_of(f"dp.data.load_file({str(tmp_path / 'bomb.npz')!r})")
    assert "more than its" in out and "(compressed)" in out and peak < PEAK_MB


def _hand_zip(stored: list, name: str, deflated: bytes, size: int) -> bytes:
    """A ZIP64 archive: ``stored`` members uncompressed, then ``name`` deflated with the given size."""
    out, central = io.BytesIO(), []
    entries = [(n, data, 0, zlib.crc32(data), len(data)) for n, data in stored]
    entries.append((name, deflated, 8, 0, size))  # the CRC is never reached: the reader refuses first
    for fname, data, method, crc, usize in entries:
        offset = out.tell()
        extra = struct.pack("<HHQQ", 1, 16, usize, len(data))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                              len(fname), len(extra)) + fname.encode() + extra + data)
        cextra = struct.pack("<HHQQQ", 1, 24, usize, len(data), offset)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0, crc, 0xFFFFFFFF,
                                   0xFFFFFFFF, len(fname), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF)
                       + fname.encode() + cextra)
    start = out.tell()
    for record in central:
        out.write(record)
    end = out.tell()
    out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), end - start,
                          start))
    out.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    return out.getvalue()


def test_idx_gzip_bomb_is_refused_before_inflating(tmp_path):
    """A 1 MB .gz that inflates to 1 GiB of pixels (the issue's: 2 MB to 2 GiB, a MemoryError)."""
    header = b"\x00\x00\x08\x03" + struct.pack(">III", 2**30 // 784, 28, 28)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb", compresslevel=9) as f:
        f.write(header)
        zeros = b"\0" * 2**24
        for _ in range(2**30 // 784 * 784 // len(zeros)):
            f.write(zeros)
    assert (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size < 5e6
    out, peak = peak_of(f"dp.data.read_idx({str(tmp_path / 'train-images-idx3-ubyte.gz')!r})")
    assert "IDX header claims shape" in out and "more than a file of" in out and peak < PEAK_MB


def test_sparse_model_file_is_refused_before_building_the_network(tmp_path):
    """A 1.2 GB model file of 4 KB on disk: load built and randomly initialised 3.5 GB (22 s) first."""
    layers = [{"n_in": 20000, "n_out": 15000, "activation": "relu", "dropout": 0.0},
              {"n_in": 15000, "n_out": 2, "activation": "softmax", "dropout": 0.0}]
    small = dp.Network([dp.Dense(2, 3, "relu"), dp.Dense(3, 2, "softmax")], loss="cross_entropy", seed=0)
    small.save(tmp_path / "small.safetensors")
    rewrite_config(tmp_path / "small.safetensors", lambda c: c.update(layers=layers, dtype="float32"))
    raw = (tmp_path / "small.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    offset = 0
    for key, shape in (("layers.1.W", [20000, 15000]), ("layers.1.b", [15000]), ("layers.2.W", [15000, 2]),
                       ("layers.2.b", [2])):
        size = int(np.prod(shape)) * 4
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(tmp_path / "sparse.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded)
        f.truncate(8 + len(encoded) + offset)  # holes: 1.2 GB that take no disk
    started = time.perf_counter()
    out, peak = peak_of(f"dp.load({str(tmp_path / 'sparse.safetensors')!r})")
    assert "a sparse file" in out and peak < PEAK_MB and time.perf_counter() - started < 20


def test_a_network_larger_than_memory_is_refused_with_its_size():
    with pytest.raises(dp.ConfigError, match="parameters: 2 copies in float64 need .* GiB, more than"):
        dp.Network([dp.Dense(100000, 100000), dp.Dense(100000, 1)], seed=0)
    result = deltaprop("train", "--layers", "100000,100000", "--epochs", 1, check=False)
    assert result.returncode == 2 and "more than this machine's" in result.stderr


# --- silent wrong results ----------------------------------------------------------------------------------
def test_npz_whole_number_float_labels_are_classes_like_a_csvs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    np.savez(tmp_path / "f.npz", X=X, y=(X[:, 0] > 0).astype(float))  # 0.0 / 1.0
    result = deltaprop("train", "--data", tmp_path / "f.npz", "--epochs", 5, "--out", tmp_path / "run", "--no-plots")
    assert "test accuracy" in result.stdout  # a classifier, as the same labels in a CSV (was: regression, R^2)


def test_idx_label_file_of_floats_is_refused(tmp_path):
    images = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 2, 2) + bytes(8)
    floats = b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + np.array([0.0, np.nan], ">f4").tobytes()
    ints = b"\x00\x00\x08\x01" + struct.pack(">I", 2) + bytes([0, 1])
    for stem, data in (("train-images-idx3-ubyte", images), ("t10k-images-idx3-ubyte", images),
                       ("train-labels-idx1-ubyte", floats), ("t10k-labels-idx1-ubyte", ints)):
        (tmp_path / stem).write_bytes(data)
    result = deltaprop("train", "--data", tmp_path, "--epochs", 1, "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and "label file holds floating-point values" in result.stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    np.savez(folder / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    np.savez(folder / "r.npz", X=X, y=X[:, 0] * 1000.5)
    deltaprop("train", "--data", folder / "d.npz", "--epochs", 3, "--out", folder / "run", "--no-plots")
    deltaprop("train", "--data", folder / "r.npz", "--epochs", 3, "--out", folder / "reg", "--no-plots")
    return folder


def _forged(folder, source, change, name):
    """A copy of a model whose values were changed and whose checksum was recomputed (a valid file)."""
    net = dp.load(folder / source / "model.safetensors")
    change(net)
    net.save(folder / name)
    return folder / name


FORGED = [
    ("weights of 3e38", "run", lambda net: net.layers[0].W.fill(3e38),
     "the network's output a^L is not finite for row 0"),
    ("NaN target scaler", "reg", lambda net: net.pipeline.target.shift.fill(np.nan),
     "invalid scaler settings in the model file"),
    ("infinite target scaler", "reg", lambda net: net.pipeline.target.scale.fill(np.inf),
     "invalid scaler settings in the model file"),
]


@pytest.mark.parametrize("name,source,change,message", FORGED, ids=[c[0] for c in FORGED])
def test_forged_models_with_a_valid_checksum_give_errors_not_nan(model, name, source, change, message):
    path = _forged(model, source, change, f"forged-{source}-{FORGED.index((name, source, change, message))}.st")
    data = model / ("d.npz" if source == "run" else "r.npz")
    result = deltaprop("predict", path, "--data", data, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_info_shows_control_characters_escaped(model):
    path = _forged(model, "run", lambda net: net.pipeline.source.update(data="\x1b]0;owned\x07\x1b[2Jrm -rf"), "esc.st")
    out = deltaprop("info", path).stdout
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in out


def test_saved_models_follow_the_umask(model, tmp_path):
    old = os.umask(0o022)
    try:
        dp.load(model / "run" / "model.safetensors").save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644  # was 0600 (mkstemp's)


# --- model files whose values break later code ---------------------------------------------------------------
HEADER_CASES = [
    ("a 5000-digit integer", lambda text: text.replace('"seed": 0', '"seed": ' + "9" * 5000, 1), "not valid JSON"),
    ("an optimizer step count of 10^400", lambda text: re.sub(r'"t": \d+', '"t": 1' + "0" * 400, text, count=1),
     "step count t"),
    ("extra nested 988 deep", lambda text: text[:-1] + ', "extra": ' + "[" * 988 + "]" * 988 + "}",
     "nested more than 32 levels|not valid JSON"),  # which, depends on the stack left to the JSON parser
]


@pytest.mark.parametrize("name,change,message", HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_hostile_config_values_fail_at_load(model, tmp_path, name, change, message):
    path = tmp_path / "m.safetensors"
    raw = (model / "run" / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    # the config's text is edited: json.dumps itself refuses 5000 digits, and recursion runs out at 988 levels
    header["__metadata__"]["config"] = change(header["__metadata__"]["config"])
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + n:])
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(path)


# --- the command line ---------------------------------------------------------------------------------------
CLI = [
    ("negative clip norm", ["train", "--clip-norm", "-1", "--epochs", "1"], "clip_norm must be a finite number > 0"),
    ("zero clip norm", ["train", "--clip-norm", "0", "--epochs", "1"], "clip_norm must be a finite number > 0"),
    ("seed -1", ["train", "--seed", "-1"], "seed must be in 0..4294967295"),
    ("seed 2^32", ["train", "--seed", "4294967296"], "seed must be in 0..4294967295"),
    ("a tiny test size", ["train", "--test-size", "1e-9", "--epochs", "1"], "cannot split 1797 rows"),
    ("gradcheck --samples -5", ["gradcheck", "--samples", "-5"], "--samples and --max-entries must be at least 1"),
    ("gradcheck --max-entries -1", ["gradcheck", "--max-entries", "-1"], "must be at least 1"),
    ("explain --neuron 0", ["explain", "--neuron", "0"], "neuron must be in 1..2"),
    ("explain --neuron 1000000", ["explain", "--neuron", "1000000"], "neuron must be in 1..2"),
    ("config /dev/zero", ["train", "--config", "/dev/zero"], "not a regular file"),
]


@pytest.mark.parametrize("name,args,message", CLI, ids=[c[0] for c in CLI])
def test_cli_refuses_with_one_line(name, args, message, tmp_path):
    result = deltaprop(*args, check=False, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


TOML = [
    ("data = 3", "option data must be a string"),
    ("data_dir = 1.5", "option data_dir must be a string"),
    ("out = true", "option out must be a string"),
    ("resume = [1]", "option resume must be a string"),
    ('clip_norm = "x"', "option clip_norm must be a finite number"),
    ('quiet = "no"', "option quiet must be true or false"),
    ("epochs = 2.5", "option epochs must be an integer"),
    ("a = " + "[" * 100000, "nested too deeply"),
]


@pytest.mark.parametrize("text,message", TOML, ids=[t[1] for t in TOML])
def test_toml_values_of_the_wrong_type(tmp_path, text, message):
    (tmp_path / "run.toml").write_text(text + "\n")
    result = deltaprop("train", "--config", tmp_path / "run.toml", check=False, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_out_folder_with_braces_is_a_path_not_a_template(tmp_path):
    result = deltaprop("train", "--epochs", 2, "--layers", 8, "--out", tmp_path / "runs{a}", "--no-plots")
    assert (tmp_path / "runs{a}" / "model.safetensors").exists() and "Traceback" not in result.stderr
    deltaprop("train", "--epochs", 2, "--layers", 8, "--out", tmp_path / "r{epoch}", "--no-plots")
    assert (tmp_path / "r{epoch}" / "model.safetensors").exists() and not (tmp_path / "r1").exists()


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / ".deltaprop.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a first run, busy writing there
        result = deltaprop("train", "--epochs", 1, "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and "another deltaprop train is writing to" in result.stderr
    deltaprop("train", "--epochs", 1, "--layers", 8, "--out", tmp_path / "run", "--no-plots")  # free again


def test_python_api_refuses_bad_numbers_by_name():
    net = dp.Network([dp.Dense(2, 2, "softmax")], loss="cross_entropy", seed=0)
    X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    for options, message in [({"batch_size": 2.5}, "batch_size"), ({"epochs": True}, "epochs"),
                             ({"epochs": float("nan")}, "epochs"), ({"clip_norm": -1.0}, "clip_norm"),
                             ({"clip_norm": "1"}, "clip_norm"), ({"class_weight": {0: -1}}, "class_weight"),
                             ({"class_weight": {0: "x"}}, "class_weight")]:
        with pytest.raises(dp.ConfigError, match=message):
            net.fit(X, y, verbose=0, **options)
    with pytest.raises(dp.ConfigError, match="seed must be an integer"):
        dp.Network([dp.Dense(2, 2)], seed=-1)


def _interruptible():
    """Ctrl-C as a terminal delivers it: a test run started in the background by a shell without job control
    inherits SIGINT ignored (POSIX), and so would the child, which would then train to the end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_names_the_checkpoint_and_leaves_no_empty_folder(tmp_path):
    exe = [sys.executable, "-m", "deltaprop.cli", "train", "--data", "digits", "--layers", "64", "--epochs", "500",
           "--out", str(tmp_path / "run"), "--no-plots"]
    process = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_interruptible)
    deadline = time.time() + 60
    while not (tmp_path / "run" / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"--resume {tmp_path / 'run' / 'checkpoint.safetensors'}" in err and "Traceback" not in err
    slow = exe[:exe.index("--layers")] + ["--layers", "2048,2048", "--epochs", "500", "--out", str(tmp_path / "early")]
    early = subprocess.Popen(slow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_interruptible)
    while not (tmp_path / "early").exists() and time.time() < deadline + 60:
        time.sleep(0.01)
    early.send_signal(signal.SIGINT)  # in the first epoch: nothing written yet
    early.communicate(timeout=60)
    assert early.returncode == 130 and not (tmp_path / "early").exists()


def test_more_layers_than_a_model_file_holds_are_refused_before_training():
    """train wrote 1001-layer models that load then rejected as 'tampered with?'."""
    with pytest.raises(dp.ConfigError, match="1001 layers is more than a model file holds \\(1000\\)"):
        dp.Network([dp.Dense(2, 2) for _ in range(1001)], seed=0)


def test_csv_line_separator_inside_a_field_and_memory_near_the_files_size(tmp_path):
    """U+2028 split a row in two with the old reader (str.splitlines); it held about 18 times the file
    size in memory. pandas' reader: one row, and a 24 MB numeric CSV read within 4 times its size."""
    (tmp_path / "u.csv").write_text("note,y\nfirst\u2028second,1\nplain,0\n", encoding="utf-8")
    frame = dp.data.read_table(tmp_path / "u.csv")
    assert frame.shape == (2, 2) and frame["note"].iloc[0] == "first\u2028second"
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "big.csv", rng.normal(size=(200_000, 6)), delimiter=",", fmt="%.12f",
               header="a,b,c,d,e,y", comments="")
    size_mb = (tmp_path / "big.csv").stat().st_size / 2**20
    baseline = peak_of("pass")[1]
    out, peak = peak_of(f"frame = dp.data.read_table({str(tmp_path / 'big.csv')!r}); print(frame.shape)")
    assert "(200000, 6)" in out and peak - baseline < 4 * size_mb, (peak, baseline, size_mb)
