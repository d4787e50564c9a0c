"""Multi-task regression on sequences: tasks that remember the past over different time scales.

Each row is a sequence x of `length` steps and `channels` features, x[t, c] ~ N(0, 1). Task k
reads channel k mod C and sums it with exponentially fading weights,

    task_k = sum_t exp(-(L - 1 - t) / tau_k) * x[t, k mod C] / sqrt(sum_t exp(-2 (L - 1 - t) / tau_k)) + noise,

so task k remembers about tau_k steps back; the time scales tau_k are spaced geometrically
from 1 step to `length` steps. Targets have unit variance before the noise (N(0, noise^2)).
A dense layer on the flattened sequence can fit these too; the point of the data set is a
shared recurrent trunk (`keras: {layer: LSTM}`) whose state serves every time scale at once.
Columns: `x` (N, L, C) and `task_0 ... task_{T-1}`, each (N, 1).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from polytask.compiler.data.generators import Generator, task_columns
from polytask.spec.registry import GENERATORS
from polytask.spec.types import PositiveInt, StrictModel


class SequencesGenerator(StrictModel):
    """Sequences x (length x channels); task k is a fading-memory sum of one channel with its own time scale."""

    kind: Literal["sequences"] = Field(description='`sequences`')
    tasks: PositiveInt = Field(3, description='Number of tasks (target columns `task_0`...), time scales 1..length.')
    length: Annotated[int, Field(strict=True, ge=2, le=10_000)] = Field(20, description='Steps per sequence (L).')
    channels: PositiveInt = Field(1, description='Features per step (C); task k reads channel k mod C.')
    noise: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(0.05, description='Standard deviation of the target noise.')


def time_scales(tasks: int, length: int) -> list[float]:
    """tau_k, geometrically spaced from 1 to `length` steps."""
    if tasks == 1:
        return [float(length) ** 0.5]
    return [float(length) ** (k / (tasks - 1)) for k in range(tasks)]


@GENERATORS.register
class Sequences(Generator):
    """Sequences x (length x channels); task k is a fading-memory sum of one channel with its own time scale."""

    name = "sequences"
    Params = SequencesGenerator

    def shapes(self, params):
        return {"x": (params.length, params.channels), **{name: (1,) for name in task_columns(params.tasks)}}

    def generate(self, spec, samples: int, rng_for):
        import numpy as np

        x = rng_for("sequences/x").standard_normal((samples, spec.length, spec.channels))
        noise = rng_for("sequences/noise").standard_normal((samples, spec.tasks)) * spec.noise
        age = np.arange(spec.length)[::-1]  # steps before the last one
        columns = {"x": x.astype(np.float32)}
        for k, (name, tau) in enumerate(zip(task_columns(spec.tasks), time_scales(spec.tasks, spec.length))):
            weights = np.exp(-age / tau)
            weights /= np.sqrt(np.sum(weights ** 2))
            columns[name] = (x[:, :, k % spec.channels] @ weights + noise[:, k])[:, None].astype(np.float32)
        return columns
