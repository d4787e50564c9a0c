"""How a count of rows (or classes) is cut into train/validation/test: one rule for the
spec's data checks and the data layer, so `check` and training never disagree."""
from __future__ import annotations

import math


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
