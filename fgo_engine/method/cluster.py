"""Embedding modules and clustering them for progressive merging (k = ⌊√n⌋)."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Protocol

import numpy as np

from fgo_engine.errors import ConfigError


class Vectorizer(Protocol):
    def __call__(self, texts: list[str]) -> np.ndarray: ...


def tfidf(texts: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(sublinear_tf=True).fit_transform(texts).toarray()
    except ValueError:  # empty vocabulary (all texts empty)
        return np.zeros((len(texts), 1))


def litellm_embedder(model: str) -> Vectorizer:
    def embed(texts: list[str]) -> np.ndarray:
        from fgo_engine.llm.gateway import get_litellm

        resp = get_litellm().embedding(model=model, input=texts)
        return np.array([d["embedding"] for d in resp.data], dtype=float)

    return embed


_SKLEARN_CLUSTERINGS = ("kmeans", "bisect", "spectral")


def warm_up(how: str) -> None:
    """Import scikit-learn's pieces for clustering ``how`` on a background thread while the
    subsets optimize: a first import takes seconds on a busy machine and would otherwise
    stall the first merge. Failures are left to the real import to report."""
    if how not in _SKLEARN_CLUSTERINGS:
        return

    from fgo_engine.heap import import_in_background, quiet_gc

    def load() -> None:
        with quiet_gc():  # ~70,000 objects: see fgo_engine.heap
            import sklearn.cluster  # noqa: F401
            import sklearn.feature_extraction.text  # noqa: F401

    import_in_background("fgo-warm-sklearn", load)


def n_clusters(n: int) -> int:
    return max(1, math.isqrt(n))


def cluster_labels(vectors: np.ndarray, k: int, how: str, seed: int) -> list[int]:
    """Cluster labels following scikit-learn conventions (explicit seed, k ≤ n)."""
    n = len(vectors)
    k = max(1, min(k, n))
    if k == 1:
        return [0] * n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate points → fewer distinct clusters; handled below
        if how == "kmeans":
            from sklearn.cluster import KMeans

            labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(vectors)
        elif how == "bisect":
            from sklearn.cluster import BisectingKMeans

            labels = BisectingKMeans(n_clusters=k, random_state=seed, n_init=3).fit_predict(vectors)
        elif how == "spectral":
            from sklearn.cluster import SpectralClustering

            sim = np.clip(_cosine(vectors), 0.0, None) + 1e-6
            labels = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed,
                                        assign_labels="discretize").fit_predict(sim)
        elif how == "none":
            labels = np.repeat(np.arange(k), math.ceil(n / k))[:n]
        else:
            raise ConfigError(f"unknown clustering {how!r}")
    return [int(x) for x in labels]


def _cosine(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    u = v / norms
    return u @ u.T


def balanced_sizes(n: int, k: int) -> list[int]:
    """k group sizes that add up to n and differ by at most one (larger first)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def split_count(n: int) -> int:
    """How many groups a set of n > t modules is split into: k = ⌊√n⌋, at least 2."""
    return max(2, n_clusters(n))


def groups_for(texts: list[str], how: str, seed: int,
               vectorize: Callable[[list[str]], np.ndarray] = tfidf) -> list[list[int]]:
    """Indices split into k = ⌊√n⌋ groups (at least 2) whose sizes differ by at most one,
    so every merge tree is balanced and never a chain.

    Membership follows the clustering: each cluster's centroid is the mean of its members,
    and points are assigned to the nearest centroid that still has room (closest pairs
    first). With ⌊√n⌋ < 2 (n = 2, 3) or ``how="none"`` the groups are consecutive chunks."""
    n = len(texts)
    k = split_count(n)
    if n_clusters(n) < 2 or how == "none":
        sizes = balanced_sizes(n, k)
        starts = [sum(sizes[:i]) for i in range(k)]
        return [list(range(st, st + sz)) for st, sz in zip(starts, sizes)]
    vectors = np.asarray(vectorize(texts), dtype=float)
    labels = cluster_labels(vectors, k, how, seed)
    members: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        members.setdefault(lab, []).append(i)
    clusters = sorted(members.values(), key=lambda g: (-len(g), g[0]))
    centroids = [vectors[g].mean(axis=0) for g in clusters]
    used = {i for g in clusters for i in g[:1]}
    while len(centroids) < k:  # degenerate clustering: seed the missing groups with unused points
        spare = next(i for i in range(n) if i not in used)
        used.add(spare)
        centroids.append(vectors[spare])
    capacity = balanced_sizes(n, k)  # the biggest clusters get the larger sizes
    dist = np.array([[float(np.linalg.norm(vectors[i] - c)) for c in centroids] for i in range(n)])
    assign: dict[int, int] = {}
    for _, i, c in sorted((dist[i, c], i, c) for i in range(n) for c in range(k)):
        if i not in assign and capacity[c] > 0:
            assign[i] = c
            capacity[c] -= 1
    out = [[i for i in range(n) if assign[i] == c] for c in range(k)]
    return sorted((g for g in out if g), key=lambda g: g[0])


def merge_node_count(n: int, t: int) -> int:
    """Merge nodes the balanced tree over n modules has with threshold t (for node ids)."""
    if n <= 1:
        return 0
    if n <= t:
        return 1
    sizes = balanced_sizes(n, split_count(n))
    return sum(merge_node_count(s, t) for s in sizes) + merge_node_count(len(sizes), t)
