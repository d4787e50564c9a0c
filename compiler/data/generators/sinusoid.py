"""Sinusoid regression tasks in multi-task form (the MAML family, Finn et al. 2017, sec. 5.1).

`tasks` fixed sinusoids y = A sin(x - phi), with A and phi drawn uniformly from the spec's
`amplitude` and `phase` ranges; every row has one x ~ U(x range) and every task's value at
it. Columns: `x` (N, 1) and `task_0 ... task_{T-1}`, each (N, 1). (The meta-learning form,
a fresh sinusoid per episode, is a task family, not a dataset.)
"""
from __future__ import annotations

from pydantic import Field

import math
from typing import Literal

from polytask.compiler.data.generators import Generator, task_columns
from polytask.spec.registry import GENERATORS
from polytask.spec.types import FiniteFloat, PositiveInt, StrictModel, range_problem


class SinusoidGenerator(StrictModel):
    """Rows of y = A sin(x - phi) for a fixed set of (A, phi); one target column per task."""

    kind: Literal["sinusoid"] = Field(description='`sinusoid`')
    tasks: PositiveInt = Field(5, description='Number of sinusoids (target columns `task_0`...).')
    amplitude: tuple[FiniteFloat, FiniteFloat] = Field((0.1, 5.0), description='[low, high] of A.')
    phase: tuple[FiniteFloat, FiniteFloat] = Field((0.0, math.pi), description='[low, high] of phi.')
    x: tuple[FiniteFloat, FiniteFloat] = Field((-5.0, 5.0), description='[low, high] of the input.')


@GENERATORS.register
class Sinusoid(Generator):
    """Rows of y = A sin(x - phi) for a fixed set of (A, phi); one target column per task."""

    name = "sinusoid"
    Params = SinusoidGenerator

    def shapes(self, params):
        return {"x": (1,), **{name: (1,) for name in task_columns(params.tasks)}}

    def spec_problems(self, params):
        problems = []
        for key in ("amplitude", "phase", "x"):
            problem = range_problem(getattr(params, key), key)
            if problem is not None:
                problems.append((problem[0], (key,), problem[1]))
        return problems

    def check(self, params) -> None:
        pass  # reversed ranges still draw, as they always did; `polytask check` reports them (PT107)

    def generate(self, spec, samples: int, rng_for):
        import numpy as np

        task_rng = rng_for("sinusoid/tasks")
        amplitudes = task_rng.uniform(*spec.amplitude, size=spec.tasks)
        phases = task_rng.uniform(*spec.phase, size=spec.tasks)
        x = rng_for("sinusoid/x").uniform(*spec.x, size=(samples, 1))
        columns = {"x": x.astype(np.float32)}
        for name, amplitude, phase in zip(task_columns(spec.tasks), amplitudes, phases):
            columns[name] = (amplitude * np.sin(x - phase)).astype(np.float32)
        return columns
