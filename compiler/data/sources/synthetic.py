"""`source: synthetic`: data generated from the spec seed by a registered generator.

The generator is chosen by `generator.kind`, one descriptor per kind in
`polytask.compiler.data.generators` (registry `GENERATORS`); every generator's input column
is `x` and its targets are `task_0 ... task_{T-1}`.
"""
from __future__ import annotations

from pydantic import Field

from typing import TYPE_CHECKING, Literal

from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.errors import DataError
from polytask.spec.facts import Column, DatasetBase, Facts
from polytask.spec.registry import GENERATORS, SOURCES
from polytask.spec.types import PositiveInt

if TYPE_CHECKING:  # GeneratorChoice is resolved when the spec models are built (registry._complete)
    from polytask.spec.registry import GeneratorChoice


class SyntheticDataset(DatasetBase):
    """Data the project generates from the seed: nothing to download, nothing to ship."""

    source: Literal["synthetic"] = Field(description='`synthetic`')
    generator: GeneratorChoice = Field(description='What to generate: a generator kind (`kind:`) and its settings; columns `x`, `task_0`...')
    samples: PositiveInt = Field(1000, description='Rows to generate.')


@SOURCES.register
class Synthetic(Source):
    """Data generated from the seed by a generator kind (sinusoid, gradnorm_toy, mmoe, ...)."""

    name = "synthetic"
    Params = SyntheticDataset
    default_input = "`x`"
    other_columns = "`task_0 ... task_{T-1}`"
    reads = "generated from `seed`"

    def reference_models(self):
        return [(f"generator kind: {name}", generator.Params) for name, generator in GENERATORS.items()]

    def default_inputs(self, params) -> list[str]:
        return list(GENERATORS.get(params.generator.kind).inputs)

    def static_facts(self, params) -> Facts:
        shapes = GENERATORS.get(params.generator.kind).shapes(params.generator)
        columns = {name: Column(shape, dtype="float32", categorical=False) for name, shape in shapes.items()}
        return Facts(columns=columns, rows=params.samples)

    def spec_problems(self, params):
        return [(message, ("generator", *below), hint)
                for message, below, hint in GENERATORS.get(params.generator.kind).spec_problems(params.generator)]

    def load(self, dataset, context: SourceContext) -> Columns:
        generator = GENERATORS.get(dataset.generator.kind)
        try:
            columns = generator.generate(dataset.generator, dataset.samples, context.rng)
        except DataError as exc:
            exc.where = exc.where or context.dataset_where("generator")
            raise
        return Columns(columns=columns, feature_columns=list(generator.inputs), where=context.dataset_where())

    def describe(self, dataset, context: SourceContext) -> dict[str, Column]:
        generator = GENERATORS.get(dataset.generator.kind)
        try:
            generator.check(dataset.generator)
        except DataError as exc:
            exc.where = exc.where or context.dataset_where("generator")
            raise
        return {name: Column(shape, dtype="float32") for name, shape in generator.shapes(dataset.generator).items()}
