"""The CLI's row splits without scikit-learn (data/splits.py): stratified like train_test_split, seeded, each row in
one part; k folds that partition the rows; models saved before the split was recorded keep scikit-learn's rows."""

import types

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sklearn_confusion
from sklearn.model_selection import train_test_split

import deltaprop as dp
from deltaprop.cli.common import confusion_matrix
from deltaprop.cli.tables import held_out, split_rows
from deltaprop.data.splits import SPLIT, folds, split
from deltaprop.data.tables import ReadOptions, fingerprint
from deltaprop.preprocessing import Pipeline
from deltaprop.preprocessing.record import from_record, to_record

LABELS = [np.repeat(["a", "b", "c"], [180, 90, 30]), np.repeat([0, 1], [7, 13]),
          np.repeat([3, 1, 2, 0], [5, 11, 40, 2])]


@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("test_size", [0.1, 0.25, 0.5])
def test_a_stratified_split_has_train_test_splits_class_counts_within_one_row(labels, test_size):
    n = len(labels)
    for seed in range(3):
        train, test = split(n, test_size, seed, labels)
        theirs_train, theirs_test = train_test_split(np.arange(n), test_size=test_size, random_state=seed,
                                                     stratify=labels)
        assert len(test) == len(theirs_test) and len(train) == len(theirs_train)
        for c in np.unique(labels):
            assert abs((labels[test] == c).sum() - (labels[theirs_test] == c).sum()) <= 1
            assert abs((labels[train] == c).sum() - (labels[theirs_train] == c).sum()) <= 1


@pytest.mark.parametrize("labels", [None, LABELS[0]])
def test_a_split_puts_every_row_in_one_part_and_depends_on_the_seed_alone(labels):
    train, test = split(300, 0.25, 7, labels)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(300)) and len(test) == 75
    again = split(300, 0.25, 7, labels)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(test, again[1])
    assert set(split(300, 0.25, 8, labels)[1].tolist()) != set(test.tolist())
    assert not np.array_equal(np.sort(train), train)  # a random order: fit's validation tail is not the file's end


@pytest.mark.parametrize("labels", [None, LABELS[0], LABELS[2]])
@pytest.mark.parametrize("k", [2, 5])
def test_k_folds_partition_the_rows_and_stratify_within_one_row(labels, k):
    n = 300 if labels is None else len(labels)
    parts = folds(n, k, 3, labels)
    held = [h for _, h in parts]
    assert len(parts) == k and sorted(np.concatenate(held).tolist()) == list(range(n))
    assert max(map(len, held)) - min(map(len, held)) <= 1
    for train, h in parts:
        assert sorted(np.concatenate([train, h]).tolist()) == list(range(n))
    if labels is not None:
        for c in np.unique(labels):
            counts = [(labels[h] == c).sum() for h in held]
            assert max(counts) - min(counts) <= 1
    assert [h.tolist() for h in held] == [h.tolist() for _, h in folds(n, k, 3, labels)]


def test_a_class_too_rare_to_stratify_falls_back_to_the_plain_split():
    y = np.array(["x"] * 50 + ["y"] * 49 + ["z"])  # one row of z: not every class can be on both sides
    train, test = split_rows(y, 0.25, 0, "t")
    plain = split(100, 0.25, 0)
    np.testing.assert_array_equal(train, plain[0])
    np.testing.assert_array_equal(test, plain[1])
    stratified = split_rows(y[:99], 0.25, 0, "t")[1]
    np.testing.assert_array_equal(stratified, split(99, 0.25, 0, y[:99])[1])


def test_a_split_that_would_leave_no_training_rows_is_refused():
    with pytest.raises(dp.DataError, match="cannot split 5 rows"):
        split_rows(np.arange(5.0), 0.9, 0, "t")


def _source(tmp_path, n=40):
    rng = np.random.default_rng(0)
    path = tmp_path / "t.csv"
    rows = ["x,label"] + [f"{rng.normal():.3f},{label}" for label in rng.choice(["p", "q"], n)]
    path.write_text("\n".join(rows) + "\n")
    source = {"path": str(path), "sha256": fingerprint(path), "target": "label", "seed": 4, "test_size": 0.25,
              "read": ReadOptions().to_config()}
    labels = np.array([row.split(",")[1] for row in rows[1:]])
    return source, labels


def test_a_model_source_without_a_split_record_gets_scikit_learns_held_out_rows(tmp_path):
    """Models saved before data/splits.py held out train_test_split's rows: evaluate re-derives exactly those."""
    source, labels = _source(tmp_path)
    _, theirs = train_test_split(np.arange(len(labels)), test_size=0.25, random_state=4, stratify=labels)
    frame, y = held_out(types.SimpleNamespace(source=source))
    assert frame["x"].tolist() == [float(v) for v in np.loadtxt(source["path"], delimiter=",", skiprows=1,
                                                                 usecols=0)[theirs]]
    np.testing.assert_array_equal(y, labels[theirs])
    _, ours = split(len(labels), 0.25, 4, labels)
    frame, y = held_out(types.SimpleNamespace(source={**source, "split": SPLIT}))
    np.testing.assert_array_equal(y, labels[ours])
    assert sorted(ours.tolist()) != sorted(theirs.tolist())  # (else this test could not tell the two apart)


def test_a_model_file_naming_an_unknown_split_is_refused():
    record = to_record(Pipeline([], source={"seed": 0, "test_size": 0.25, "split": SPLIT}))
    assert from_record(record, 2, 1, "m").source["split"] == SPLIT
    record["source"]["split"] = "someone-else's"
    with pytest.raises(dp.ModelFileError, match="source 'split' must be"):
        from_record(record, 2, 1, "m")


@pytest.mark.parametrize("classes", [np.array(["cat", "dog", "emu"]), np.array([0, 1, 2, 3])])
def test_the_confusion_matrix_counts_as_scikit_learns(classes):
    rng = np.random.default_rng(1)
    y = rng.choice(classes, 200)
    predicted = rng.choice(np.concatenate([classes, classes[:1]]), 200)
    np.testing.assert_array_equal(confusion_matrix(y, predicted, classes[:-1]),
                                  sklearn_confusion(y, predicted, labels=classes[:-1]))
