"""The package itself: a light import and the public names."""

import subprocess
import sys

import deltaprop as dp


def test_import_needs_numpy_only():
    code = ("import sys, deltaprop; heavy = {'sklearn', 'torch', 'matplotlib', 'safetensors', 'tqdm', 'scipy'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_api_names():
    for name in ("Network", "Dense", "gradcheck", "load", "save", "SGD", "Adam", "AdamW", "RMSprop",
                 "EarlyStopping", "ModelCheckpoint", "DeltaClassifier", "DeltaRegressor"):
        assert hasattr(dp, name), name
    assert dp.DeltaClassifier.__module__ == "deltaprop.estimators"
