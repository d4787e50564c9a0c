"""MMoE's synthetic regression tasks with a correlation knob (Ma et al. 2018, sec. 3.2).

The paper, for two tasks with input dimension d, scale c and correlation p:
  1. orthogonal unit vectors u1, u2 in R^d;
  2. w1 = c u1,  w2 = c (p u1 + sqrt(1 - p^2) u2), so cos(w1, w2) = p;
  3. x ~ N(0, I_d);
  4. y_i = w_i^T x + sum_{j=1..m} sin(alpha_j w_i^T x + beta_j) + eps_i,  eps_i ~ N(0, noise^2).
The label correlation rises with p, though it is not exactly p (the sines are nonlinear).

Constants the paper leaves as "given": c = 1; alpha_j, beta_j ~ N(0, 1), drawn once from
the seed and shared by all tasks; m = `sine_terms`; noise = `noise` (a standard deviation).

More than two tasks: step 2 is the Cholesky factor of the 2x2 correlation matrix
[[1, p], [p, 1]] applied to (u1, u2). We apply the Cholesky factor L of the T x T matrix with
1 on the diagonal and p elsewhere to T orthonormal vectors, w_i = c sum_j L_ij u_j, so that
*every pair* of weight vectors has cosine p; for T = 2 this is exactly the paper's
construction. Such a matrix exists only for p >= -1/(T-1) (and needs d >= T).
Columns: `x` (N, d), `task_0 ... task_{T-1}` each (N, 1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from polytask.compiler.data.generators import Generator, task_columns
from polytask.errors import DataError
from polytask.spec.registry import GENERATORS
from polytask.spec.types import NonNegativeFloat, PositiveInt, StrictModel

if TYPE_CHECKING:
    import numpy as np

SCALE = 1.0


class MmoeGenerator(StrictModel):
    """MMoE's synthetic tasks (Ma et al. 2018) whose label correlation is set by `correlation`."""

    kind: Literal["mmoe"] = Field(description='`mmoe`')
    tasks: Annotated[int, Field(strict=True, ge=2)] = Field(2, description='Number of tasks (target columns `task_0`...).')
    input_dim: PositiveInt = Field(100, description='Width of `x`.')
    correlation: Annotated[float, Field(strict=True, ge=-1.0, le=1.0)] = Field(0.9, description="Correlation between the tasks' weight vectors (-1..1).")
    sine_terms: PositiveInt = Field(10, description='Sine terms in each label function.')
    noise: NonNegativeFloat = Field(0.01, description='Label noise standard deviation.')


def check(spec) -> None:
    """Refuse settings no set of weight vectors can meet (cheap: `describe` calls it too)."""
    tasks, dim, p = spec.tasks, spec.input_dim, float(spec.correlation)
    if dim < tasks:
        raise DataError(
            f"mmoe needs input_dim >= tasks for orthogonal task directions (input_dim {dim}, tasks {tasks})",
            hint=f"set input_dim to at least {tasks}",
        )
    lowest = -1.0 / (tasks - 1)
    if p < lowest - 1e-12:
        raise DataError(
            f"correlation {p:g} is impossible for {tasks} tasks: every pair cannot be that "
            f"negatively correlated (the lowest common pairwise correlation is {lowest:.3g})",
            hint=f"use a correlation >= {lowest:.3g}, or 2 tasks for any value in [-1, 1]",
        )


def task_weights(spec, rng: np.random.Generator) -> np.ndarray:
    """(T, d) weight vectors with norm c and pairwise cosine `correlation`."""
    import numpy as np

    check(spec)
    tasks, dim, p = spec.tasks, spec.input_dim, float(spec.correlation)
    # Orthonormal u_1..u_T: QR of a Gaussian matrix (drawn before p is used, so x and the
    # directions are the same for every correlation with the same seed).
    q, r = np.linalg.qr(rng.normal(size=(dim, tasks)))
    directions = (q * np.sign(np.diag(r))).T  # (T, d), rows orthonormal
    correlation = np.full((tasks, tasks), p) + (1.0 - p) * np.eye(tasks)
    factor = _psd_cholesky(correlation)
    return SCALE * factor @ directions


def _psd_cholesky(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L^T = matrix, also for the semidefinite edge cases p = 1 and p = -1/(T-1)."""
    import numpy as np

    size = len(matrix)
    lower = np.zeros_like(matrix)
    for i in range(size):
        for j in range(i + 1):
            rest = matrix[i, j] - lower[i, :j] @ lower[j, :j]
            if i == j:
                lower[i, i] = np.sqrt(max(rest, 0.0))
            else:
                lower[i, j] = rest / lower[j, j] if lower[j, j] > 1e-12 else 0.0
    return lower


@GENERATORS.register
class Mmoe(Generator):
    """MMoE's synthetic tasks (Ma et al. 2018) whose label correlation is set by `correlation`."""

    name = "mmoe"
    Params = MmoeGenerator

    def shapes(self, spec):
        return {"x": (spec.input_dim,), **{name: (1,) for name in task_columns(spec.tasks)}}

    def check(self, spec) -> None:
        check(spec)

    def generate(self, spec, samples: int, rng_for):
        import numpy as np

        weights = task_weights(spec, rng_for("mmoe/directions"))
        sine_rng = rng_for("mmoe/sines")
        alphas = sine_rng.normal(size=spec.sine_terms)
        betas = sine_rng.normal(size=spec.sine_terms)
        x = rng_for("mmoe/x").normal(size=(samples, spec.input_dim))
        noise_rng = rng_for("mmoe/noise")
        columns = {"x": x.astype(np.float32)}
        for name, weight in zip(task_columns(spec.tasks), weights):
            linear = x @ weight
            y = linear + np.sin(np.outer(linear, alphas) + betas).sum(axis=1)
            y = y + noise_rng.normal(0.0, spec.noise, size=samples)
            columns[name] = y[:, None].astype(np.float32)
        return columns
