"""Small builders shared by the meta-learning tests (specs written to tmp_path, hand-made PNG folders)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

DENSE_MODEL = [{"dense": {"units": 40, "activation": "relu"}}, {"dense": {"units": 40, "activation": "relu"}}]
SMALL_CONV = [
    {"conv2d": {"filters": 8, "kernel_size": 3}}, {"batch_norm": {}}, {"activation": "relu"},
    {"max_pool2d": {"pool_size": 2}},
    {"conv2d": {"filters": 8, "kernel_size": 3}}, {"batch_norm": {}}, {"activation": "relu"},
    {"max_pool2d": {"pool_size": 2}}, "flatten",
]


def write_spec(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def sinusoid_spec(tmp_path: Path, algorithm: str = "maml", *, steps: int = 100, meta_batch: int = 8,
                  inner: dict | None = None, name: str = "sine", **training) -> Path:
    return write_spec(tmp_path / f"{name}.yaml", {
        "polytask": 1, "name": name, "seed": 0,
        "family": {"source": "sinusoid", "shots": 10, "queries": 10},
        "loss": "mse",
        "structure": {"sharing": "meta", "algorithm": algorithm,
                      # Learned step sizes (metasgd) are evaluated for the trained steps only (PT212).
                      "inner": inner or {"steps": 1, "learning_rate": 0.01,
                                         "eval_steps": 1 if algorithm == "metasgd" else 3},
                      "model": DENSE_MODEL},
        "training": {"meta_batch": meta_batch, "steps": steps, "eval_episodes": 50,
                     "optimizer": {"adam": {"learning_rate": 1e-3}}, **training},
    })


def glyph(kind: int, size: int = 28, rng=None, jitter: int = 2) -> np.ndarray:
    """A white-on-black toy glyph: class `kind` decides the shape, `rng` a small random shift."""
    image = np.zeros((size, size), np.uint8)
    dx, dy = (rng.integers(-jitter, jitter + 1, 2) if rng is not None else (0, 0))
    c = size // 2
    k = kind % 8
    if k == 0:
        image[4 + dy:size - 4 + dy, c - 2 + dx:c + 2 + dx] = 255  # vertical bar
    elif k == 1:
        image[c - 2 + dy:c + 2 + dy, 4 + dx:size - 4 + dx] = 255  # horizontal bar
    elif k == 2:
        np.fill_diagonal(image[2:, 2:], 255)
        image = np.maximum(image, np.roll(image, 1, axis=1))
    elif k == 3:
        image[6 + dy:12 + dy, 6 + dx:12 + dx] = 255  # top-left square
    elif k == 4:
        image[16 + dy:22 + dy, 16 + dx:22 + dx] = 255  # bottom-right square
    elif k == 5:
        image[4 + dy:size - 4 + dy, 4 + dx:7 + dx] = 255
        image[4 + dy:size - 4 + dy, size - 7 + dx:size - 4 + dx] = 255  # two bars
    elif k == 6:
        yy, xx = np.mgrid[:size, :size]
        image[((yy - c - dy) ** 2 + (xx - c - dx) ** 2) < 36] = 255  # disc
    else:
        image[4 + dy:8 + dy, 4:size - 4] = 255
        image[size - 8 + dy:size - 4 + dy, 4:size - 4] = 255  # two horizontal bars
    return image


def write_image_classes(root: Path, classes: int, per_class: int, *, seed: int = 0, size: int = 28,
                        prefix: str = "class") -> Path:
    """root/<prefix>NN/<i>.png: toy glyph classes (black strokes on white, like Omniglot)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"{prefix}{c:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(255 - glyph(c, size, rng)).save(folder / f"{i}.png")
    return root


def class_spec(tmp_path: Path, data: Path, algorithm: str = "protonet", *, ways: int = 3, shots: int = 1,
               queries: int = 3, steps: int = 60, rotations=(0,), model=None, class_depth: int = 1,
               inner: dict | None = None, name: str = "toy", class_split=None, **training) -> Path:
    return write_spec(tmp_path / f"{name}.yaml", {
        "polytask": 1, "name": name, "seed": 0,
        "datasets": {"glyphs": {"source": "image_folder", "path": str(data), "image_size": [28, 28],
                                "grayscale": True, "invert": True, "class_depth": class_depth}},
        "family": {"source": "classes", "dataset": "glyphs", "ways": ways, "shots": shots, "queries": queries,
                   "rotations": list(rotations),
                   "class_split": class_split or {"train": 0.5, "validation": 0.0, "test": 0.5}},
        "loss": "cross_entropy",
        "structure": {"sharing": "meta", "algorithm": algorithm,
                      "inner": inner or {"steps": 1, "learning_rate": 0.4, "eval_steps": 3},
                      "model": model or SMALL_CONV},
        "training": {"meta_batch": 2, "steps": steps, "eval_episodes": 40,
                     "optimizer": {"adam": {"learning_rate": 3e-3}}, **training},
    })
