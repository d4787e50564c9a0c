"""The sinusoid regression family of MAML (Finn et al. 2017): y = A sin(x - phi).

Each task draws an amplitude A and a phase phi uniformly from their ranges; its support
and query points draw x uniformly from the x range. Meta-train, meta-validation and
meta-test tasks come from disjoint random streams of the same distribution.
"""
from __future__ import annotations

from typing import Optional

from polytask.compiler.meta.families.base import (
    EpisodeSampler,
    FamilyDescription,
    TaskFamily,
    register_family,
    split_seed,
)


@register_family("sinusoid")
class SinusoidFamily(TaskFamily):
    def describe(self, family, loaded) -> FamilyDescription:
        return FamilyDescription(kind="regression", input_shape=(1,), shots=family.shots, queries=family.queries)

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
