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
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field

from polytask.compiler.data.files import cached, stat_key
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.compiler.data.table import infer_column_info, normalize_column
from polytask.errors import DataError
from polytask.spec.facts import Column, DatasetBase, Facts
from polytask.spec.registry import SOURCES
from polytask.spec.types import Identifier, StrictModel

if TYPE_CHECKING:
    import numpy as np


class TfRecordFeature(StrictModel):
    reference_name: ClassVar[str] = "feature"  # in the reference docs: "`feature` mapping"

    shape: list[Annotated[int, Field(strict=True, ge=1)]] = Field([], description='Per-example shape; [] for a scalar.')
    dtype: Literal["float32", "int64", "string"] = Field("float32", description='Storage type of the feature.')


class TfRecordDataset(DatasetBase):
    """tf.train.Example records; `schema` declares each feature's shape and dtype."""

    source: Literal["tfrecord"] = Field(description='`tfrecord`')
    path: str = Field(description="A file or a glob pattern.")
    schema_: dict[Identifier, TfRecordFeature] = Field(alias="schema", description="Each feature's shape and dtype.")
    features: list[str] = Field(min_length=1, description='The input features.')

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _files(dataset, context: SourceContext) -> list:
    pattern = context.resolve_path(dataset.path)
    if _is_glob(dataset.path):
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
    import numpy as np

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


@SOURCES.register
class TfRecord(Source):
    """tf.train.Example records whose `schema` declares each feature's shape and dtype."""

    name = "tfrecord"
    Params = TfRecordDataset
    default_input = "`features:`"
    other_columns = "one per `schema` entry"
    reads = "TFRecord files (glob)"

    def reference_models(self):
        return [("tfrecord `schema.<feature>`", TfRecordFeature)]

    def static_facts(self, params) -> Facts:
        columns = {}
        for name, feature in params.schema_.items():
            categorical = {"int64": None, "string": None, "float32": False}[feature.dtype]
            columns[name] = Column(tuple(feature.shape), categorical=categorical, dtype=feature.dtype)
        return Facts(columns=columns)

    def facts(self, params, resolve, report) -> Facts:
        pattern = resolve(params.path)
        found = globlib.glob(str(pattern)) if _is_glob(params.path) else ([str(pattern)] if pattern.is_file() else [])
        if not found:
            report("PT301", f"no tfrecord file matches {pattern}",
                   hint="relative paths are resolved against the spec file's folder")
        return self.static_facts(params)

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

    def describe(self, dataset, context: SourceContext) -> dict[str, Column]:
        # Shapes and dtypes are declared, but whether an int64 feature is a class label (and
        # how many classes it has) is only in the records, so read them (cached for load).
        table_columns = self.load(dataset, context).columns
        return {name: infer_column_info(values) for name, values in table_columns.items()}
