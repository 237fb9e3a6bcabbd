"""Divide (partitions) and the clustering used by progressive merging."""
from __future__ import annotations

import math

import numpy as np
import pytest
from toy_suite import ToySuite

from fgo_engine.method.cluster import cluster_labels, groups_for, n_clusters
from fgo_engine.method.divide import partition


def tasks(n=60):
    return ToySuite(n_train=n).train_tasks()


@pytest.mark.parametrize("how", ["category", "random", "cluster"])
@pytest.mark.parametrize("n", [1, 3, 6, 9])
def test_partition_is_disjoint_and_covers_all_tasks(how, n):
    ts = tasks()
    groups = partition(ts, n, how, seed=1)
    ids = [t.id for g in groups for t in g]
    assert sorted(ids) == sorted(t.id for t in ts)
    assert len(ids) == len(set(ids))
    assert len(groups) == n


def test_category_partition_keeps_categories_together():
    groups = partition(tasks(), 6, "category", seed=0)
    assert all(len({t.category for t in g}) == 1 for g in groups)
    three = partition(tasks(), 3, "category", seed=0)
    assert all(len({t.category for t in g}) == 2 for g in three)


def test_partition_is_seeded():
    a = [[t.id for t in g] for g in partition(tasks(), 4, "random", seed=3)]
    b = [[t.id for t in g] for g in partition(tasks(), 4, "random", seed=3)]
    c = [[t.id for t in g] for g in partition(tasks(), 4, "random", seed=4)]
    assert a == b and a != c


def test_cluster_partition_is_balanced():
    groups = partition(tasks(61), 4, "cluster", seed=0)
    assert max(len(g) for g in groups) <= math.ceil(61 / 4)


@pytest.mark.parametrize("n,k", [(2, 1), (3, 1), (4, 2), (8, 2), (9, 3), (15, 3), (16, 4), (100, 10)])
def test_k_is_floor_sqrt_n(n, k):
    assert n_clusters(n) == k


@pytest.mark.parametrize("how", ["kmeans", "spectral", "bisect", "none"])
def test_groups_make_progress_and_cover(how):
    texts = [f"topic {i % 4} words {'alpha beta' if i % 2 else 'gamma delta'} {i}" for i in range(12)]
    groups = groups_for(texts, how, seed=0)
    flat = sorted(i for g in groups for i in g)
    assert flat == list(range(12))
    assert 2 <= len(groups) <= n_clusters(12)


def test_identical_modules_still_split():
    groups = groups_for(["same text"] * 5, "kmeans", seed=0)
    assert len(groups) >= 2 and sorted(i for g in groups for i in g) == list(range(5))


def test_kmeans_separates_obvious_clusters():
    v = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1]], dtype=float)
    labels = cluster_labels(v, 2, "kmeans", seed=0)
    assert labels[0] == labels[1] != labels[2] == labels[3]
