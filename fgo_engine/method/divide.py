"""Divide: split training tasks into N disjoint subsets (category, random, or clusters)."""
from __future__ import annotations

import math
import random
from collections import defaultdict

from fgo_engine.errors import ConfigError
from fgo_engine.types import Task


def partition(tasks: list[Task], n: int, how: str, seed: int) -> list[list[Task]]:
    if not tasks:
        raise ConfigError("there are no training tasks to divide")
    n = max(1, min(n, len(tasks)))
    if how == "category":
        groups = _by_category(tasks, n, seed)
    elif how == "random":
        groups = _random(tasks, n, seed)
    elif how == "cluster":
        groups = _balanced_clusters(tasks, n, seed)
    else:
        raise ConfigError(f"unknown partition {how!r}")
    return [g for g in groups if g]


def _random(tasks: list[Task], n: int, seed: int) -> list[list[Task]]:
    order = list(tasks)
    random.Random(seed).shuffle(order)
    return [order[i::n] for i in range(n)]


def _chunks(items: list[Task], k: int) -> list[list[Task]]:
    size, extra = divmod(len(items), k)
    out, start = [], 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _by_category(tasks: list[Task], n: int, seed: int) -> list[list[Task]]:
    cats: dict[str, list[Task]] = defaultdict(list)
    for t in tasks:
        cats[t.category].append(t)
    names = sorted(cats)
    if len(names) == 1 and n > 1:
        return _random(tasks, n, seed)
    if len(names) >= n:
        # largest categories first, each to the currently smallest subset
        groups: list[list[Task]] = [[] for _ in range(n)]
        for name in sorted(names, key=lambda c: (-len(cats[c]), c)):
            target = min(range(n), key=lambda i: (len(groups[i]), i))
            groups[target].extend(cats[name])
        return groups
    # fewer categories than subsets: split the big ones, proportionally to their size
    shares = {c: 1 for c in names}
    for _ in range(n - len(names)):
        c = max(names, key=lambda c: (len(cats[c]) / shares[c], c))
        shares[c] += 1
    groups = []
    for c in names:
        groups.extend(_chunks(cats[c], min(shares[c], len(cats[c]))))
    return groups


def _balanced_clusters(tasks: list[Task], n: int, seed: int) -> list[list[Task]]:
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(max_features=4096, sublinear_tf=True).fit_transform([t.input for t in tasks])
    km = KMeans(n_clusters=n, random_state=seed, n_init=10).fit(x)
    dist = km.transform(x)  # (tasks, n)
    cap = math.ceil(len(tasks) / n)
    groups: list[list[int]] = [[] for _ in range(n)]
    # assign the most confident tasks first to their nearest cluster with room
    order = np.argsort(dist.min(axis=1), kind="stable")
    for i in order:
        for c in np.argsort(dist[i], kind="stable"):
            if len(groups[c]) < cap:
                groups[c].append(int(i))
                break
    return [[tasks[i] for i in sorted(g)] for g in groups]


def subset_name(group: list[Task], i: int) -> str:
    cats = sorted({t.category for t in group})
    label = ",".join(cats[:3]) + ("…" if len(cats) > 3 else "")
    return f"subset {i} ({label})"
