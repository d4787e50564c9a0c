"""Table behaviour shared by every source: splits, features, rows_by_class, the registry."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import load, loaded_spec
from polytask.compiler.data import ColumnInfo, Table, available_sources, get_source, load_table
from polytask.compiler.data.table import split_indices
from polytask.errors import DataError
from polytask.spec.models import Split


def test_every_spec_source_is_registered():
    assert available_sources() == sorted(["csv", "npz", "image_folder", "tfrecord", "sklearn", "synthetic", "python",
                                          "parquet", "tfds"])
    with pytest.raises(DataError, match="unknown data source 'feather'"):
        get_source("feather")


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 10, 101, 1000])
def test_splits_partition_the_rows(rows):
    parts = split_indices(rows, Split(train=0.7, validation=0.1, test=0.2), seed=3)
    everything = np.concatenate([parts["train"], parts["validation"], parts["test"]])
    assert sorted(everything.tolist()) == list(range(rows))
    if rows >= 10:
        assert abs(len(parts["train"]) - 0.7 * rows) <= 1
        assert len(parts["validation"]) >= 1 and len(parts["test"]) >= 1


def test_splits_follow_the_seed():
    split = Split(train=0.5, test=0.5)
    a, b, c = (split_indices(100, split, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a["train"], b["train"])
    assert not np.array_equal(a["train"], c["train"])


def test_load_table_uses_spec_seed_and_override(tmp_path):
    dataset = {"source": "sklearn", "name": "iris", "split": {"train": 0.5, "test": 0.5}}
    by_spec = load(tmp_path, dataset, seed=4)
    loaded = loaded_spec(tmp_path, {"d": dataset}, seed=0)
    by_override = load_table("d", loaded.spec.datasets["d"], loaded, seed=4)
    assert np.array_equal(by_spec.rows("train"), by_override.rows("train"))
    assert not np.array_equal(by_spec.rows("train"), load(tmp_path, dataset, seed=0).rows("train"))


def _table(columns, feature_columns=None):
    from polytask.compiler.data.table import infer_column_info, normalize_column

    columns = {k: normalize_column(np.asarray(v)) for k, v in columns.items()}
    return Table(
        name="t",
        columns=columns,
        info={k: infer_column_info(v) for k, v in columns.items()},
        split_indices=split_indices(len(next(iter(columns.values()))), Split(train=0.6, validation=0.0, test=0.4), 0),
        feature_columns=feature_columns,
    )


def test_features_concatenate_flattened_columns_in_order():
    table = _table({"a": [1.0, 2.0, 3.0], "b": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "y": [0, 1, 0]})
    x = table.features(None, targets={"y"})
    assert x.dtype == np.float32 and x.shape == (3, 3)
    assert x[1].tolist() == [2.0, 3.0, 4.0]
    assert table.features(["b", "a"], targets={"y"})[0].tolist() == [1.0, 2.0, 1.0]
    assert table.features(["a"], targets=(), rows=np.array([2])).tolist() == [[3.0]]


def test_single_image_column_keeps_its_shape():
    table = _table({"image": np.zeros((4, 5, 5, 1)), "label": [0, 1, 1, 0]}, feature_columns=["image"])
    assert table.features(None, targets={"label"}).shape == (4, 5, 5, 1)


def test_feature_errors_are_data_errors():
    table = _table({"a": [1.0, np.nan, 3.0], "c": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    with pytest.raises(DataError, match="feature column 'a' .* 1 missing"):
        table.features(None, targets={"y"})
    with pytest.raises(DataError, match="did you mean 'c'"):
        table.features(["cc"], targets={"y"})
    with pytest.raises(DataError, match="both an input feature and a target"):
        table.features(["c", "y"], targets={"y"})
    with pytest.raises(DataError, match="no such column"):
        table.column("target", task="digit")


def test_empty_split_requested_is_a_data_error():
    table = _table({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert len(table.rows("validation", required=False)) == 0
    with pytest.raises(DataError, match="validation split of dataset 't' is empty") as info:
        table.split("validation")
    assert "datasets.t.split" in info.value.hint


def test_tiny_dataset_with_empty_train_split_fails_at_load(tmp_path):
    (tmp_path / "one.csv").write_text("a,y\n1,0\n")
    with pytest.raises(DataError, match="train split .* is empty"):
        load(tmp_path, {"source": "csv", "path": "one.csv", "split": {"train": 0.4, "test": 0.6}})


def test_rows_by_class_groups_and_skips_missing():
    table = _table({"label": [2, 0, -1, 2, 1, 0]})
    groups = table.rows_by_class("label")
    assert [g.tolist() for g in groups] == [[1, 5], [4], [0, 3]]
    assert [g.tolist() for g in table.rows_by_class("label", rows=np.array([0, 1, 2]))] == [[1], [], [0]]


def test_column_info_of_labels_and_numbers():
    from polytask.compiler.data.table import infer_column_info, normalize_column

    labels = infer_column_info(normalize_column(np.array([0, 3, -1, 2])))
    assert labels == ColumnInfo(shape=(), dtype="int64", categorical=True, num_classes=4, missing=1)
    plus_minus = normalize_column(np.array([1, -1, -1, 1]))
    assert plus_minus.dtype == np.float32 and plus_minus.tolist() == [1, -1, -1, 1]
    big = normalize_column(np.array([5, 5000]))
    assert big.dtype == np.float32 and not infer_column_info(big).categorical
    assert infer_column_info(normalize_column(np.array([[1, 2]]))).dtype == "float32"


def test_parsed_files_are_cached_read_only_and_bounded(tmp_path, monkeypatch):
    from polytask.compiler.data import files

    (tmp_path / "c.csv").write_text("a,y\n1,0\n2,1\n3,0\n")
    dataset = {"source": "csv", "path": "c.csv"}
    first, second = load(tmp_path, dataset), load(tmp_path, dataset)
    assert first.columns["a"] is second.columns["a"]  # parsed once
    with pytest.raises(ValueError):
        first.columns["a"][0] = 5.0  # nobody can change what the next caller gets
    monkeypatch.setattr(files, "CACHE_BYTES", 0)
    files.clear_cache()
    assert load(tmp_path, dataset).columns["a"] is not load(tmp_path, dataset).columns["a"]


def test_errors_point_at_the_spec_line_when_loaded_from_a_file(tmp_path):
    from polytask.spec.loader import load_spec

    (tmp_path / "spec.yaml").write_text(
        "polytask: 1\nname: where\ndatasets:\n  survey:\n    source: csv\n    path: missing.csv\n"
        "tasks:\n  t: {dataset: survey, target: y, loss: mse}\n"
    )
    loaded = load_spec(tmp_path / "spec.yaml", check_data=False)
    with pytest.raises(DataError, match="csv file not found") as info:
        load_table("survey", loaded.spec.datasets["survey"], loaded)
    assert info.value.where == f"{tmp_path / 'spec.yaml'}:6:11"


@pytest.mark.parametrize(
    "dataset, targets",
    [
        ({"source": "sklearn", "name": "linnerud"}, {"Weight"}),
        ({"source": "synthetic", "generator": {"kind": "sinusoid", "tasks": 2}, "samples": 20}, {"task_0"}),
        ({"source": "csv", "path": "c.csv"}, {"y"}),
        ({"source": "csv", "path": "c.csv", "features": ["b"]}, {"y"}),
        ({"source": "npz", "path": "n.npz", "features": "x"}, {"label"}),
        ({"source": "image_folder", "path": "imgs", "image_size": [4, 4]}, {"label"}),
    ],
)
def test_default_input_columns_match_the_loaded_table(tmp_path, dataset, targets):
    from PIL import Image

    from data_support import describe
    from polytask.compiler.data import default_input_columns

    (tmp_path / "c.csv").write_text("x,b,y\n1,2,0\n3,4,1\n5,6,0\n")
    np.savez(tmp_path / "n.npz", x=np.zeros((4, 2)), label=np.arange(4), name=np.array(list("abcd")))
    for c in ("p", "q"):
        (tmp_path / "imgs" / c).mkdir(parents=True, exist_ok=True)
        Image.new("L", (4, 4)).save(tmp_path / "imgs" / c / "0.png")
    table = load(tmp_path, dataset)
    expected = table.input_columns(None, targets)
    assert default_input_columns(table_spec(tmp_path, dataset), describe(tmp_path, dataset), targets) == expected
    if dataset["source"] == "csv" and "features" not in dataset:
        assert expected == ["x", "b"]  # a csv column called x is not special


def table_spec(folder, dataset):
    return loaded_spec(folder, {"d": dataset}).spec.datasets["d"]


def test_text_columns_are_not_default_inputs():
    table = _table({"a": [1.0, 2.0], "name": np.array(["u", "v"]), "y": [0, 1]})
    assert table.input_columns(None, {"y"}) == ["a"]
    with pytest.raises(DataError, match="holds text"):
        table.features(["name"], targets={"y"})


def test_importing_and_using_the_data_layer_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from polytask.compiler.data import available_sources, describe_table\n"
        "from polytask.spec.loader import LoadedSpec\n"
        "from polytask.spec.models import Spec\n"
        "available_sources()\n"
        "s = Spec.model_validate({'polytask': 1, 'name': 't', 'datasets': {'d': {'source': 'synthetic', "
        "'generator': {'kind': 'mmoe'}}}})\n"
        "describe_table('d', s.datasets['d'], LoadedSpec(spec=s, path=__import__('pathlib').Path('x.yaml')))\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
