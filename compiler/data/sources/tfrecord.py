"""`source: tfrecord`: tf.train.Example records parsed by a declared `schema`.

`path` is a file or a glob (`data/train-*.tfrecord`; files are read in sorted order).
`schema` maps each feature to its per-example `shape` (default scalar) and `dtype`
(float32 | int64 | string); each feature becomes a column, parsed with
`tf.io.parse_single_example` and `tf.io.FixedLenFeature`, so every record must carry every
feature with exactly that many values. `features` lists the input columns. GZIP-compressed
files (`.gz`/`.gzip`) are read as such. TensorFlow is imported only when this source runs.
"""
from __future__ import annotations

import glob as globlib
import re
from pathlib import Path

import numpy as np

from polytask.compiler.data.files import cached, stat_key
from polytask.compiler.data.registry import Columns, DataSource, SourceContext, register_source
from polytask.compiler.data.table import ColumnInfo, infer_column_info, normalize_column
from polytask.errors import DataError


def _files(dataset, context: SourceContext) -> list:
    pattern = context.resolve_path(dataset.path)
    if any(ch in dataset.path for ch in "*?["):
        files = sorted(globlib.glob(str(pattern)))
    else:
        files = [str(pattern)] if pattern.is_file() else []
    if not files:
        raise DataError(
            f"no tfrecord file matches {pattern}",
            hint=f"relative paths are resolved against the spec file's folder; check datasets.{context.name}.path",
            where=context.dataset_where("path"),
        )
    return files


def read_tfrecords(files: list, schema: dict) -> dict[str, np.ndarray]:
    import tensorflow as tf

    dtypes = {"float32": tf.float32, "int64": tf.int64, "string": tf.string}
    spec = {name: tf.io.FixedLenFeature(list(feature.shape), dtypes[feature.dtype]) for name, feature in schema.items()}
    columns: dict[str, list] = {name: [] for name in schema}
    for file in files:
        compression = "GZIP" if file.endswith((".gz", ".gzip")) else None
        records = tf.data.TFRecordDataset([file], compression_type=compression)
        # Parsing runs inside tf.data (graph mode, batched): ~100x faster than an eager loop.
        parsed = records.map(lambda r: tf.io.parse_single_example(r, spec)).batch(4096)
        try:
            for batch in parsed:
                for name in schema:
                    columns[name].append(batch[name].numpy())
        except tf.errors.InvalidArgumentError:
            _raise_first_bad_record(records, spec, file)
        except tf.errors.OpError as exc:
            raise DataError(
                f"cannot read the file as TFRecord: {_tf_message(exc)}",
                hint="the file is not a (complete) TFRecord file" + ("" if compression else "; if it is compressed, name it .gz"),
                where=file,
            ) from None
    if not columns or not any(len(c) for c in columns.values()):
        raise DataError("the tfrecord files hold no records", where=", ".join(files))
    out = {}
    for name, chunks in columns.items():
        array = np.concatenate(chunks)
        if schema[name].dtype == "string":
            array = np.asarray([v.decode("utf-8", "replace") for v in array.ravel()]).reshape(array.shape)
        out[name] = normalize_column(array)
    return out


def _tf_message(exc) -> str:
    """The readable part of a TensorFlow error: no `{{function_node ...}}` or `[Op:...]` noise."""
    text = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip()


def _raise_first_bad_record(records, spec, file: str) -> None:
    """Re-read eagerly, one record at a time, to say which record does not match the schema."""
    import tensorflow as tf

    for index, record in enumerate(records):
        try:
            tf.io.parse_single_example(record, spec)
        except tf.errors.InvalidArgumentError as exc:
            raise DataError(
                f"record {index + 1} does not match the schema: {_tf_message(exc)}",
                hint="every record needs every schema feature with the declared shape and dtype",
                where=file,
            ) from None
    raise DataError("the records do not match the schema", where=file)


@register_source("tfrecord")
class TfRecordSource(DataSource):
    """tf.train.Example records with a declared schema."""

    def load(self, dataset, context: SourceContext) -> Columns:
        files = _files(dataset, context)
        schema = dataset.schema_
        for name in dataset.features:
            if name not in schema:
                raise DataError(
                    f"feature '{name}' is not declared in the schema",
                    hint=f"declared: {', '.join(schema)}",
                    where=context.dataset_where("features"),
                )
        key = (
            "tfrecord",
            tuple(stat_key(Path(f)) for f in files),
            tuple((n, tuple(f.shape), f.dtype) for n, f in schema.items()),
        )
        columns = cached(key, lambda: read_tfrecords(files, schema))
        where = files[0] if len(files) == 1 else str(context.resolve_path(dataset.path))
        return Columns(columns=dict(columns), feature_columns=list(dataset.features), where=where)

    def describe(self, dataset, context: SourceContext) -> dict[str, ColumnInfo]:
        # Shapes and dtypes are declared, but whether an int64 feature is a class label (and
        # how many classes it has) is only in the records, so read them (cached for load).
        table_columns = self.load(dataset, context).columns
        return {name: infer_column_info(values) for name, values in table_columns.items()}
