"""TensorBoard scalars without the `tensorboard` package.

`tf.summary.scalar` lives in the tensorboard package, which TensorFlow 2.21 no longer pulls
in. The event format is TensorFlow's own: `tf.summary.write` with the scalars plugin's
metadata writes exactly what `tf.summary.scalar` would, and TensorBoard reads it as usual.
"""
from __future__ import annotations

from typing import Mapping

from polytask.runtime.rundir import writing


def _metadata() -> bytes:
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


class ScalarWriter:
    """Writes named scalars to one TensorBoard run folder (e.g. RUN_DIR/tensorboard/train)."""

    def __init__(self, directory: str):
        import tensorflow as tf

        self._tf = tf
        self.directory = directory
        with writing(directory):  # a file where the folder goes, a read-only disk: name the path
            self._writer = tf.summary.create_file_writer(directory)
        self._metadata = _metadata()

    def write(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        tf = self._tf
        with writing(self.directory), self._writer.as_default(step=int(step)):
            for key, value in values.items():
                tf.summary.write(prefix + key, tf.constant(float(value), tf.float32), metadata=self._metadata)

    def flush(self) -> None:
        with writing(self.directory):
            self._writer.flush()
