"""Real tables: text categories, missing values, identifier columns, columns matched by name.

The tables are generated with a known structure (the label follows from a text category and a
number with gaps), so the expected accuracy is known; each reproduction of the table issue is a
test here: an all-text file, a ;-delimited file with decimal commas, reordered columns, a leftover
index column that leaks the label, an unseen category, a missing column, evaluate without --data.
"""

import csv
import io

import numpy as np
import pandas as pd
import pytest

import deltaprop as dp
from deltaprop.data import ReadOptions, TableEncoder, read_table
from helpers import summary_figure
from test_cli import deltaprop

pytestmark = pytest.mark.slow  # trains table models with the CLI in subprocesses (not in the quick tier)


def penguins(n=600, seed=0) -> pd.DataFrame:
    """island decides the species, except that a long bill makes Biscoe birds Gentoo; 10% of bills and
    sexes missing. A careful model reaches about 1.0 test accuracy; ignoring island, about 0.5."""
    rng = np.random.default_rng(seed)
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], n)
    bill = rng.normal(45, 6, n)
    species = np.where(island == "Dream", "Chinstrap", np.where(island == "Torgersen", "Adelie",
                                                               np.where(bill > 45, "Gentoo", "Adelie")))
    sex = rng.choice(["male", "female"], n).astype(object)
    sex[rng.random(n) < 0.1] = None
    bill_seen = bill.copy()
    bill_seen[(rng.random(n) < 0.1) & (island != "Biscoe")] = np.nan  # gaps where the bill does not matter
    return pd.DataFrame({"island": island, "bill_mm": bill_seen.round(1), "sex": sex, "species": species})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CLI run on penguins.csv, written with pandas' index column (sorted by species: it would leak)."""
    folder = tmp_path_factory.mktemp("tables")
    frame = penguins().sort_values("species").reset_index(drop=True)
    frame.to_csv(folder / "penguins.csv")  # header "" over 0..n-1
    result = deltaprop("train", "--data", folder / "penguins.csv", "--target", "species", "--epochs", 40,
                       "--layers", "16", "--out", folder / "run", "--no-plots", cwd=folder)
    return folder, result


def test_training_prints_the_column_table_and_learns(trained):
    folder, result = trained
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.split("|")]
                                              for line in result.stdout.splitlines()[:7] if "|" in line)}
    assert rows["island"] == ["categorical", "one-hot, 3 categories"]
    assert rows["bill_mm"][0] == "numeric" and rows["bill_mm"][1].startswith("missing -> median 4")
    assert rows["sex"] == ["categorical", "one-hot, 2 categories + a missing level"]
    assert rows["Unnamed: 0"] == ["dropped", "an unnamed (index) column"]
    out = result.stdout
    accuracy = float(summary_figure(out, "test accuracy"))
    # it learns (ignoring island: about 0.5); 0.94 to 1.0 over seeds 0-5 and both splits (scikit-learn's, and
    # data/splits.py's, which puts 9 hard rows of 150 in seed 0's test part)
    assert accuracy > 0.93
    net = dp.load(folder / "run" / "model.safetensors")
    encoder, scaler = net.pipeline.stages  # the model's preprocessing: the table's encoding, then the scaling
    assert net.pipeline.columns == ["island", "bill_mm", "sex"]
    # inputs: island=3 one-hot, bill_mm, bill_mm missing, sex=2 one-hot + missing
    assert scaler.scale[3] != 1.0 and [scaler.scale[k] for k in (0, 1, 2, 4, 5, 6, 7)] == [1.0] * 7
    assert [scaler.shift[k] for k in (0, 1, 2, 4, 5, 6, 7)] == [0.0] * 7  # 0/1 inputs are not standardized
    assert encoder.dropped == [("Unnamed: 0", "an unnamed (index) column")]


def test_reordered_columns_give_the_same_predictions_bit_for_bit(trained, tmp_path):
    folder, _ = trained
    frame = pd.read_csv(folder / "penguins.csv")
    frame[["sex", "species", "bill_mm", "island"]].to_csv(tmp_path / "shuffled.csv", index=False)
    frame.assign(extra=1.0).to_csv(tmp_path / "extra.csv", index=False)
    model = folder / "run" / "model.safetensors"
    outputs = [deltaprop("predict", model, "--data", path, "--proba").stdout
               for path in (folder / "penguins.csv", tmp_path / "shuffled.csv", tmp_path / "extra.csv")]
    assert outputs[0] == outputs[1] == outputs[2] and outputs[0].count("\n") == len(frame) + 1


def test_evaluate_without_data_scores_exactly_the_held_out_rows_from_any_folder(trained, tmp_path):
    folder, result = trained
    model = folder / "run" / "model.safetensors"
    evaluated = deltaprop("evaluate", model, cwd=tmp_path).stdout  # another folder: the path is absolute
    assert evaluated.startswith("samples: 150 ")  # 25% of 600, not the whole file
    test_accuracy = summary_figure(result.stdout, "test accuracy")
    assert f"accuracy: {test_accuracy}" in evaluated
    changed = tmp_path / "penguins.csv"
    changed.write_text((folder / "penguins.csv").read_text() + "600,Dream,40.0,male,Chinstrap\n")
    net = dp.load(model)
    net.pipeline.source["path"] = str(changed)
    net.save(tmp_path / "moved.safetensors")
    failed = deltaprop("evaluate", tmp_path / "moved.safetensors", check=False)
    assert failed.returncode == 2 and "changed since the model was trained on it" in failed.stderr


def test_unseen_category_is_zeros_and_noted_a_missing_column_is_named(trained, tmp_path):
    folder, _ = trained
    model = folder / "run" / "model.safetensors"
    (tmp_path / "new.csv").write_text("island,bill_mm,sex\nMars,40.0,male\nDream,,\n")
    result = deltaprop("predict", model, "--data", tmp_path / "new.csv")
    assert "column 'island': 1 row(s) hold a category never seen in training" in result.stderr
    assert result.stdout.splitlines()[2] == "Chinstrap"  # the missing bill and sex are imputed
    (tmp_path / "nosex.csv").write_text("island,bill_mm\nDream,40.0\n")
    failed = deltaprop("predict", model, "--data", tmp_path / "nosex.csv", check=False)
    assert failed.returncode == 2 and "lacks column(s) ['sex']" in failed.stderr


def test_all_text_table_finds_its_header(tmp_path):
    """Every cell text, the target too: the header used to be read as data ('no target column')."""
    rng = np.random.default_rng(1)
    klass = rng.choice(["first", "second", "third"], 400)
    sex = rng.choice(["male", "female"], 400)
    survived = np.where((sex == "female") | (klass == "first"), "yes", "no")
    pd.DataFrame({"class": klass, "sex": sex, "survived": survived}).to_csv(tmp_path / "titanic.csv", index=False)
    result = deltaprop("train", "--data", tmp_path / "titanic.csv", "--target", "survived", "--epochs", 30,
                       "--out", tmp_path / "run", "--no-plots")
    assert float(summary_figure(result.stdout, "test accuracy")) == 1.0


def test_semicolons_and_decimal_commas_are_read_as_numbers(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    lines = ["x;colour;y"] + [f"{v:.3f}".replace(".", ",") + f";{'rot' if v > 0 else 'blau'};{int(v > 0.5)}"
                             for v in x]
    (tmp_path / "eu.csv").write_text("\n".join(lines) + "\n")
    frame = read_table(tmp_path / "eu.csv")
    assert frame["x"].dtype == np.float64 and frame["x"].iloc[0] == pytest.approx(round(x[0], 3))
    forced = read_table(tmp_path / "eu.csv", ReadOptions(delimiter=";", decimal="."))
    assert frame["x"].dtype == np.float64 and forced["x"].dtype != np.float64  # forced: "0,126" stays text
    result = deltaprop("train", "--data", tmp_path / "eu.csv", "--epochs", 40, "--out", tmp_path / "run",
                       "--no-plots")
    assert float(summary_figure(result.stdout, "test accuracy")) > 0.9


def test_quoted_newlines_and_a_tsv_file(tmp_path):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerows([["note", "n", "y"], ["two\nlines", 1, "a"], ["plain", 2, "b"]])
    (tmp_path / "q.csv").write_text(text.getvalue())
    frame = read_table(tmp_path / "q.csv")
    assert frame.shape == (2, 3) and frame["note"].iloc[0] == "two\nlines"
    (tmp_path / "t.tsv").write_text("a\tb\n1\tx\n2\ty\n")
    assert list(read_table(tmp_path / "t.tsv").columns) == ["a", "b"]


def test_encoder_from_python_on_dataframes_dicts_and_polars():
    frame = penguins(200)
    encoder = TableEncoder().fit(frame, target="species")
    X = encoder.transform(frame)
    assert X.shape == (200, len(encoder.feature_names)) and np.isfinite(X).all()
    assert encoder.feature_names[:3] == ["island=Biscoe", "island=Dream", "island=Torgersen"]
    again = TableEncoder.from_config(encoder.to_config())
    np.testing.assert_array_equal(again.transform(frame[frame.columns[::-1]]), X)  # any order, same bits
    np.testing.assert_array_equal(again.transform({c: frame[c].tolist() for c in frame.columns}), X)
    polars = pytest.importorskip("polars", reason="polars is in the test extra")
    np.testing.assert_array_equal(again.transform(polars.from_pandas(frame)), X)


def test_missing_numbers_get_the_training_median_and_an_indicator():
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0, 10.0], "y": [0, 1, 0, 1]})
    encoder = TableEncoder().fit(train, target="y")
    assert encoder.feature_names == ["x", "x missing"]
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame({"x": [np.nan, 2.0]})), [[3.0, 1.0], [2.0, 0.0]])


def test_overrides_and_identifiers():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"code": rng.integers(1, 4, 50), "name": [f"passenger {i}" for i in range(50)],
                          "noise": rng.normal(size=50), "y": rng.integers(0, 2, 50)})
    encoder = TableEncoder(categorical=["code"], drop=["noise"]).fit(frame, target="y")
    assert [c.kind for c in encoder.columns] == ["categorical"]
    assert dict(encoder.dropped) == {"name": "an identifier: 50 distinct values in 50 rows", "noise": "--drop"}
    with pytest.raises(dp.DataError, match="column 'name' is numeric but data row 1 holds 'passenger 0'"):
        TableEncoder(numeric=["name"]).fit(frame, target="y")


def test_parquet_through_the_same_preprocessing(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow: pip install 'deltaprop[parquet]' (the test extra)")
    frame = penguins(600)
    frame.to_parquet(tmp_path / "p.parquet")
    read = read_table(tmp_path / "p.parquet")
    assert read["bill_mm"].isna().sum() == frame["bill_mm"].isna().sum() and read["sex"].isna().any()
    result = deltaprop("train", "--data", tmp_path / "p.parquet", "--target", "species", "--epochs", 60,
                       "--layers", "16", "--out", tmp_path / "run", "--no-plots")
    assert float(summary_figure(result.stdout, "test accuracy")) > 0.95
    net = dp.load(tmp_path / "run" / "model.safetensors")
    predicted = net.predict(frame)  # Python: the raw DataFrame, as deltaprop predict takes the file
    assert (predicted == frame["species"].to_numpy()).mean() > 0.95


def test_regression_target_rows_without_a_target_and_the_predicted_plot(tmp_path):
    rng = np.random.default_rng(4)
    n = 400
    size = rng.uniform(50, 200, n)
    district = rng.choice(["north", "south"], n)
    price = 1000 * size + np.where(district == "north", 50_000, 0) + rng.normal(0, 2000, n)
    frame = pd.DataFrame({"size": size.round(1), "district": district, "price": price.round(2)})
    frame.loc[:9, "price"] = np.nan
    frame.to_csv(tmp_path / "houses.csv", index=False)
    result = deltaprop("train", "--data", tmp_path / "houses.csv", "--epochs", 60, "--out", tmp_path / "run")
    assert "left out 10 row(s) whose target 'price' is missing" in result.stdout
    assert float(summary_figure(result.stdout, "test R^2")) > 0.9
    assert (tmp_path / "run" / "predicted.png").read_bytes().startswith(b"\x89PNG")


def test_zero_epochs_is_refused_before_anything_is_written(tmp_path):
    failed = deltaprop("train", "--epochs", "0", "--out", tmp_path / "run", check=False)
    assert failed.returncode == 2 and "epochs must be at least 1" in failed.stderr
    assert not (tmp_path / "run").exists()


def test_auto_epochs_give_a_small_table_enough_steps():
    """Without --epochs: 4000 steps (30 to 1000 epochs) and early stopping on the validation loss; 30
    epochs of a 300-row table were 270 steps, too few to fit it."""
    from deltaprop.cli.epochs import auto_epochs
    from deltaprop.cli.options import DEFAULTS

    one = {**DEFAULTS, "validation_split": 0.1}  # one network's split (cli/folds.py settles it)
    assert auto_epochs(one, 300) == (445, 20)  # ceil(270 / 32) = 9 batches per epoch
    assert auto_epochs(one, 60000) == (30, 20)
    assert auto_epochs({**DEFAULTS, "patience": 3, "validation_split": 0.0}, 10) == (1000, 3)


def test_a_model_from_before_tables_matches_its_feature_names(tmp_path):
    """A model that stores only feature_names (all-numeric CSV, trained before column encoding was saved)
    still predicts a reordered file by name: the names were stored but never used, and a reordered file
    gave wrong answers with exit 0."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = (frame["a"] > frame["b"]).astype(int)
    frame.to_csv(tmp_path / "ab.csv", index=False)
    deltaprop("train", "--data", tmp_path / "ab.csv", "--epochs", 20, "--out", tmp_path / "run", "--no-plots")
    net = dp.load(tmp_path / "run" / "model.safetensors")
    net.pipeline.stages = net.pipeline.stages[1:]  # the scaling alone, no column encoding: an older deltaprop's
    net.save(tmp_path / "old.safetensors")
    frame[["b", "y", "a"]].to_csv(tmp_path / "ba.csv", index=False)
    same = [deltaprop("predict", tmp_path / "old.safetensors", "--data", tmp_path / name).stdout
            for name in ("ab.csv", "ba.csv")]
    assert same[0] == same[1]
    frame[["b"]].to_csv(tmp_path / "b.csv", index=False)
    failed = deltaprop("predict", tmp_path / "old.safetensors", "--data", tmp_path / "b.csv", check=False)
    assert failed.returncode == 2 and "lacks column(s) ['a']" in failed.stderr


def test_a_number_column_with_stray_text_is_refused_not_made_categories():
    """A price column with one "unknown" cell was read as text; as categories every price would be a
    label of its own (or the column dropped as an identifier): refused, naming the value and the fixes."""
    frame = pd.DataFrame({"price": [str(10.5 + i) for i in range(30)] + ["unknown"], "y": [0, 1] * 15 + [0]})
    with pytest.raises(dp.DataError, match=r"column 'price' holds numbers but also 1 text value\(s\), e.g. "
                                           r"'unknown' at data row 31; mark them missing with --na-values"):
        TableEncoder().fit(frame, target="y")
    X = TableEncoder(categorical=["price"]).fit(frame, target="y").transform(frame)  # when the user says so
    assert X.shape == (31, 31)


@pytest.mark.parametrize("flag", ["numeric", "categorical"])
def test_a_column_named_numeric_or_categorical_without_values_is_refused_by_name(flag):
    """It was fitted with the median of no values (NumPy's "mean of an empty slice", NaN) or no categories."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "e": [np.nan] * 3})
    with pytest.raises(dp.DataError, match=rf"column 'e' \(given as {flag}\) has no values"):
        dp.data.TableEncoder(**{flag: ["e"]}).fit(frame)
    assert dp.data.TableEncoder().fit(frame).dropped == [("e", "no values")]
