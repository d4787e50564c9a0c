"""Helpers for the multi-task tests: tiny csv data sets and specs written into a tmp folder."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent


def write_csv(path: Path, rows: int = 240, features: int = 6, seed: int = 0, missing_b: float = 0.0) -> Path:
    """Columns f0..f{features-1}; `a` (3 classes), `b` (0/1) and `c` (a number), all learnable from the features.

    `missing_b`: the fraction of rows whose `b` is left empty (a missing label).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    a = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5])
    b = (x[:, 2] - x[:, 0] > 0).astype(int)
    c = 2.0 * x[:, 1] - x[:, 3] + 0.1 * rng.normal(size=rows)
    drop_b = rng.random(rows) < missing_b
    lines = [",".join([f"f{i}" for i in range(features)] + ["a", "b", "c"])]
    for i in range(rows):
        cells = [f"{v:.5f}" for v in x[i]] + [str(a[i]), "" if drop_b[i] else str(b[i]), f"{c[i]:.5f}"]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spec_dict(csv_name: str = "data.csv", **training) -> dict:
    spec = {
        "polytask": 1,
        "name": "tiny",
        "seed": 3,
        "datasets": {"table": {"source": "csv", "path": csv_name,
                               "split": {"train": 0.6, "validation": 0.2, "test": 0.2}}},
        "tasks": {
            "a": {"dataset": "table", "target": "a", "loss": "cross_entropy", "metrics": ["accuracy"]},
            "b": {"dataset": "table", "target": "b", "loss": "binary_cross_entropy", "metrics": ["accuracy", "auc"]},
            "c": {"dataset": "table", "target": "c", "loss": "mse", "metrics": ["mse", "r2"]},
        },
        "structure": {"sharing": "hard",
                      "trunk": [{"dense": {"units": 16, "activation": "relu"}}, {"dropout": {"rate": 0.1}}],
                      "head": [{"dense": {"units": 8, "activation": "relu"}}]},
        "training": {"steps": 60, "batch_size": 32, "optimizer": {"adam": {"learning_rate": 0.01}},
                     "eval_every": 20, "checkpoint_every": 20, "log_every": 10, **training},
    }
    return spec


def write_spec(folder: Path, spec: dict | None = None, name: str = "spec.yaml", **training) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "data.csv").exists():
        write_csv(folder / "data.csv")
    spec = spec or spec_dict(**training)
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def polytask(*args: str, cwd: Path | None = None, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process (how users run it)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "polytask", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, **popen)


def load_program(spec_path: Path, **kwargs):
    """Compile a spec in this process (default strategy)."""
    import tensorflow as tf

    from polytask.compiler.compile import compile_program
    from polytask.spec.loader import load_spec

    return compile_program(load_spec(spec_path), strategy=tf.distribute.get_strategy(), **kwargs)


def checkpoint_values(directory: Path, contains: str = "net") -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(directory))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if contains in name and "OPTIMIZER_SLOT" not in name}
