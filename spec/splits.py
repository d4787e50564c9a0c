"""How a count of rows (or classes) is cut into train/validation/test: one rule for the
spec's data checks and the data layer, so `check` and training never disagree.

`Split` (a dataset's `split:`) lives here rather than in `polytask.spec.models` because
every data source's params model derives from a base that has it, and those models are
built while the registries load, before `polytask.spec.models` exists."""
from __future__ import annotations

import math

from typing import ClassVar

from pydantic import Field, model_validator

from polytask.spec.types import Fraction, StrictModel


class Fractions(StrictModel):
    """train/validation/test fractions that add up to 1 (a dataset's rows, a family's classes)."""

    what: ClassVar[str] = "split"  # the spec key, in messages
    train_required: ClassVar[bool] = True  # the train fraction must be above 0

    train: Fraction
    validation: Fraction
    test: Fraction

    @model_validator(mode="after")
    def _adds_up(self) -> "Fractions":
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(
                f"{self.what} fractions add up to {total:g}, not 1 "
                f"(train {self.train:g} + validation {self.validation:g} + test {self.test:g})"
            )
        if self.train_required and self.train <= 0.0:
            raise ValueError(f"the train {self.what} must be larger than 0")
        return self


class Split(Fractions):
    """Fractions of a dataset's rows per split; they must add up to 1."""

    train: Fraction = Field(0.8, description='Fraction of rows for training (> 0).')
    validation: Fraction = Field(0.0, description='Fraction for validation (evaluation during training, early stopping).')
    test: Fraction = Field(0.2, description='Fraction held out for the final report.')


def split_sizes(count: int, fractions: list) -> list[int]:
    """Items per split for train/validation/test fractions (rows of a dataset, classes of a family).

    Largest-remainder rounding so the sizes add up to `count`; a split with a fraction above
    0 gets at least one item when there are enough to go round.
    """
    exact = [f * count for f in fractions]
    sizes = [int(math.floor(e)) for e in exact]
    order = sorted(range(3), key=lambda i: exact[i] - sizes[i], reverse=True)
    for i in order[: count - sum(sizes)]:
        sizes[i] += 1
    for i in range(3):
        if fractions[i] > 0 and sizes[i] == 0:
            donor = max(range(3), key=lambda j: sizes[j])
            if sizes[donor] > 1:
                sizes[donor] -= 1
                sizes[i] += 1
    return sizes
