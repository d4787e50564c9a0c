"""What `polytask check` knows about a dataset agrees with what the data layer loads.

Each source descriptor owns both sides: its cheap facts (`static_facts`, and `facts`, which
reads headers and listings only) and its loader. These tests load small data through every
built-in source and compare, column by column, so a loader change that the facts do not
follow (or the reverse) fails here rather than as a wrong `check` in a user's run.
"""
from __future__ import annotations

import numpy as np
import pytest

from data_support import describe, load, loaded_spec
from polytask.spec.data_checks import probe, static_facts
from polytask.spec.facts import input_columns
from polytask.spec.registry import GENERATORS, SOURCES

pytest.importorskip("polytask.compiler.data")


def _write_files(folder):
    from PIL import Image

    (folder / "c.csv").write_text("a,b,y,z\n1,2.5,0,-1\n3,4,2,7\n5,6,1,\n")
    np.savez(folder / "n.npz", x=np.zeros((4, 2, 3)), label=np.array([0, 3, 1, -1]), v=np.arange(4) * 0.5,
             big=np.array([5, 2000, 1, 0]), pm=np.array([1, -1, 1, 1]), flags=np.array([True, False, True, True]), name=np.array(list("abcd")))
    for c, count in (("p", 2), ("q", 3)):
        (folder / "imgs" / c).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("L", (5, 5)).save(folder / "imgs" / c / f"{i}.png")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return
    pq.write_table(pa.table({"a": [1.5, 2.0, 3.0, 4.0], "y": [0.0, float("nan"), 2.0, 1.0],
                             "n": pa.array([3, None, -2, 5], pa.int64()), "flag": [True, False, True, True],
                             "name": list("abcd"), "seq": pa.array([[1.0, 2.0]] * 4, pa.list_(pa.float32(), 2))}),
                   folder / "t.parquet")


# One small dataset per built-in source whose facts are known before loading; python's are
# not (its columns exist only once user code ran), so it is exempt.
EXAMPLES = {
    "csv": {"source": "csv", "path": "c.csv"},
    "npz": {"source": "npz", "path": "n.npz"},
    "image_folder": {"source": "image_folder", "path": "imgs", "image_size": [4, 6], "grayscale": False},
    "sklearn": {"source": "sklearn", "name": "linnerud"},
    "synthetic": {"source": "synthetic", "generator": {"kind": "gradnorm_toy", "tasks": 3, "input_dim": 7,
                                                         "output_dim": 2}, "samples": 10},
    "tfrecord": None,  # needs TensorFlow to load: tests/test_data_tfrecord.py checks its schema facts
    "parquet": {"source": "parquet", "path": "t.parquet"},
    "tfds": None,  # facts unknown before loading (TFDS would be imported): tests/test_data_tfds.py
}
EXEMPT = {"python"}


def test_every_builtin_source_has_an_example():
    builtin = {name for name, d in SOURCES.items() if d.origin.builtin}
    assert builtin == set(EXAMPLES) | EXEMPT


def _facts(folder, dataset: dict):
    spec_dataset = loaded_spec(folder, {"d": dataset}).spec.datasets["d"]
    reported = []
    facts = probe("d", spec_dataset, lambda p: folder / p, lambda *args, **kwargs: reported.append(args))
    assert not reported, reported
    return spec_dataset, facts


def _agree(facts_columns, info):
    assert set(facts_columns) == set(info)
    for name, column in facts_columns.items():
        loaded = info[name]
        assert tuple(column.shape) == tuple(loaded.shape), name
        for field in ("dtype", "categorical", "num_classes"):
            value = getattr(column, field)
            if value is not None:  # None: the facts do not know, which is allowed
                assert value == getattr(loaded, field), (name, field, value, getattr(loaded, field))


@pytest.mark.parametrize("source", [s for s, d in EXAMPLES.items() if d is not None])
def test_check_facts_match_the_loaded_table(tmp_path, source):
    _write_files(tmp_path)
    dataset = EXAMPLES[source]
    spec_dataset, facts = _facts(tmp_path, dataset)
    table = load(tmp_path, dataset)
    _agree(facts.columns, table.info)
    _agree(facts.columns, describe(tmp_path, dataset))
    if facts.rows is not None:
        assert facts.rows == table.num_rows
    if facts.class_counts is not None:
        assert tuple(facts.class_counts) == table.info["label"].class_counts
    targets = {"label"} if source in ("npz", "image_folder") else {next(c for c in table.columns if c != "x")}
    assert input_columns(spec_dataset, None, targets, facts.columns) == table.input_columns(None, targets)


def test_csv_facts_say_why_whole_numbers_are_not_labels(tmp_path):
    _write_files(tmp_path)
    _, facts = _facts(tmp_path, EXAMPLES["csv"])
    assert facts.columns["y"].categorical and facts.columns["y"].num_classes == 3
    assert facts.columns["z"].categorical is False
    assert facts.columns["z"].not_labels_because == "negative values (down to -1)"


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast_cancer", "diabetes", "linnerud"])
def test_sklearn_facts_match_scikit_learn(tmp_path, name):
    """The sklearn descriptor's table of shapes and classes against scikit-learn's real data."""
    pytest.importorskip("sklearn")
    from polytask.compiler.data.sources.sklearn import META

    assert list(META) == list(SOURCES.get("sklearn").Params.model_fields["name"].annotation.__args__)
    dataset = {"source": "sklearn", "name": name}
    spec_dataset = loaded_spec(tmp_path, {"d": dataset}).spec.datasets["d"]
    facts = static_facts(spec_dataset)
    table = load(tmp_path, dataset)
    _agree(facts.columns, table.info)
    assert facts.rows == table.num_rows
    from sklearn import datasets as sk

    bunch = getattr(sk, f"load_{name}")()
    assert facts.columns["x"].shape == bunch.data.shape[1:]
    if facts.columns["target"].categorical:
        assert facts.columns["target"].num_classes == len(np.unique(bunch.target)) == len(bunch.target_names)


@pytest.mark.parametrize("kind", GENERATORS.names())
def test_generator_shapes_match_what_it_generates(tmp_path, kind):
    dataset = {"source": "synthetic", "generator": {"kind": kind, "tasks": 3}, "samples": 12}
    if kind in ("gradnorm_toy", "mmoe"):
        dataset["generator"]["input_dim"] = 5
    spec_dataset = loaded_spec(tmp_path, {"d": dataset}).spec.datasets["d"]
    table = load(tmp_path, dataset)
    _agree(static_facts(spec_dataset).columns, table.info)
    assert table.num_rows == 12 and table.feature_columns == list(GENERATORS.get(kind).inputs)


def test_class_split_sizes_match_the_data_layer():
    from polytask.compiler.data.table import split_indices
    from polytask.compiler.meta.families.classes import ClassSplit
    from polytask.spec.splits import split_sizes

    for count in range(0, 60):
        for fractions in [(0.7, 0.1, 0.2), (1.0, 0.0, 0.0), (0.34, 0.33, 0.33), (0.9, 0.05, 0.05), (0.5, 0.0, 0.5)]:
            split = ClassSplit(train=fractions[0], validation=fractions[1], test=fractions[2])
            expected = [len(v) for v in split_indices(count, split, seed=0).values()]
            assert split_sizes(count, list(fractions)) == expected, (count, fractions)
