"""Multi-task data: the tasks' tables as arrays per split, and the mixed tf.data pipeline.

Every task is (rows of an input pool, encoded labels). Tasks on the same dataset and input
columns share one pool, so 1,000 tasks over one table hold one copy of the inputs. Rows
whose label for a task is missing are left out of *that task* only: the row still trains
every task whose label it has (the loss is masked the same way, see `MultiTaskProgram`).

The training pipeline, per task: the task's (row, label, task id) triples -> shuffle ->
repeat (so a small task never ends the run). The task streams are mixed element by element
with `tf.data.Dataset.choose_from_datasets` and a vectorised stream of task ids drawn at the
sampling rates (uniform, proportional, temperature; separate from loss weights; see
`task_choices`) -> batch (global batch size) -> gather inputs and
labels -> prefetch. The tables are in memory already, so `cache()` would add nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from polytask.spec.facts import targets_by_dataset
from polytask.spec.registry import LOSSES
from polytask.errors import DataError

SHUFFLE_BUFFER_LIMIT = 100_000


@dataclass
class SplitArrays:
    """One split: input pools, and per task the pool index, pool rows and encoded labels."""

    pools: list[np.ndarray]
    pool_of_task: list[int]
    rows: list[np.ndarray]
    labels: list[np.ndarray]  # float32 [n_i, label_width]; missing rows already removed
    dropped: list[int] = field(default_factory=list)  # rows without a label, per task

    def task_inputs(self, task: int) -> np.ndarray:
        return self.pools[self.pool_of_task[task]][self.rows[task]]

    def size(self, task: int) -> int:
        return len(self.rows[task])


@dataclass
class MultiTaskData:
    tasks: list[str]
    input_shape: tuple
    label_width: int
    splits: dict[str, SplitArrays]
    mean: np.ndarray
    std: np.ndarray
    class_names: dict[str, Optional[list[str]]]

    def train_sizes(self) -> np.ndarray:
        return np.array([self.splits["train"].size(i) for i in range(len(self.tasks))], np.float64)


def load_tables(loaded, allow_code: bool = False, seed: Optional[int] = None) -> dict:
    from polytask.compiler.data import load_table

    spec = loaded.spec
    used = list(dict.fromkeys(task.dataset for task in spec.tasks.values()))
    return {name: load_table(name, spec.datasets[name], loaded, allow_code=allow_code, seed=seed) for name in used}


def assemble(plan, spec, tables: dict) -> MultiTaskData:
    """Arrays for every split from the loaded tables, following the plan's resolved tasks."""
    names = list(plan.tasks)
    width = max(t.label_width for t in plan.tasks.values())
    all_targets = targets_by_dataset(spec.tasks)
    losses = {name: LOSSES.get(plan.tasks[name].loss).bound(plan.tasks[name].loss_params) for name in names}
    splits = {}
    for split in ("train", "validation", "test"):
        pools, pool_keys, pool_of_task, rows, labels, dropped = [], {}, [], [], [], []
        for name in names:
            t = plan.tasks[name]
            table = tables[t.dataset]
            split_rows = table.rows(split, required=(split == "train"))
            key = (t.dataset, tuple(t.input_columns))
            if key not in pool_keys:
                pool_keys[key] = len(pools)
                if len(split_rows):
                    pools.append(table.features(t.input_columns, targets=all_targets[t.dataset], rows=split_rows))
                else:  # an empty validation/test split (Table.features cannot reshape zero rows)
                    pools.append(np.zeros((0,) + tuple(t.input_shape), np.float32))
            pool_of_task.append(pool_keys[key])
            encoded = losses[name].encode_labels(table.column(t.target, task=name)[split_rows], table.info[t.target])
            valid = np.isfinite(encoded).all(axis=1)
            padded = np.zeros((len(encoded), width), np.float32)
            padded[:, : encoded.shape[1]] = encoded
            rows.append(np.flatnonzero(valid).astype(np.int64))
            labels.append(padded[valid])
            dropped.append(int((~valid).sum()))
            if split == "train" and not valid.any():
                raise DataError(
                    f"task '{name}' has no labelled rows in the train split of dataset '{t.dataset}' "
                    f"({len(encoded)} rows, all missing '{t.target}')",
                    hint="check the target column, or give the train split more rows",
                    where=table.where,
                )
        splits[split] = SplitArrays(pools, pool_of_task, rows, labels, dropped)
    train = splits["train"]
    stacked = np.concatenate([p for p in train.pools], axis=0) if len(train.pools) > 1 else train.pools[0]
    mean = stacked.mean(axis=0).astype(np.float32)
    std = stacked.std(axis=0).astype(np.float32)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    if _first_layer_reads_raw_inputs(spec.structure):  # token ids must reach an Embedding unchanged
        mean, std = np.zeros_like(mean), np.ones_like(std)
    class_names = {}
    for name in names:
        t = plan.tasks[name]
        table = tables[t.dataset]
        default_label = "target" if table.source == "sklearn" else "label"
        softmax = LOSSES.get(t.loss).output_kind(t.loss_params, table.info[t.target]) == "softmax"
        class_names[name] = table.class_names if (softmax and t.target == default_label) else None
    shape = tuple(train.pools[0].shape[1:])
    return MultiTaskData(names, shape, width, splits, mean, std, class_names)


def sampling_rates(spec, sizes: np.ndarray) -> np.ndarray:
    """Each task's share of training examples: from `sampling_rate`s when given, else the rule."""
    tasks = list(spec.tasks.values())
    if any(t.sampling_rate is not None for t in tasks):
        rates = np.array([t.sampling_rate if t.sampling_rate is not None else 1.0 for t in tasks], np.float64)
    else:
        rule = spec.training.sampling
        if rule == "uniform":
            rates = np.ones(len(tasks))
        elif rule == "proportional":
            rates = sizes.astype(np.float64)
        else:  # temperature: n_i^(1/T) (T=1 proportional, T->inf uniform)
            rates = np.power(sizes.astype(np.float64), 1.0 / rule.temperature)
    return rates / rates.sum()


CHOICE_BLOCK = 4096


def task_choices(rates: np.ndarray, seed: int):
    """An endless stream of task ids drawn at `rates`, generated in vectorised blocks.

    This is what `tf.data.Dataset.sample_from_datasets` does internally, except that it
    draws one categorical sample over all T tasks per element, which costs O(T) per example
    (measured: 4x slower pipeline at 1,000 tasks). Here a block of uniform draws is mapped
    to task ids with one `searchsorted` over the cumulative rates. Seeded and checkpointable
    (the random dataset's state is part of the iterator).
    """
    import tensorflow as tf

    edges = tf.constant(np.cumsum(rates / rates.sum())[:-1], tf.float64)
    scale = float(2**32)  # Dataset.random yields uniform integers in [0, 2**32)

    def to_tasks(draws):
        uniform = tf.cast(draws % (2**32), tf.float64) / scale
        return tf.searchsorted(edges, uniform, side="right", out_type=tf.int64)

    return tf.data.Dataset.random(seed=seed).batch(CHOICE_BLOCK).map(to_tasks).unbatch()


def train_dataset(data: MultiTaskData, batch_size: int, rates: np.ndarray, seed: int, split: str = "train"):
    """The mixed, repeating stream of global batches (x, labels, task) of a split (training; Auto-Lambda's validation)."""
    import tensorflow as tf

    train = data.splits[split]
    offsets = np.concatenate([[0], np.cumsum([len(l) for l in train.labels])])
    pool_offsets = np.concatenate([[0], np.cumsum([len(p) for p in train.pools])])
    inputs = tf.constant(np.concatenate(train.pools, axis=0) if len(train.pools) > 1 else train.pools[0])
    labels = tf.constant(np.concatenate(train.labels, axis=0))
    streams = []
    for task in range(len(data.tasks)):
        count = train.size(task)
        rows = train.rows[task] + pool_offsets[train.pool_of_task[task]]
        label_rows = np.arange(offsets[task], offsets[task + 1], dtype=np.int64)
        ids = np.full(count, task, np.int32)
        stream = tf.data.Dataset.from_tensor_slices((rows, label_rows, ids))
        stream = stream.shuffle(min(count, SHUFFLE_BUFFER_LIMIT), seed=seed * 7919 + task, reshuffle_each_iteration=True)
        streams.append(stream.repeat())
    if len(streams) == 1:
        mixed = streams[0]
    else:
        mixed = tf.data.Dataset.choose_from_datasets(streams, task_choices(rates, seed), stop_on_empty_dataset=False)

    def gather(rows, label_rows, ids):
        return tf.gather(inputs, rows), tf.gather(labels, label_rows), ids

    options = tf.data.Options()
    options.autotune.enabled = False  # on few cores autotuning costs more than it saves (measured: 2x)
    options.deterministic = True
    return mixed.batch(batch_size, drop_remainder=True).map(gather).prefetch(2).with_options(options)


def _first_layer_reads_raw_inputs(structure) -> bool:
    """True when the structure's first layer reads its inputs as given (an Embedding's token ids)."""
    from polytask.spec.layers import LayerBase

    for key in type(structure).model_fields:
        value = getattr(structure, key)
        if isinstance(value, list) and value and isinstance(value[0], LayerBase):
            return value[0].descriptor.reads_raw_inputs(value[0].params)
    return False
