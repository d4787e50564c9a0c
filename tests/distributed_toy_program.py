"""A minimal `Program` run by `runtime.loop.fit` in a child process (distribution tests).

    python tests/distributed_toy_program.py STRATEGY RUN_DIR STEPS [--resume] [--precision P]

It is the smallest program that exercises what the loop must get right under every
strategy: variables under the scope, a dataset of global batches distributed by the
strategy, per-replica losses over the global batch, checkpoints and resume with the data
position restored (distributed iterators are not checkpointable, so the iterator is made
after restore and skips the steps already taken). Prints the final weights as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys


class ToyProgram:
    plan = None

    def __init__(self, strategy, global_batch: int = 16, seed: int = 0):
        import keras
        import numpy as np
        import tensorflow as tf

        from polytask.runtime import strategy as S

        self.strategy = strategy
        self.global_batch = S.global_batch_size(strategy, global_batch=global_batch)
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            self.model = keras.Sequential([
                keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1, dtype="float32"),
            ])
            self.optimizer = S.prepare_optimizer(keras.optimizers.Adam(1e-2), self.model.trainable_variables)
            self.steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False)
        x = np.random.default_rng(seed).normal(size=(512, 4)).astype("float32")
        y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")).astype("float32")
        self.dataset = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(512, seed=seed)
                        .batch(self.global_batch, drop_remainder=True).repeat())
        self._iterator = None
        self._step = tf.function(self._distributed_step)

    def checkpoint_items(self):
        return {"model": self.model, "optimizer": self.optimizer, "steps_taken": self.steps_taken}

    def _distributed_step(self, batch):
        import tensorflow as tf

        from polytask.runtime import strategy as S

        def replica_step(inputs):
            x, y = inputs
            with tf.GradientTape() as tape:
                per_example = tf.square(self.model(x, training=True) - y)[:, 0]
                loss = S.average_loss(per_example, self.global_batch)
                scaled = S.scale_loss(self.optimizer, loss)
            grads = tape.gradient(scaled, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            return loss

        self.steps_taken.assign_add(1)
        return self.strategy.reduce("SUM", self.strategy.run(replica_step, args=(batch,)), axis=None)

    def train_step(self):
        from polytask.runtime import strategy as S

        if self._iterator is None:  # after any restore: continue where the checkpoint left the data
            self._iterator = iter(S.distribute_dataset(self.strategy, self.dataset.skip(int(self.steps_taken.numpy()))))
        return {"loss": self._step(next(self._iterator))}

    def evaluate(self, split):
        return {}

    def export(self, directory):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("strategy")
    parser.add_argument("run_dir")
    parser.add_argument("steps", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--checkpoint-every", type=int, default=50)
    args = parser.parse_args(argv)

    from polytask.errors import PolytaskError
    from polytask.runtime import strategy as S

    try:
        strategy = S.create_strategy(args.strategy, args.precision)
        from polytask.runtime.loop import LoopSettings, fit

        program = ToyProgram(strategy)
        with S.worker_failures_as_run_errors(strategy):
            report = fit(program, args.run_dir, LoopSettings(steps=args.steps, checkpoint_every=args.checkpoint_every,
                                                             log_every=1, eval_every=10**9, export=False, quiet=True),
                         resume=args.resume)
    except PolytaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"chief": S.is_chief(strategy), "resumed_from_step": report["resumed_from_step"],
                      "weights": [v.numpy().ravel().tolist() for v in program.model.trainable_variables]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
