"""The sinusoid regression family of MAML (Finn et al. 2017): y = A sin(x - phi).

Each task draws an amplitude A and a phase phi uniformly from their ranges; its support
and query points draw x uniformly from the x range. Meta-train, meta-validation and
meta-test tasks come from disjoint random streams of the same distribution.
"""
from __future__ import annotations

from pydantic import Field

import math
from typing import Literal, Optional

from polytask.compiler.meta.families.base import EpisodeSampler, FamilyDescription, TaskFamily, split_seed
from polytask.spec.registry import FAMILIES, LOSSES
from polytask.spec.types import FiniteFloat, PositiveInt, StrictModel, range_problem


class SinusoidFamilyParams(StrictModel):
    """The MAML sinusoid family: y = A sin(x - phi), A, phi, x uniform in the given ranges."""

    source: Literal["sinusoid"] = Field(description='`sinusoid`')
    amplitude: tuple[FiniteFloat, FiniteFloat] = Field((0.1, 5.0), description='[low, high] of A.')
    phase: tuple[FiniteFloat, FiniteFloat] = Field((0.0, math.pi), description='[low, high] of phi.')
    x: tuple[FiniteFloat, FiniteFloat] = Field((-5.0, 5.0), description='[low, high] of the input.')
    shots: PositiveInt = Field(10, description='Support examples per task (K).')
    queries: PositiveInt = Field(10, description='Query examples per task.')


@FAMILIES.register
class SinusoidFamily(TaskFamily):
    """Sinusoid regression tasks y = A sin(x - phi) (Finn et al. 2017)."""

    name = "sinusoid"
    Params = SinusoidFamilyParams

    def check(self, family, ctx):
        for key in ("amplitude", "phase", "x"):
            problem = range_problem(getattr(family, key), key)
            if problem is not None:
                ctx.report("PT107", problem[0], ("family", key), hint=problem[1])
        loss = ctx.spec.loss_name
        if loss is not None and LOSSES.get(loss).measures != "regression":
            ctx.report("PT205", f"the sinusoid family is regression; loss {loss} does not fit", ("loss",),
                       hint="use mse")

    def input_shape(self, family, spec):
        return (1,)

    def describe(self, family, loaded) -> FamilyDescription:
        return FamilyDescription(kind="regression", input_shape=self.input_shape(family, loaded.spec),
                                 shots=family.shots, queries=family.queries)

    def build(self, family, loaded, *, seed: int, allow_code: bool = False) -> "SinusoidSampler":
        return SinusoidSampler(family, self.describe(family, loaded), seed)


class SinusoidSampler(EpisodeSampler):
    samples_in_graph = True

    def __init__(self, family, description: FamilyDescription, seed: int):
        self.family = family
        self.description = description
        self.seed = seed

    def sample(self, split: str, index, tasks: int, *, ways: Optional[int] = None,
               shots: Optional[int] = None, queries: Optional[int] = None):
        import tensorflow as tf

        shots = shots or self.family.shots
        queries = queries or self.family.queries
        base = tf.constant(split_seed(self.seed, split), tf.int64)
        key = tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))
        keys = tf.random.experimental.stateless_split(key, 3)
        lo_a, hi_a = self.family.amplitude
        lo_p, hi_p = self.family.phase
        lo_x, hi_x = self.family.x
        amplitude = tf.random.stateless_uniform([tasks, 1, 1], keys[0], lo_a, hi_a)
        phase = tf.random.stateless_uniform([tasks, 1, 1], keys[1], lo_p, hi_p)
        x = tf.random.stateless_uniform([tasks, shots + queries, 1], keys[2], lo_x, hi_x)
        y = amplitude * tf.sin(x - phase)
        return {
            "support_x": x[:, :shots], "support_y": y[:, :shots],
            "query_x": x[:, shots:], "query_y": y[:, shots:],
        }
