"""TableSpec: the record of what a table model was trained on (config.json "table")."""

import json

import pytest

from multilayer.errors import DataError
from multilayer.runs import RunDir
from multilayer.tabular import TableSpec


def good() -> dict:
    return {
        "target": ["price"],
        "task": "regression",
        "classes": [],
        "columns": ["size", "city"],
        "kinds": {"size": "numeric", "city": "categorical"},
    }


def test_round_trip_is_exact():
    for config in (
        good(),
        good() | {"task": "binary", "classes": ["no", "yes"]},
        good() | {"task": "multiclass", "classes": [0, 1.5, 2]},
        good() | {"task": "binary", "classes": [False, True]},
        good() | {"target": ["a", "b"], "task": "multilabel", "classes": ["a", "b"]},
    ):
        spec = TableSpec.from_config(json.loads(json.dumps(config)))
        assert spec.to_config() == config
        assert TableSpec.from_config(spec.to_config()) == spec


def test_n_outputs():
    assert TableSpec.from_config(good()).n_outputs == 1
    assert TableSpec(["y"], "binary", ["a", "b"], ["x"], {"x": "numeric"}).n_outputs == 1
    assert TableSpec(["y"], "multiclass", [1, 2, 3], ["x"], {"x": "numeric"}).n_outputs == 3


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"extra": 1},
            "table spec: expected the keys ['target', 'task', 'classes', 'columns', 'kinds']; missing [], unknown ['extra']",
        ),
        (
            {"task": "ranking"},
            "table spec: 'task' must be one of ['regression', 'binary', 'multiclass', 'multilabel'], got 'ranking'",
        ),
        ({"target": "price"}, "table spec: 'target' must be a list of column names, not str"),
        ({"target": []}, "table spec: 'target' must name at least one column"),
        (
            {"target": [1]},
            "table spec: 'target' entries must be non-empty strings of at most 1000 characters, got 1",
        ),
        (
            {"target": ["a", "b"]},
            "table spec: several target columns ['a', 'b'] make a multilabel task, not 'regression'",
        ),
        (
            {"columns": ["size", "size"], "kinds": {"size": "numeric"}},
            "table spec: 'columns' has 'size' twice",
        ),
        (
            {"columns": ["size", "price"], "kinds": {"size": "numeric", "price": "numeric"}},
            "table spec: the target column(s) ['price'] cannot also be input columns",
        ),
        (
            {"kinds": {"size": "numeric"}},
            "table spec: 'kinds' must give one kind per column; missing ['city'], extra []",
        ),
        (
            {"kinds": {"size": "numeric", "city": "text"}},
            "table spec: the kind of column 'city' must be one of ['numeric', 'categorical', 'boolean'], got 'text'",
        ),
        ({"kinds": []}, "table spec: 'kinds' must be an object, not list"),
        ({"classes": [1]}, "table spec: a regression has no classes, got 1"),
        ({"task": "binary", "classes": ["a"]}, "table spec: a binary task has two classes, got 1"),
        ({"task": "multiclass", "classes": ["a", "a"]}, "table spec: 'classes' has 'a' twice"),
        (
            {"task": "multiclass", "classes": ["a", None]},
            "table spec: class labels must be strings, numbers or booleans, got None",
        ),
        (
            {"task": "multiclass", "classes": ["a", [1]]},
            "table spec: class labels must be strings, numbers or booleans, got [1]",
        ),
        (
            {"task": "multilabel", "classes": ["x"]},
            "table spec: a multilabel task's classes are its target columns ['price'], got ['x']",
        ),
    ],
)
def test_hostile_configs_are_refused_by_name(change, message):
    with pytest.raises(DataError) as info:
        TableSpec.from_config(good() | change)
    assert str(info.value) == message


def test_true_and_one_are_different_labels():
    spec = TableSpec(["y"], "binary", [1, True], ["x"], {"x": "numeric"})
    assert spec.classes == [1, True]


def test_not_an_object_and_size_limits():
    with pytest.raises(DataError, match=r"^table spec: must be a JSON object, not list$"):
        TableSpec.from_config([])
    many = [f"c{k}" for k in range(100_001)]
    with pytest.raises(
        DataError, match=r"^table spec: 'columns' has 100,001 entries \(limit 100,000\)$"
    ):
        TableSpec.from_config(good() | {"columns": many})


def test_run_dir_table_spec(tmp_path):
    run = RunDir(tmp_path)
    assert run.table_spec() is None  # no config.json
    run.write_config({"recipe": "fast"})
    assert run.table_spec() is None  # an image run
    run.write_config({"recipe": "tabular", "table": good()})
    assert run.table_spec() == TableSpec.from_config(good())
    run.write_config({"recipe": "tabular", "table": good() | {"task": "nope"}})
    with pytest.raises(DataError) as info:
        run.table_spec()
    assert str(info.value).startswith(f"{run.config_path}: table spec: 'task' must be one of")
