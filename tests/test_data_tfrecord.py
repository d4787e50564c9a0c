"""tfrecord source: records written with TensorFlow, parsed by the declared schema."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import describe, load
from polytask.errors import DataError

tf = pytest.importorskip("tensorflow")


def _example(x, label, name):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=list(x))),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
            }
        )
    ).SerializeToString()


def _write(path, rows, options=None):
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for row in rows:
            writer.write(_example(*row))


SCHEMA = {"x": {"shape": [3], "dtype": "float32"}, "label": {"dtype": "int64"}, "name": {"dtype": "string"}}


def test_records_parsed_by_schema_across_a_glob(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(rng.normal(size=3), i % 3, f"r{i}") for i in range(12)]
    _write(tmp_path / "part-0.tfrecord", rows[:5])
    _write(tmp_path / "part-1.tfrecord.gz", rows[5:], options=tf.io.TFRecordOptions(compression_type="GZIP"))
    dataset = {"source": "tfrecord", "path": "part-*", "schema": SCHEMA, "features": ["x"]}
    table = load(tmp_path, dataset)
    assert table.num_rows == 12
    assert np.allclose(table.columns["x"], np.stack([r[0] for r in rows]), atol=1e-6)
    assert table.columns["label"].tolist() == [r[1] for r in rows]
    assert table.columns["name"].tolist() == [r[2] for r in rows]
    assert table.info["label"].categorical and table.info["label"].num_classes == 3
    assert table.info["x"].shape == (3,) and table.info["name"].dtype == "string"
    assert table.features(None, targets={"label"}).shape == (12, 3)
    assert describe(tmp_path, dataset) == table.info


def test_schema_mismatch_and_bad_files(tmp_path):
    _write(tmp_path / "a.tfrecord", [(np.zeros(3), 0, "a")])
    wrong = {**SCHEMA, "x": {"shape": [4], "dtype": "float32"}}
    with pytest.raises(DataError, match="record 1 does not match the schema") as info:
        load(tmp_path, {"source": "tfrecord", "path": "a.tfrecord", "schema": wrong, "features": ["x"]})
    assert info.value.where.endswith("a.tfrecord")
    # the bad record is found even when it is not the first
    with tf.io.TFRecordWriter(str(tmp_path / "c.tfrecord")) as writer:
        writer.write(_example(np.zeros(3), 0, "a"))
        writer.write(_example(np.zeros(4), 1, "b"))
    with pytest.raises(DataError, match="record 2 does not match"):
        load(tmp_path, {"source": "tfrecord", "path": "c.tfrecord", "schema": SCHEMA, "features": ["x"]})
    (tmp_path / "junk.tfrecord").write_bytes(b"this is not a tfrecord file at all")
    with pytest.raises(DataError, match="cannot read the file as TFRecord: corrupted record") as info:
        load(tmp_path, {"source": "tfrecord", "path": "junk.tfrecord", "schema": SCHEMA, "features": ["x"]})
    assert "function_node" not in info.value.message and "[Op:" not in info.value.message
    with pytest.raises(DataError, match="no tfrecord file matches"):
        load(tmp_path, {"source": "tfrecord", "path": "nothing-*.tfrecord", "schema": SCHEMA, "features": ["x"]})
    with pytest.raises(DataError, match="not declared in the schema"):
        load(tmp_path, {"source": "tfrecord", "path": "a.tfrecord", "schema": SCHEMA, "features": ["y"]})
