"""Which tasks to train together, given an inter-task affinity matrix (TAG's network selection).

Pure NumPy, no TensorFlow: `polytask affinity` calls it on the measured matrix, tests call
it on random ones.

Conventions (Fifty et al. 2021, sec. 3.2 and their network-selection notebook):
- `affinity[i][j]` is the effect of a step on task i's loss on task j's loss (i -> j).
- A task j trained in group G gains s(j, G) = mean over i in G, i != j of affinity[i][j];
  a task alone gains 0 (it is its own network, nothing helps or hurts it).
- A grouping is scored by the total gain: the sum over tasks of s(j, serving group of j).
  Partitions: every task is in exactly one group, which serves it. With overlap a task may
  be trained in several groups (it helps their other members) and is served by the one
  where its gain is highest; every task must be in at least one group.
- `best_grouping(A, k)` maximises the total over groupings of at most k groups.

Search: exact for up to `EXACT_MAX_TASKS` tasks, by dynamic programming over subsets (the
memoised form of branch and bound over set partitions: O(k 3^T)). With overlap the same
recursion runs over the *serving classes* (the tasks a group serves), each class taking its
best superset group, which gives the exact overlapping optimum. Beyond that size a greedy
rule (`greedy_grouping`): start from singletons and repeatedly merge the two groups whose
merge raises the total most (or lowers it least), down to one group; for k groups take the
partition with the highest total along that path among those with at most k groups; with
overlap, then repeatedly add the one task to one more group that raises the total most,
while any does. O(T^3) group evaluations.

`--groups auto` (`auto_grouping`) takes, over k = 1..T, the grouping maximising
total(k) - penalty * scale * (k - 1), scale = the mean absolute off-diagonal affinity:
each extra network must buy at least `penalty` times a typical affinity.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

EXACT_MAX_TASKS = 12
DEFAULT_PENALTY = 1.0


@dataclass
class Grouping:
    """Groups of task indices (each sorted; groups sorted), their total gain, and how it was found."""

    groups: list
    total: float
    exact: bool

    def serving(self, affinity) -> list:
        """For every task, the index of the group that serves it (its best group)."""
        return serving_groups(affinity, self.groups)


def _check(affinity) -> np.ndarray:
    matrix = np.asarray(affinity, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"affinity must be a non-empty square matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("affinity has non-finite entries")
    return matrix


def _group_gains(matrix: np.ndarray, group) -> np.ndarray:
    """s(j, group) for every member j, in the group's order."""
    members = np.asarray(list(group), dtype=np.int64)
    if len(members) < 2:
        return np.zeros(len(members))
    block = matrix[np.ix_(members, members)]
    return (block.sum(axis=0) - np.diag(block)) / (len(members) - 1)


def serving_groups(affinity, groups) -> list:
    """Index of the group with the highest gain for each task (first on ties); None if uncovered."""
    matrix = _check(affinity)
    return _serving(matrix, groups)[0]


def _serving(matrix: np.ndarray, groups):
    serving: list = [None] * len(matrix)
    best = np.full(len(matrix), -np.inf)
    for index, group in enumerate(groups):
        for task, value in zip(group, _group_gains(matrix, group)):
            if value > best[task] + 1e-15:
                best[task], serving[task] = value, index
    return serving, best


def total_gain(affinity, groups) -> float:
    """The objective: sum over tasks of their serving group's gain. Every task must be covered."""
    matrix = _check(affinity)
    serving, best = _serving(matrix, groups)
    if any(s is None for s in serving):
        missing = [t for t, s in enumerate(serving) if s is None]
        raise ValueError(f"tasks {missing} are in no group")
    return float(best.sum())


# --------------------------------------------------------------------------- exact search


@lru_cache(maxsize=4)
def _subset_pairs(n: int):
    """All (S, G) with S a non-empty subset of G (bitmasks), as two int arrays."""
    subs, supers = [], []
    for g in range(1, 1 << n):
        s = g
        while s:
            subs.append(s)
            supers.append(g)
            s = (s - 1) & g
    return np.array(subs, np.int64), np.array(supers, np.int64)


def _bits(n: int) -> np.ndarray:
    masks = np.arange(1 << n, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n)) & 1).astype(np.float64)


def _gains_table(matrix: np.ndarray) -> np.ndarray:
    """[2^T, T]: s(j, G) for every group bitmask G (0 where j is not in G, and for singletons)."""
    n = len(matrix)
    bits = _bits(n)
    inflow = bits @ matrix - bits * np.diag(matrix)[None, :]  # sum over other members i of A[i][j]
    others = bits.sum(axis=1, keepdims=True) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where(others > 0, inflow / np.maximum(others, 1.0), 0.0)
    return table * bits


def _class_values(matrix: np.ndarray, overlap: bool):
    """value[S] of a serving class S, and the group that achieves it (S itself for partitions)."""
    n = len(matrix)
    table = _gains_table(matrix)
    bits = _bits(n)
    if not overlap:
        return (table * bits).sum(axis=1), np.arange(1 << n)
    subs, supers = _subset_pairs(n)
    values = (bits[subs] * table[supers]).sum(axis=1)
    best = np.full(1 << n, -np.inf)
    np.maximum.at(best, subs, values)
    hit = values >= best[subs] - 1e-12
    group = np.zeros(1 << n, np.int64)
    # The smallest group reaching the class's best value (supers run in increasing order).
    first = {}
    for s, g in zip(subs[hit][::-1], supers[hit][::-1]):
        first[int(s)] = int(g)
    for s, g in first.items():
        group[s] = g
    best[0] = 0.0
    return best, group


def _exact(matrix: np.ndarray, max_groups: int, overlap: bool) -> list:
    """Best groupings with at most k classes for k = 1..max_groups, as (groups, total)."""
    n = len(matrix)
    full = (1 << n) - 1
    value, group_of = _class_values(matrix, overlap)
    subs, masks = _subset_pairs(n)
    low = masks & -masks
    keep = (subs & low) != 0  # classes containing the lowest task of the rest: each split once
    subs, masks = subs[keep], masks[keep]
    rests = masks ^ subs
    tables = [None, value.copy()]
    tables[1][0] = 0.0
    for k in range(2, max_groups + 1):
        previous = tables[k - 1]
        candidate = value[subs] + previous[rests]
        current = previous.copy()  # at most k: k - 1 classes may already be best
        np.maximum.at(current, masks, candidate)
        current[0] = 0.0
        tables.append(current)

    results = []
    for k in range(1, max_groups + 1):
        classes, mask, level = [], full, k
        while mask:
            if level == 1:
                classes.append(mask)
                break
            target = tables[level][mask]
            if abs(tables[level - 1][mask] - target) <= 1e-12 * max(1.0, abs(target)):
                level -= 1
                continue
            lowest = mask & -mask
            sub = mask
            found = None
            while sub:
                if sub & lowest and sub != mask:
                    if abs(value[sub] + tables[level - 1][mask ^ sub] - target) <= 1e-9 * max(1.0, abs(target)):
                        found = sub
                        break
                sub = (sub - 1) & mask
            classes.append(found)
            mask ^= found
            level -= 1
        groups = sorted({tuple(t for t in range(n) if group_of[c] >> t & 1) for c in classes})
        groups = [list(g) for g in groups]
        results.append((groups, total_gain(matrix, groups)))
    return results


# --------------------------------------------------------------------------- greedy search


def _greedy_path(matrix: np.ndarray) -> list:
    """Partitions along the greedy merge path: singletons, then always the best merge, down to one group."""
    n = len(matrix)
    groups = [[t] for t in range(n)]
    values = [0.0] * n  # a partition's total is the sum of its groups' values
    path = [([list(g) for g in groups], 0.0)]
    merged_value: dict = {}
    while len(groups) > 1:
        best = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                key = (tuple(groups[a]), tuple(groups[b]))
                if key not in merged_value:
                    merged_value[key] = float(_group_gains(matrix, groups[a] + groups[b]).sum())
                delta = merged_value[key] - values[a] - values[b]
                if best is None or delta > best[0] + 1e-15:
                    best = (delta, a, b, merged_value[key])
        _, a, b, value = best
        new = sorted(groups[a] + groups[b])
        groups = [g for i, g in enumerate(groups) if i not in (a, b)] + [new]
        values = [v for i, v in enumerate(values) if i not in (a, b)] + [value]
        path.append(([list(g) for g in groups], float(sum(values))))
    return path


def _add_overlaps(matrix: np.ndarray, groups: list) -> list:
    """Repeatedly add the one task to one more group that raises the total most, while it does."""
    n = len(matrix)
    current = total_gain(matrix, groups)
    while True:
        best = None
        for index, group in enumerate(groups):
            for task in range(n):
                if task in group:
                    continue
                trial = [sorted(g + [task]) if i == index else g for i, g in enumerate(groups)]
                value = total_gain(matrix, trial)
                if value > current + 1e-12 and (best is None or value > best[0]):
                    best = (value, trial)
        if best is None:
            return groups
        current, groups = best


def greedy_grouping(affinity, max_groups: int, overlap: bool = False) -> Grouping:
    """The stated greedy rule (module docstring), for any number of tasks."""
    return _greedy_all(_check(affinity), max_groups, overlap)[-1]


def _greedy_all(matrix: np.ndarray, max_groups: int, overlap: bool) -> list:
    path = _greedy_path(matrix)
    results = []
    for k in range(1, max_groups + 1):
        groups, _ = max((p for p in path if len(p[0]) <= k), key=lambda p: (p[1], -len(p[0])))
        if overlap:
            groups = _add_overlaps(matrix, groups)
        groups = sorted(sorted(g) for g in groups)
        results.append(Grouping(groups, total_gain(matrix, groups), exact=False))
    return results


# --------------------------------------------------------------------------- entry points


def groupings_by_count(affinity, max_groups: Optional[int] = None, overlap: bool = False) -> list:
    """The best grouping with at most k groups, for k = 1..max_groups (default T)."""
    matrix = _check(affinity)
    n = len(matrix)
    max_groups = n if max_groups is None else int(max_groups)
    if max_groups < 1:
        raise ValueError("the number of groups must be at least 1")
    max_groups = min(max_groups, n)
    if n <= EXACT_MAX_TASKS:
        return [Grouping(groups, total, exact=True) for groups, total in _exact(matrix, max_groups, overlap)]
    return _greedy_all(matrix, max_groups, overlap)


def best_grouping(affinity, max_groups: int, overlap: bool = False) -> Grouping:
    """The grouping of at most `max_groups` groups with the highest total gain."""
    return groupings_by_count(affinity, max_groups, overlap)[-1]


def affinity_scale(affinity) -> float:
    """Mean absolute off-diagonal affinity (the unit of the `auto` penalty)."""
    matrix = _check(affinity)
    n = len(matrix)
    if n < 2:
        return 0.0
    off = matrix[~np.eye(n, dtype=bool)]
    return float(np.mean(np.abs(off)))


def auto_grouping(affinity, overlap: bool = False, penalty: float = DEFAULT_PENALTY) -> Grouping:
    """Over k = 1..T: the grouping maximising total(k) - penalty * scale * (k - 1)."""
    candidates = groupings_by_count(affinity, None, overlap)
    scale = affinity_scale(affinity)
    scored = [(g.total - penalty * scale * (len(g.groups) - 1), -len(g.groups), index)
              for index, g in enumerate(candidates)]
    return candidates[max(scored)[2]]
