"""The grouping search against brute force on random affinity matrices (no TensorFlow)."""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from polytask.compiler.affinity import grouping


def brute_gain(matrix, task, group):
    others = [i for i in group if i != task]
    return 0.0 if not others else sum(matrix[i][task] for i in others) / len(others)


def brute_total(matrix, groups):
    n = len(matrix)
    best = [None] * n
    for group in groups:
        for task in group:
            value = brute_gain(matrix, task, group)
            best[task] = value if best[task] is None else max(best[task], value)
    assert all(b is not None for b in best)
    return sum(best)


def set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1:]
        yield [[first]] + partition


def brute_partition(matrix, k):
    return max(brute_total(matrix, p) for p in set_partitions(list(range(len(matrix)))) if len(p) <= k)


def brute_overlap(matrix, k):
    n = len(matrix)
    subsets = [list(c) for r in range(1, n + 1) for c in itertools.combinations(range(n), r)]
    best = -np.inf
    for m in range(1, k + 1):
        for chosen in itertools.combinations(subsets, m):
            if len({t for g in chosen for t in g}) == n:
                best = max(best, brute_total(matrix, chosen))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_partition_search_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 4 + seed % 3  # 4..6 tasks
    matrix = rng.normal(size=(n, n))
    for k in range(1, n + 1):
        found = grouping.best_grouping(matrix, k)
        assert found.exact and len(found.groups) <= k
        assert sorted(t for g in found.groups for t in g) == list(range(n))  # a partition
        assert found.total == pytest.approx(brute_total(matrix, found.groups))
        assert found.total == pytest.approx(brute_partition(matrix, k), abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_overlap_search_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = 4
    matrix = rng.normal(size=(n, n))
    for k in range(1, n + 1):
        found = grouping.best_grouping(matrix, k, overlap=True)
        assert len(found.groups) <= k
        assert found.total == pytest.approx(brute_total(matrix, found.groups))
        assert found.total == pytest.approx(brute_overlap(matrix, k), abs=1e-9)
        assert found.total >= grouping.best_grouping(matrix, k).total - 1e-12


def test_overlap_five_tasks_three_groups_matches_brute_force():
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(5, 5))
    found = grouping.best_grouping(matrix, 3, overlap=True)
    assert found.total == pytest.approx(brute_overlap(matrix, 3), abs=1e-9)


def test_overlap_puts_a_helper_task_in_two_groups():
    # Task 2 helps both 0 and 1, which hurt each other: with two groups it joins both.
    matrix = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    found = grouping.best_grouping(matrix, 2, overlap=True)
    assert found.groups == [[0, 2], [1, 2]]
    assert found.total == pytest.approx(2.0)
    assert grouping.best_grouping(matrix, 2).total == pytest.approx(1.0)


def test_twelve_tasks_exact_and_fast():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(12, 12))
    start = time.perf_counter()
    results = grouping.groupings_by_count(matrix, 12)
    overlap = grouping.best_grouping(matrix, 3, overlap=True)
    assert time.perf_counter() - start < 30
    assert all(r.exact for r in results)
    totals = [r.total for r in results]
    assert all(b >= a - 1e-12 for a, b in zip(totals, totals[1:]))  # at most k: non-decreasing
    assert overlap.total >= results[2].total - 1e-12
    # A local check of optimality: no single task move improves the 3-group partition.
    groups = results[2].groups
    for task in range(12):
        for target in range(len(groups) + 1):
            trial = [[t for t in g if t != task] for g in groups]
            if target < len(trial):
                trial[target] = sorted(trial[target] + [task])
            else:
                trial.append([task])
            trial = [g for g in trial if g]
            if len(trial) <= 3:
                assert grouping.total_gain(matrix, trial) <= results[2].total + 1e-9


def block_matrix(sizes, rng, strength=1.0, noise=0.2):
    n = sum(sizes)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    matrix = np.where(labels[:, None] == labels[None, :], strength, -strength) + noise * rng.normal(size=(n, n))
    return matrix, labels


@pytest.mark.parametrize("sizes", [[3, 3], [2, 4, 3]])
def test_auto_recovers_planted_blocks(sizes):
    matrix, labels = block_matrix(sizes, np.random.default_rng(1))
    found = grouping.auto_grouping(matrix)
    expected = sorted(sorted(np.flatnonzero(labels == b).tolist()) for b in range(len(sizes)))
    assert found.groups == expected


def test_greedy_beyond_exact_recovers_blocks_at_30_tasks():
    matrix, labels = block_matrix([10, 12, 8], np.random.default_rng(2))
    found = grouping.auto_grouping(matrix)
    assert not found.exact
    expected = sorted(sorted(np.flatnonzero(labels == b).tolist()) for b in range(3))
    assert found.groups == expected


def test_greedy_is_close_to_exact_on_small_random_matrices():
    rng = np.random.default_rng(3)
    for _ in range(5):
        matrix = rng.normal(size=(6, 6))
        exact = grouping.best_grouping(matrix, 3).total
        greedy = grouping.greedy_grouping(matrix, 3)
        assert len(greedy.groups) <= 3
        assert greedy.total <= exact + 1e-9
        assert greedy.total == pytest.approx(brute_total(matrix, greedy.groups))


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError):
        grouping.best_grouping(np.ones((2, 3)), 1)
    with pytest.raises(ValueError):
        grouping.best_grouping(np.array([[0.0, np.nan], [0.0, 0.0]]), 1)
