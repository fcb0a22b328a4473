"""The preprocessing record of a model file: the one place that writes and reads it, checked like the layers.

    {"version": 1,
     "stages": [{"stage": "table", "config": {...}}, {"stage": "scaler" or "robust", "config": {...}},
                {"stage": "piecewise", "config": {"bins": ..., "edges": [...], "names": [...]}} (optional)],
     "target": {"stage": "scaler" or "robust", "config": {...}} or null,
     "feature_names": [...] or null, "class_names": [...] or null,
     "source": {"data": ..., "target": ..., "read": {...}, "path": ..., "sha256": ..., "seed": ...,
                "test_size": ..., "split": ..., "streamed": ..., "folds": ..., "out_of_fold": ...}}

Files written before the record existed kept the same things as loose keys of ``extra``
("table", "scaler", "target_scaler", ...): ``split_legacy`` turns them into a Pipeline, so such a
model predicts as it did. Everything is validated before use: a forged record is a ModelFileError
naming what is wrong, never a TypeError from deep inside.
"""

from __future__ import annotations

import math

from ..data.columns import TableEncoder
from ..data.piecewise import PiecewiseLinear
from ..data.robust import RobustScaler
from ..data.scaling import Scaler
from ..data.splits import SPLIT
from ..data.tables import ReadOptions
from ..errors import DeltapropError, ModelFileError
from .pipeline import Pipeline

VERSION = 1
# each kind: to_config() and from_config(config)
STAGES: dict[str, type[TableEncoder] | type[Scaler] | type[PiecewiseLinear]] = {
    "table": TableEncoder, "scaler": Scaler, "robust": RobustScaler, "piecewise": PiecewiseLinear}
MAX_STAGES = 16
MAX_NAME = 10_000  # characters of a column or class name
LEGACY_KEYS = ("table", "scaler", "target_scaler", "feature_names", "class_names", "data", "target", "streamed")
SOURCE_KEYS: dict[str, type | tuple[type, ...]] = {
    "data": str, "target": (str, int, type(None)), "path": str, "sha256": str, "seed": int, "test_size": (int, float),
    "streamed": bool, "read": dict, "split": str, "folds": int, "out_of_fold": (int, float)}
MAX_FOLDS = 64  # a cross-fitted model's network count, as recorded (the CLI trains at most 20)


def to_record(pipeline: Pipeline) -> dict:
    """The pipeline as plain JSON for the model file."""
    return {"version": VERSION, "stages": [_stage_record(s) for s in pipeline.stages],
            "target": None if pipeline.target is None else _stage_record(pipeline.target),
            "feature_names": pipeline.feature_names, "class_names": pipeline.class_names,
            "source": dict(pipeline.source)}


def _stage_record(stage) -> dict:
    kind = next(name for name, cls in STAGES.items() if type(stage) is cls)  # (a RobustScaler is a Scaler too)
    return {"stage": kind, "config": stage.to_config()}


def from_record(record, n_in: int, n_out: int, path) -> Pipeline:
    """The Pipeline a model file's record describes, checked: each stage by its own ``from_config``, the
    widths chained from the raw inputs to layer 1's n_0 (and the target's to n_L), the names and source."""
    _need(isinstance(record, dict), path, "must be a JSON object")
    unknown = set(record) - {"version", "stages", "target", "feature_names", "class_names", "source"}
    _need(not unknown, path, f"holds unknown key(s) {sorted(unknown)[:5]}")
    _need(record.get("version") == VERSION, path, f"version {record.get('version')!r} is not {VERSION}")
    stages = record.get("stages", [])
    _need(isinstance(stages, list) and len(stages) <= MAX_STAGES, path, f"'stages' must be a list of at most "
          f"{MAX_STAGES}")
    pipeline = Pipeline([_stage(entry, path) for entry in stages])
    _need(not any(isinstance(s, TableEncoder) for s in pipeline.stages[1:]), path, "only the first stage may be a "
          "table")
    _need(sum(isinstance(s, PiecewiseLinear) for s in pipeline.stages) <= 1, path, "at most one stage may be "
          "piecewise-linear")
    target = record.get("target")
    pipeline.target = None if target is None else _stage(target, path)
    _need(pipeline.target is None or isinstance(pipeline.target, Scaler), path, "the target stage must be a scaler")
    _need(not isinstance(pipeline.target, RobustScaler) or not pipeline.target.fitted_clip().any(), path,
          "the target's robust stage must not clip (the clip has no inverse beyond its bound)")
    pipeline.feature_names = _names(record.get("feature_names"), "feature_names", path)
    pipeline.class_names = _names(record.get("class_names"), "class_names", path)
    pipeline.source = _source(record.get("source", {}), path)
    _check_widths(pipeline, n_in, n_out, path)
    return pipeline


def _stage(entry, path):
    _need(isinstance(entry, dict) and set(entry) == {"stage", "config"} and entry["stage"] in STAGES, path,
          f"a stage must be {{stage, config}} with stage one of {sorted(STAGES)}")
    _need(isinstance(entry["config"], dict), path, f"the {entry['stage']} stage's config must be an object")
    try:
        return STAGES[entry["stage"]].from_config(entry["config"])
    except DeltapropError as exc:
        raise ModelFileError(f"{path}: invalid preprocessing record: the {entry['stage']} stage: {exc}") from None


def _names(names, key: str, path):
    if names is None:
        return None
    _need(isinstance(names, list) and all(isinstance(n, str) and len(n) <= MAX_NAME for n in names), path,
          f"'{key}' must be a list of names")
    return names


def _source(source, path) -> dict:
    _need(isinstance(source, dict), path, "'source' must be an object")
    for key, value in source.items():
        _need(key in SOURCE_KEYS, path, f"'source' holds an unknown key {key!r}")
        kind = SOURCE_KEYS[key]
        _need(isinstance(value, kind) and not (kind is int and isinstance(value, bool)), path,
              f"source {key!r} has the wrong type ({type(value).__name__})")
    _need(not isinstance(source.get("test_size"), bool) and (
        "test_size" not in source or math.isfinite(source["test_size"]) and 0 <= source["test_size"] < 1), path,
        "source 'test_size' must be a number in [0, 1)")
    _need(0 <= source.get("seed", 0) < 2**63, path, "source 'seed' must be in 0..2^63-1")
    _need(source.get("split", SPLIT) == SPLIT, path, f"source 'split' must be {SPLIT!r} (data/splits.py), the one "
          "split this version of deltaprop re-derives; models saved before it have none")
    _need(2 <= source.get("folds", 2) <= MAX_FOLDS, path, f"source 'folds' must be in 2..{MAX_FOLDS}")
    _need(math.isfinite(source.get("out_of_fold", 0)), path, "source 'out_of_fold' must be a finite number")
    if "read" in source:
        try:
            ReadOptions.from_config(source["read"])
        except DeltapropError as exc:
            raise ModelFileError(f"{path}: invalid preprocessing record: {exc}") from None
    return source


def _check_widths(pipeline: Pipeline, n_in: int, n_out: int, path) -> None:
    """Each stage's output is as wide as the next one's input, and the last as wide as layer 1's n_0."""
    width = None
    for stage in pipeline.stages:
        if isinstance(stage, TableEncoder):
            _need(bool(stage.columns), path, "the table stage has no columns")
            names = [c.name for c in stage.columns]
            _need(all(names) and len(set(names)) == len(names), path, "the table's column names must be "
                  "distinct and not empty")
            width = stage.width
        elif isinstance(stage, PiecewiseLinear):
            _need(width is None or stage.n_in == width, path, f"the piecewise-linear stage takes {stage.n_in} "
                  f"inputs, the stage before it gives {width}")
            width = stage.width
        else:
            _need(width is None or len(stage.shift) == width, path, f"the scaler takes {len(stage.shift)} inputs, "
                  f"the stage before it gives {width}")
            width = len(stage.shift)
    _need(width is None or width == n_in, path, f"the preprocessing gives {width} inputs, layer 1 takes {n_in}")
    target_width = 0 if pipeline.target is None else len(pipeline.target.fitted()[0])
    _need(pipeline.target is None or target_width == n_out, path,
          f"the target scaling is for {target_width} output(s), the network has {n_out}")
    _need(pipeline.feature_names is None or len(pipeline.feature_names) == n_in, path,
          f"'feature_names' names {len(pipeline.feature_names or [])} inputs, layer 1 takes {n_in}")


def split_legacy(extra: dict, n_in: int, n_out: int, path) -> tuple[Pipeline, dict]:
    """A file of the format before the record: (its Pipeline, what is left of ``extra``)."""
    rest = {k: v for k, v in extra.items() if k not in LEGACY_KEYS}
    table = extra.get("table")
    stages = []
    if table is not None:
        _need(isinstance(table, dict) and isinstance(table.get("columns"), dict), path, "'table' must hold 'columns'")
        stages.append({"stage": "table", "config": table["columns"]})
    if extra.get("scaler") is not None:
        stages.append({"stage": "scaler", "config": extra["scaler"]})
    source = {k: v for k, v in (table or {}).items() if k in SOURCE_KEYS}
    source.update({k: extra[k] for k in ("data", "streamed") if k in extra})
    if "target" in extra and "target" not in source:
        source["target"] = extra["target"]
    record = {"version": VERSION, "stages": stages, "feature_names": extra.get("feature_names"),
              "class_names": extra.get("class_names") or None, "source": source,
              "target": None if extra.get("target_scaler") is None else {"stage": "scaler",
                                                                           "config": extra["target_scaler"]}}
    return from_record(record, n_in, n_out, path), rest


def _need(condition: bool, path, what: str) -> None:
    if not condition:
        raise ModelFileError(f"{path}: invalid preprocessing record: {what}")
