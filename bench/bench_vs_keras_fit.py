"""Benchmark: polytask's whole `train` loop vs Keras `model.fit` on the same network and data.

examples/digits_hard.yaml (3 tasks; trunk 128 -> dropout -> 64, one dense-32 head per task,
Adam 1e-3, batch 64). polytask side: `train_spec` in this process, exactly what
`polytask train` runs (tf.data pipeline, per-task loss logging every `log_every` steps,
validation every `eval_every`, checkpoints every `checkpoint_every`); its steady-state rate
is report.json's `steady_state_steps_per_second`. Keras side: the idiomatic multi-output
model (one output per task, every example labelled for every task, as the digits csv is),
`model.fit` over a tf.data pipeline of the same rows with `steps_per_execution` 1, 10, 50
and 100; its steady-state rate is timed by a callback over the epochs after the first.

The runs alternate (polytask, keras spe=1, 10, 50, 100, polytask, ...) `--repeats` times in
one process; medians are reported.

    python bench/bench_vs_keras_fit.py [--steps 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from polytask.runtime.train import train_spec  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "digits_hard.yaml"
SPE_CHOICES = (1, 10, 50, 100)


def polytask_rate(steps: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        report = train_spec(load_spec(SPEC), Path(folder) / "run", steps=steps, quiet=True, echo=None)
    return float(report["steady_state_steps_per_second"])


class StepTimer(keras.callbacks.Callback):
    """Wall time of every epoch after the first (the first includes tracing)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if epoch > 0:
            self.times.append(time.perf_counter() - self.start)


def keras_rate(x, ys, steps: int, steps_per_execution: int) -> float:
    keras.utils.set_random_seed(0)
    mean, std = x.mean(0), x.std(0) + 1e-6
    inputs = keras.Input((x.shape[1],))
    h = keras.layers.Normalization(mean=mean, variance=std ** 2)(inputs)
    h = keras.layers.Dense(128, activation="relu")(h)
    h = keras.layers.Dropout(0.2)(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    outputs = {}
    for name, units in (("digit", 10), ("odd", 1), ("high", 1)):
        head = keras.layers.Dense(32, activation="relu")(h)
        outputs[name] = keras.layers.Dense(units, name=name)(head)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={"digit": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        "odd": keras.losses.BinaryCrossentropy(from_logits=True),
                        "high": keras.losses.BinaryCrossentropy(from_logits=True)},
                  loss_weights={"digit": 1.0, "odd": 1.0, "high": 0.5},
                  steps_per_execution=steps_per_execution)
    per_epoch = 200 if steps_per_execution <= 200 else steps_per_execution
    epochs = max(2, steps // per_epoch)
    data = (tf.data.Dataset.from_tensor_slices((x, ys)).shuffle(len(x), seed=0).repeat()
            .batch(64, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    timer = StepTimer()
    model.fit(data, epochs=epochs, steps_per_epoch=per_epoch, verbose=0, callbacks=[timer])
    return per_epoch * len(timer.times) / sum(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # Empty cells are labels a task does not have; Keras has no per-task masks here, so they
    # become 0 (this benchmark measures throughput, not quality).
    table = np.genfromtxt(ROOT / "examples" / "data" / "digits_multitask.csv", delimiter=",", skip_header=1,
                          filling_values=0.0)
    header = (ROOT / "examples" / "data" / "digits_multitask.csv").read_text().splitlines()[0].split(",")
    targets = {name: header.index(name) for name in ("digit", "odd", "high")}
    x = table[:, [i for i, n in enumerate(header) if n not in targets]].astype(np.float32)
    ys = {"digit": table[:, targets["digit"]].astype(np.int64),
          "odd": table[:, targets["odd"]].astype(np.float32)[:, None],
          "high": table[:, targets["high"]].astype(np.float32)[:, None]}
    rates: dict[str, list[float]] = {"polytask train": []}
    rates.update({f"keras fit spe={s}": [] for s in SPE_CHOICES})
    for repeat in range(args.repeats):
        rates["polytask train"].append(polytask_rate(args.steps))
        for spe in SPE_CHOICES:
            rates[f"keras fit spe={spe}"].append(keras_rate(x, ys, args.steps, spe))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()), flush=True)
    print(f"\nsteady-state steps/s, median of {args.repeats} (all runs: min-max)")
    ours = statistics.median(rates["polytask train"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:<20} {median:8.0f}  ({min(values):.0f}-{max(values):.0f})  polytask/this {ours / median:.2f}x")


if __name__ == "__main__":
    main()
