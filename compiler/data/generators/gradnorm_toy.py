"""GradNorm's toy regression (Chen et al. 2018, sec. 4): tasks that differ only in scale.

    f_i(x) = sigma_i * tanh((B + eps_i) x),   x in R^input_dim, f_i(x) in R^output_dim

B and eps_i are constant (output_dim x input_dim) matrices with i.i.d. entries from
N(0, 10) and N(0, 3.5) (read as standard deviations, as common reimplementations do): B is
what the tasks share, eps_i what is task-specific. sigma_i (default 1..T) sets each task's
output scale, which is what makes loss weighting matter. The paper does not give the input
distribution; we use x ~ N(0, 0.01^2) per entry so that (B + eps_i) x has a standard
deviation of about 1.7 at the default sizes: tanh is in its curved range, neither linear
nor saturated. `noise` adds N(0, noise^2) to tanh(.) before scaling, so every task keeps
the same signal-to-noise ratio. Columns: `x` (N, input_dim), `task_i` (N, output_dim).
"""
from __future__ import annotations

from pydantic import Field

from typing import Literal, Optional

from polytask.compiler.data.generators import Generator, task_columns
from polytask.errors import DataError
from polytask.spec.registry import GENERATORS
from polytask.spec.types import NonNegativeFloat, PositiveFloat, PositiveInt, StrictModel

B_STD = 10.0
EPS_STD = 3.5
X_STD = 0.01


class GradNormToyGenerator(StrictModel):
    """GradNorm's toy regression (Chen et al. 2018): y_i = sigma_i tanh((B + eps_i) x).

    Targets are `task_0 ... task_{T-1}`; `sigmas` sets each task's scale (default: 1..T).
    """

    kind: Literal["gradnorm_toy"] = Field(description='`gradnorm_toy`')
    tasks: PositiveInt = Field(2, description='Number of tasks (target columns `task_0`...).')
    input_dim: PositiveInt = Field(250, description='Width of `x`.')
    output_dim: PositiveInt = Field(100, description="Width of each task's target.")
    sigmas: Optional[list[PositiveFloat]] = Field(None, description='One scale per task (default 1..tasks).')
    noise: NonNegativeFloat = Field(0.0, description='Standard deviation of the per-task noise eps_i.')


def _sigmas_problem(spec):
    if spec.sigmas is not None and len(spec.sigmas) != spec.tasks:
        return (f"gradnorm_toy has {spec.tasks} tasks but {len(spec.sigmas)} sigmas", ("sigmas",),
                "give one sigma per task, or leave `sigmas` out for 1..tasks")
    return None


def task_scales(spec) -> list[float]:
    problem = _sigmas_problem(spec)
    if problem is not None:
        raise DataError(problem[0], hint=problem[2])
    if spec.sigmas is None:
        return [float(i + 1) for i in range(spec.tasks)]
    return [float(s) for s in spec.sigmas]


@GENERATORS.register
class GradNormToy(Generator):
    """GradNorm's toy regression (Chen et al. 2018): y_i = sigma_i tanh((B + eps_i) x)."""

    name = "gradnorm_toy"
    Params = GradNormToyGenerator

    def shapes(self, spec):
        return {"x": (spec.input_dim,), **{name: (spec.output_dim,) for name in task_columns(spec.tasks)}}

    def spec_problems(self, spec):
        problem = _sigmas_problem(spec)
        return [] if problem is None else [problem]

    def generate(self, spec, samples: int, rng_for):
        import numpy as np

        sigmas = task_scales(spec)
        shape = (spec.output_dim, spec.input_dim)
        shared = rng_for("gradnorm_toy/B").normal(0.0, B_STD, size=shape)
        x = rng_for("gradnorm_toy/x").normal(0.0, X_STD, size=(samples, spec.input_dim))
        task_rng = rng_for("gradnorm_toy/eps")
        noise_rng = rng_for("gradnorm_toy/noise")
        columns = {"x": x.astype(np.float32)}
        for name, sigma in zip(task_columns(spec.tasks), sigmas):
            weights = shared + task_rng.normal(0.0, EPS_STD, size=shape)
            clean = np.tanh(x @ weights.T)
            if spec.noise:
                clean = clean + noise_rng.normal(0.0, spec.noise, size=clean.shape)
            columns[name] = (sigma * clean).astype(np.float32)
        return columns
