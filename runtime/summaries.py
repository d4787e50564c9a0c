"""TensorBoard summaries of a run: scalars, and the HParams of every training run.

`tf.summary.scalar` lives in the tensorboard package, which TensorFlow 2.21 no longer pulls
in. The event format is TensorFlow's own: `tf.summary.write` with the scalars plugin's
metadata writes exactly what `tf.summary.scalar` would, and TensorBoard reads it as usual.

HParams (tensorboard.plugins.hparams, from the `tensorboard` package the TensorFlow extras
install): every run's RUN_DIR/tensorboard/ folder is one HParams session holding the spec's
key training fields, its seed and its role (`multi_task`, `independent` for a task of
`--baseline`, `meta`), with train/ and validation/ as its metric groups. Runs nested in
a run directory (baseline/<task>/, seeds) are sessions of the same experiment, so

    tensorboard --logdir RUN_DIR

compares them in the HParams dashboard. Each top-level run also writes the experiment's
config (`hp.hparams_config`: the hparams and the metrics); runs of one spec write the same
config, so which of them TensorBoard reads does not matter.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

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


def training_hparams(spec, *, role: str, tasks: Optional[list] = None) -> dict[str, Any]:
    """The HParams of one training run: seed, role, trained tasks and the spec's key training fields."""
    training = spec.training.model_dump(mode="json", by_alias=True, exclude_none=True)
    structure = spec.structure.model_dump(mode="json", by_alias=True, exclude_none=True)
    values: dict[str, Any] = {"seed": int(spec.seed), "role": role, "sharing": spec.sharing}
    names = list(tasks if tasks is not None else spec.tasks)
    values["tasks"] = ",".join(names) if names else "family"
    values["task_count"] = len(names)
    if structure.get("algorithm"):
        values["algorithm"] = str(structure["algorithm"])
    for key in ("steps", "batch_size", "sampling"):
        if key in training:
            values[key] = training[key]
    if spec.is_meta:
        values["meta_batch"] = training.get("meta_batch")
    optimizer = training.get("optimizer") or {}
    if isinstance(optimizer, dict) and len(optimizer) == 1:
        (name, params), = optimizer.items()
        values["optimizer"] = name
        if isinstance(params, dict) and isinstance(params.get("learning_rate"), (int, float)):
            values["learning_rate"] = float(params["learning_rate"])
    schedule = training.get("schedule") or {}
    if isinstance(schedule, dict) and "kind" in schedule:
        values["schedule"] = schedule["kind"]
    weighting = training.get("weighting") or []
    if isinstance(weighting, list):
        values["weighting"] = "+".join(next(iter(w)) for w in weighting if isinstance(w, dict) and w) or "equal"
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


def _hparams_api():
    try:
        from tensorboard.plugins.hparams import api as hp
    except ImportError:  # TensorBoard is not installed: nothing could show the HParams anyway
        return None
    return hp


def write_hparams(directory: str, values: Mapping[str, Any], *, trial_id: str) -> bool:
    """Write one session's HParams into `directory` (a run's tensorboard/ folder).

    Returns False (and writes nothing) when the tensorboard package is not installed.
    """
    hp = _hparams_api()
    if hp is None:
        return False
    with _writer(directory) as writer, writer.as_default():
        hp.hparams(dict(values), trial_id=trial_id)
    return True


def write_hparams_config(directory: str, names: list, metrics: Mapping[str, list]) -> bool:
    """Write the experiment config: the hparams `names` and the metrics, {group: [tags]}, where
    a group is a session's subfolder (train, validation)."""
    hp = _hparams_api()
    if hp is None:
        return False
    with _writer(directory) as writer, writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(name) for name in names],
                          metrics=[hp.Metric(tag, group=group, display_name=f"{tag} ({group})")
                                   for group, tags in metrics.items() for tag in tags])
    return True


class _writer:
    """A file writer that is flushed and closed on leaving the block."""

    def __init__(self, directory: str):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(directory)

    def __enter__(self):
        return self.writer

    def __exit__(self, *exc):
        self.writer.flush()
        self.writer.close()
        return False
