"""The family registry and the episode-sampler contract.

An *episode* (one task) is a support set the learner adapts on and a query set it is
scored on. Samplers produce meta-batches of episodes as dicts of tensors with a leading
task axis T:

    support_x [T, S, *input_shape]   support_y [T, S] (int64 labels) or [T, S, 1] (float)
    query_x   [T, Q, *input_shape]   query_y   [T, Q] or [T, Q, 1]

Episode `i` of a split is a pure function of (seed, split, i) -- stateless random ops --
so a sampler is reproducible from the seed, resumable from a step number, and identical
on every replica and worker.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from polytask.spec.registry import FAMILIES, Concept

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class FamilyDescription:
    """What the compiler needs to know about a family before loading any data."""

    kind: str  # "regression" | "classification"
    input_shape: tuple[int, ...]
    shots: int  # support examples per class (classification) or per task (regression)
    queries: int
    ways: Optional[int] = None  # classes per episode (classification)
    target_dim: int = 1  # regression outputs

    @property
    def support_size(self) -> int:
        return self.shots * (self.ways or 1)

    @property
    def query_size(self) -> int:
        return self.queries * (self.ways or 1)


class EpisodeSampler:
    """Draws meta-batches of episodes for one family (built by `TaskFamily.build`)."""

    description: FamilyDescription
    #: `sample` is a few stateless random ops on the index (no data tables, no tf.data
    #: work worth overlapping): training may call it inside the step's graph.
    samples_in_graph: bool = False

    def sample(self, split: str, index, tasks: int, *, ways: Optional[int] = None,
               shots: Optional[int] = None, queries: Optional[int] = None) -> dict[str, Any]:
        """Meta-batch number `index` (an int64 scalar tensor) of `tasks` episodes from `split`."""
        raise NotImplementedError

    def dataset(self, split: str, tasks: int, *, start: int = 0, **shape):
        """An endless tf.data pipeline of meta-batches `start, start+1, ...` of `split`."""
        import tensorflow as tf

        ds = tf.data.Dataset.range(start, 2**62)
        # One map call already samples a whole (vectorised) meta-batch; parallel map workers
        # only compete with the train step for the CPU (measured slower on 2 cores).
        ds = ds.map(lambda i: self.sample(split, i, tasks, **shape))
        return ds.prefetch(2)

    def info(self) -> dict:
        """JSON-ready facts about the sampler (class counts per split, ...)."""
        return {}


class TaskFamily(Concept):
    """A `family.source` kind: its params model, its checks, a TF-free description, a sampler."""

    measures: ClassVar[str] = "regression"  # or "classification": which losses fit it

    def check(self, family, ctx) -> None:
        """Report this family's problems in `polytask check` (ctx: `polytask.spec.rules.RuleContext`)."""

    def dataset_refs(self, raw: dict) -> list[tuple[tuple, str]]:
        """(path below `family`, dataset name) of each dataset the family names in `raw`, the
        mapping as the user wrote it (it may not validate): for PT202 and PT217."""
        return []

    def input_shape(self, family, spec) -> Optional[tuple[int, ...]]:
        """One example's input shape, from the spec alone (None: not known, e.g. a bad dataset)."""
        raise NotImplementedError

    def describe(self, family, loaded) -> FamilyDescription:
        raise NotImplementedError

    def build(self, family, loaded, *, seed: int, allow_code: bool = False) -> EpisodeSampler:
        raise NotImplementedError


def get_family(name: str) -> TaskFamily:
    return FAMILIES.get(name)


def split_seed(seed: int, split: str):
    """The stateless-RNG seed pair of a split: episodes of different splits never coincide."""
    return (int(seed), zlib.crc32(split.encode()) & 0x7FFFFFFF)
