"""Multi-task data: the tasks' tables as arrays per split, and the mixed tf.data pipeline.

Every task is (rows of an input pool, encoded labels). Tasks on the same dataset and input
columns share one pool, so 1,000 tasks over one table hold one copy of the inputs. Rows
whose label for a task is missing are left out of *that task* only: the row still trains
every task whose label it has (the loss is masked the same way, see `MultiTaskProgram`).

The training pipeline (`train_dataset`) computes blocks of global batches at once: each
example draws its task at the sampling rates (uniform, proportional, temperature; separate
from loss weights), then takes the next row of that task's stream, which visits the task's
rows in a fresh shuffled order every epoch (so a small task repeats and never ends the run)
-> split into batches -> prefetch. The tables are in memory already, so `cache()` would add nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from polytask.spec.facts import targets_by_dataset
from polytask.spec.registry import LOSSES
from polytask.errors import DataError

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


def _mix32(value):
    """A 32-bit integer hash (two multiply-xorshift rounds) of int64 values in [0, 2**32)."""
    import tensorflow as tf

    for _ in range(2):
        value = tf.bitwise.bitwise_and(tf.bitwise.bitwise_xor(tf.bitwise.right_shift(value, 16), value) * 0x45D9F3B,
                                       0xFFFFFFFF)
    return tf.bitwise.bitwise_xor(tf.bitwise.right_shift(value, 16), value)


FEISTEL_ROUNDS = 4
#: A pipeline call picks the rows of this many examples (rounded down to whole batches, at least
#: one), so its few hundred small ops run once per block, not once per batch; the block size
#: fixes the random draws, so changing it changes every seeded stream. The rows are gathered in
#: groups of whole batches of at most BLOCK_BYTES, which bounds what the iterator state adds to
#: a checkpoint (a block's row numbers, one gathered group, two prefetched batches).
BLOCK_EXAMPLES = 8192
BLOCK_BYTES = 2**20


def feistel_half_bits(size: int) -> int:
    """Half the bits of the smallest even-width power of two that holds [0, size): `shuffled_index`'s domain."""
    return max(1, -(-int(np.ceil(np.log2(max(size, 2)))) // 2))


def shuffled_index(position, size, half_bits, key):
    """Element `position` (in [0, size)) of a pseudo-random permutation of [0, size) chosen by `key`.

    A permutation with random access, so a batch can draw the next rows of every task's
    shuffled epoch without holding a shuffle buffer: a balanced Feistel network on
    2 * half_bits bits (`feistel_half_bits(size)`; a bijection of [0, 4**half_bits), with
    4**half_bits <= 4 * size) plus cycle walking (re-apply until the value falls inside [0, size), which keeps it a
    bijection of [0, size)). All arguments are int64 tensors of the same shape.
    """
    import tensorflow as tf

    mask = tf.bitwise.left_shift(tf.ones_like(half_bits), half_bits) - 1

    def permute(value):
        left, right = tf.bitwise.right_shift(value, half_bits), tf.bitwise.bitwise_and(value, mask)
        for round_ in range(FEISTEL_ROUNDS):
            mixed = _mix32(tf.bitwise.bitwise_xor(right, tf.bitwise.bitwise_and(key + round_ * 0x9E3779B9, 0xFFFFFFFF)))
            left, right = right, tf.bitwise.bitwise_xor(left, tf.bitwise.bitwise_and(mixed, mask))
        return tf.bitwise.bitwise_or(tf.bitwise.left_shift(left, half_bits), right)

    (index,) = tf.while_loop(lambda value: tf.reduce_any(value >= size),
                             lambda value: (tf.where(value >= size, permute(value), value),), (permute(position),))
    return index


def train_dataset(data: MultiTaskData, batch_size: int, rates: np.ndarray, seed: int, split: str = "train"):
    """The mixed, repeating stream of global batches (x, labels, task) of a split (training; Auto-Lambda's validation).

    Each block of batches is a function of the block number and the per-task positions (the
    iterator's state, so it checkpoints exactly): task ids drawn at `rates` from a stateless
    uniform, then each example takes the next position of its task's stream, which visits
    the task's rows in a fresh shuffled order every epoch (`shuffled_index`). Nothing runs
    per example or per task stream, so the cost per batch is the same for 3 or 3,000 tasks
    (choose_from_datasets over per-task shuffle buffers cost 2-5 us per example).
    """
    import tensorflow as tf

    train = data.splits[split]
    tasks = len(data.tasks)
    sizes = np.array([train.size(task) for task in range(tasks)], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    pool_offsets = np.concatenate([[0], np.cumsum([len(p) for p in train.pools])]).astype(np.int64)
    # Row of example g (g counts the tasks' labelled rows one task after another) in the pooled inputs.
    input_rows = tf.constant(np.concatenate(
        [np.asarray(train.rows[task], np.int64) + pool_offsets[train.pool_of_task[task]] for task in range(tasks)]))
    inputs = tf.constant(np.concatenate(train.pools, axis=0) if len(train.pools) > 1 else train.pools[0])
    labels = tf.constant(np.concatenate(train.labels, axis=0))
    shares = np.where(sizes > 0, rates, 0.0)
    edges = tf.constant(np.cumsum(shares / shares.sum())[:-1], tf.float64)
    half_bits = tf.constant([feistel_half_bits(n) for n in sizes], tf.int64)
    sizes_t, starts_t = tf.constant(sizes), tf.constant(starts)
    seed_key = int(seed) % 2**32

    last_with_rows = int(np.flatnonzero(sizes > 0)[-1]) if (sizes > 0).any() else 0
    example_bytes = inputs.dtype.size * int(np.prod(inputs.shape[1:])) + labels.dtype.size * int(np.prod(labels.shape[1:]))
    per_block = max(1, BLOCK_EXAMPLES // batch_size)
    block = per_block * batch_size
    per_group = max([d for d in range(1, per_block + 1) if per_block % d == 0 and d * batch_size * example_bytes <= BLOCK_BYTES]
                    or [1])

    def next_block(positions, number):
        uniform = tf.random.stateless_uniform([block], seed=tf.stack([tf.constant(seed_key, tf.int64), number]),
                                              dtype=tf.float64)
        # The last edge can round below 1.0; draws above it belong to the last task with rows.
        task = tf.minimum(tf.searchsorted(edges, uniform, side="right", out_type=tf.int64), last_with_rows)
        # Rank of each example among the block's examples of the same task, in stream order.
        order = tf.argsort(task, stable=True)
        ordered = tf.gather(task, order)
        rank_ordered = tf.range(block, dtype=tf.int64) - tf.searchsorted(ordered, ordered, side="left", out_type=tf.int64)
        rank = tf.scatter_nd(order[:, None], rank_ordered, [block])
        position = tf.gather(positions, task) + rank
        size = tf.gather(sizes_t, task)
        key = _mix32(tf.bitwise.bitwise_and(_mix32(tf.bitwise.bitwise_xor(_mix32(task), seed_key)) + position // size,
                                            0xFFFFFFFF))  # one key per (seed, task, epoch)
        example = tf.gather(starts_t, task) + shuffled_index(position % size, size, tf.gather(half_bits, task), key)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(task), task, tasks)
        groups = [per_block // per_group, per_group * batch_size]
        return positions + counts, (tf.reshape(example, groups), tf.reshape(tf.cast(task, tf.int32), groups))

    def gather_group(example, task):
        x, y = tf.gather(inputs, tf.gather(input_rows, example)), tf.gather(labels, example)
        return (tf.reshape(x, [per_group, batch_size, *x.shape[1:]]), tf.reshape(y, [per_group, batch_size, *y.shape[1:]]),
                tf.reshape(task, [per_group, batch_size]))

    options = tf.data.Options()
    options.autotune.enabled = False  # on few cores autotuning costs more than it saves (measured: 2x)
    options.deterministic = True
    return (tf.data.Dataset.range(2**62).scan(tf.zeros([tasks], tf.int64), next_block).unbatch()
            .map(gather_group).unbatch().prefetch(2).with_options(options))


def _first_layer_reads_raw_inputs(structure) -> bool:
    """True when the structure's first layer reads its inputs as given (an Embedding's token ids)."""
    from polytask.spec.layers import LayerBase

    for key in type(structure).model_fields:
        value = getattr(structure, key)
        if isinstance(value, list) and value and isinstance(value[0], LayerBase):
            return value[0].descriptor.reads_raw_inputs(value[0].params)
    return False
