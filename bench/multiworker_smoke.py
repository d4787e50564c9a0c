"""Smoke check and timing: does tf.distribute work on this machine, and what does it cost?

Runs one tiny regression loop (the pattern runtime/strategy.py documents) as
  1. one process, OneDeviceStrategy;
  2. one process, MirroredStrategy over 2 logical CPUs;
  3. two worker processes on localhost, MultiWorkerMirroredStrategy via TF_CONFIG;
  4. the same two workers where worker 1 is killed mid-run, then both restarted and resumed
     from the chief's checkpoint;
and prints per-run start-up and training seconds and the largest loss/weight difference
against run 1. Usage:  python bench/multiworker_smoke.py [--steps 40]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

WORKER = r'''
import json, os, sys, time
t0 = time.time()
from polytask.compiler import distribute as D
from polytask.runtime import strategy as S
name, out, steps, die_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
st = S.create_strategy(name)
import keras, numpy as np, tensorflow as tf
keras.utils.set_random_seed(0)
GLOBAL_BATCH = 16
with st.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    opt = D.prepare_optimizer(keras.optimizers.Adam(1e-2), model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
y = x.sum(1, keepdims=True)
ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step)
chief_dir = os.path.join(out, "ckpt")
manager = tf.train.CheckpointManager(ckpt, S.worker_write_dir(st, chief_dir), max_to_keep=2)
if tf.train.latest_checkpoint(chief_dir):
    ckpt.restore(tf.train.latest_checkpoint(chief_dir))
start = int(step.numpy())
data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256, seed=1)
        .batch(GLOBAL_BATCH, drop_remainder=True).repeat().skip(start))
batches = iter(D.distribute_dataset(st, data))

@tf.function
def train_step(batch):
    def replica(b):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(tf.square(model(b[0], training=True) - b[1])[:, 0],
                                              global_batch_size=GLOBAL_BATCH)
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss
    return st.reduce("SUM", st.run(replica, args=(batch,)), axis=None)

t1 = time.time()
losses = []
for i in range(start, steps):
    losses.append(float(train_step(next(batches))))
    step.assign_add(1)
    if (i + 1) % 5 == 0:
        manager.save(checkpoint_number=i + 1)
    if i + 1 == die_at and not S.is_chief(st):
        os._exit(9)
if S.is_chief(st):
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"losses": losses, "start": start, "startup_s": t1 - t0, "train_s": time.time() - t1,
                   "weights": [v.numpy().ravel().tolist() for v in model.trainable_variables]}, f)
'''


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def launch(script, name, out, steps, die_at=-1, workers=1, env=None, timeout=180):
    ports = free_ports(workers)
    procs = []
    for index in range(workers):
        child = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=os.path.dirname(out), **(env or {}))
        if name == "multi_worker":
            child["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                             "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen([sys.executable, script, name, out, str(steps), str(die_at)], env=child,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True))
    codes = []
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise SystemExit(f"{name}: timed out after {timeout}s")
        codes.append(proc.returncode)
    return codes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "worker.py")
        with open(script, "w") as f:
            f.write(WORKER)

        def result(out):
            with open(os.path.join(out, "result.json")) as f:
                return json.load(f)

        def diff(a, b):
            import numpy as np

            loss = max(abs(p - q) for p, q in zip(a["losses"][-len(b["losses"]):], b["losses"]))
            weights = max(float(np.max(np.abs(np.array(p) - np.array(q)))) for p, q in zip(a["weights"], b["weights"]))
            return loss, weights

        runs = {}
        for label, name, workers, env in [("one_device", "one_device", 1, None),
                                          ("mirrored 2 logical CPUs", "mirrored", 1, {"POLYTASK_LOGICAL_CPUS": "2"}),
                                          ("multi_worker 2 processes", "multi_worker", 2, None)]:
            out = os.path.join(tmp, name)
            start = time.time()
            codes = launch(script, name, out, args.steps, workers=workers, env=env)
            runs[label] = result(out)
            print(f"{label:28s} exit {codes}  wall {time.time() - start:5.1f}s  "
                  f"startup {runs[label]['startup_s']:4.1f}s  train {runs[label]['train_s']:5.2f}s  "
                  f"max |dloss|, |dw| vs one_device: {diff(runs['one_device'], runs[label])}")

        out = os.path.join(tmp, "killed")
        codes = launch(script, "multi_worker", out, args.steps, die_at=args.steps // 2 + 2, workers=2)
        print(f"{'worker 1 killed mid-run':28s} exit {codes} (chief fails with UnavailableError)")
        codes = launch(script, "multi_worker", out, args.steps, workers=2)
        resumed = result(out)
        print(f"{'both restarted, resumed':28s} exit {codes}  resumed at step {resumed['start']}  "
              f"max |dloss|, |dw| vs uninterrupted: {diff(runs['multi_worker 2 processes'], resumed)}")


if __name__ == "__main__":
    main()
