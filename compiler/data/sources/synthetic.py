"""`source: synthetic`: data generated from the spec seed by a registered generator.

The generator is chosen by `generator.kind` (see `polytask.compiler.data.generators`);
every generator's input column is `x` and its targets are `task_0 ... task_{T-1}`.
"""
from __future__ import annotations

from polytask.compiler.data.generators import get_generator
from polytask.compiler.data.registry import Columns, DataSource, SourceContext, register_source
from polytask.compiler.data.table import ColumnInfo
from polytask.errors import DataError


@register_source("synthetic")
class SyntheticSource(DataSource):
    """Seeded synthetic tasks: sinusoid, gradnorm_toy, mmoe, or any registered generator."""

    def _generator(self, dataset, context: SourceContext):
        try:
            return get_generator(dataset.generator.kind)
        except KeyError:
            from polytask.compiler.data.generators import available_generators

            raise DataError(
                f"unknown synthetic generator '{dataset.generator.kind}'",
                hint=f"available generators: {', '.join(available_generators())}",
                where=context.dataset_where("generator"),
            ) from None

    def load(self, dataset, context: SourceContext) -> Columns:
        generate, _ = self._generator(dataset, context)
        try:
            columns = generate(dataset.generator, dataset.samples, context.rng)
        except DataError as exc:
            exc.where = exc.where or context.dataset_where("generator")
            raise
        return Columns(columns=columns, feature_columns=["x"], where=context.dataset_where())

    def default_features(self, dataset) -> list[str]:
        return ["x"]

    def describe(self, dataset, context: SourceContext) -> dict[str, ColumnInfo]:
        _, shapes = self._generator(dataset, context)
        try:
            return {name: ColumnInfo(shape=shape, dtype="float32") for name, shape in shapes(dataset.generator).items()}
        except DataError as exc:
            exc.where = exc.where or context.dataset_where("generator")
            raise
