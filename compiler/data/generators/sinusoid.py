"""Sinusoid regression tasks in multi-task form (the MAML family, Finn et al. 2017, sec. 5.1).

`tasks` fixed sinusoids y = A sin(x - phi), with A and phi drawn uniformly from the spec's
`amplitude` and `phase` ranges; every row has one x ~ U(x range) and every task's value at
it. Columns: `x` (N, 1) and `task_0 ... task_{T-1}`, each (N, 1). (The meta-learning form,
a fresh sinusoid per episode, is a task family, not a dataset.)
"""
from __future__ import annotations

import numpy as np

from polytask.compiler.data.generators import register_generator, task_columns


def _shapes(spec) -> dict[str, tuple[int, ...]]:
    return {"x": (1,), **{name: (1,) for name in task_columns(spec.tasks)}}


@register_generator("sinusoid", _shapes)
def sinusoid(spec, samples: int, rng_for) -> dict[str, np.ndarray]:
    task_rng = rng_for("sinusoid/tasks")
    amplitudes = task_rng.uniform(*spec.amplitude, size=spec.tasks)
    phases = task_rng.uniform(*spec.phase, size=spec.tasks)
    x = rng_for("sinusoid/x").uniform(*spec.x, size=(samples, 1))
    columns = {"x": x.astype(np.float32)}
    for name, amplitude, phase in zip(task_columns(spec.tasks), amplitudes, phases):
        columns[name] = (amplitude * np.sin(x - phase)).astype(np.float32)
    return columns
