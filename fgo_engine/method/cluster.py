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


def groups_for(texts: list[str], how: str, seed: int,
               vectorize: Callable[[list[str]], np.ndarray] = tfidf) -> list[list[int]]:
    """Indices grouped into k = ⌊√n⌋ clusters; always ≥ 2 non-empty groups when n ≥ 2, so
    the merge recursion always makes progress (degenerate clusterings fall back to chunks)."""
    n = len(texts)
    k = n_clusters(n)
    labels = cluster_labels(vectorize(texts), k, how, seed)
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    out = sorted(groups.values(), key=lambda g: g[0])
    if len(out) < 2 and n >= 2:
        k = max(2, k)
        size = math.ceil(n / k)
        out = [list(range(i, min(n, i + size))) for i in range(0, n, size)]
    return out
