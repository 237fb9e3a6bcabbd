"""FGO, its no-merge ablation and the baselines as small strategy objects.

Every method gets the same optimizer-step budget (subsets × epochs), as in the paper.
Each method also projects the calls it will make, beside the loop that makes them.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.method.divide import partition
from fgo_engine.method.merge import MergeTree
from fgo_engine.method.optimize import optimize_loop, optimize_subsets
from fgo_engine.method.runtime import Runtime
from fgo_engine.suites.base import Suite
from fgo_engine.types import Module, Task


@dataclass
class Outcome:
    module: Module
    module_id: str
    train_score: float
    steps: int


class Method(Protocol):
    name: str

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome: ...

    def project(self, config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]: ...


def _per_task(suite: Suite) -> int:
    return int(suite.calls_per_task)


def _loop_calls(config: RunConfig, suite: Suite, n_train: int, n_test: int, *, merges: int = 0,
                backtests: int = 0) -> dict[str, int]:
    """Upper-bound estimate of LLM calls per role for N×E optimizer steps, before any cache hit."""
    n, e = config.subsets, config.epochs
    steps = n * e
    explores = 2 * (e + 1) * n_train  # best + candidate per step
    return {
        "agent": (explores + backtests + (n_test if config.evaluate_test else 0)) * _per_task(suite),
        "evaluator": steps * max(1, n_train // max(1, n)),
        "optimizer": steps * 3,
        "merger": merges * 3,
    }


class Vanilla:
    name = "vanilla"

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome:
        return Outcome(start, start_id, 0.0, 0)

    def project(self, config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]:
        return {"agent": n_test * _per_task(suite), "evaluator": 0, "optimizer": 0, "merger": 0}


class FGO:
    """Divide into subsets, optimize each in parallel, merge through the clustered tree."""

    name = "fgo"

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome:
        cfg = rt.cfg
        groups = partition(train, cfg.subsets, cfg.partition, cfg.seed)
        items = optimize_subsets(rt, groups, start, start_id)
        root = self.merge(MergeTree(rt), items)
        return Outcome(root.module, root.module_id, root.score, cfg.subsets * cfg.epochs)

    def merge(self, tree: MergeTree, items):
        return tree.progressive_merge(items)

    def project(self, config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]:
        n = config.subsets
        backtests = 0
        if n > 1:
            depth = max(1, math.ceil(math.log2(max(2, math.log2(n) + 1))))
            backtests = (depth + 1) * n_train
        return _loop_calls(config, suite, n_train, n_test, merges=max(0, n - 1), backtests=backtests)


class NoMerge(FGO):
    """Ablation: the subsets' modules merged by one call instead of the progressive tree."""

    name = "no-merge"

    def merge(self, tree: MergeTree, items):
        return items[0] if len(items) == 1 else tree.merge_all_at_once(items)

    def project(self, config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]:
        return _loop_calls(config, suite, n_train, n_test, merges=1, backtests=n_train)


class _Batched:
    """A baseline: one optimizer loop over a list of batches, N×E steps."""

    name = ""

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        raise NotImplementedError

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome:
        cfg = rt.cfg
        batches = self.batches(cfg, train, random.Random(cfg.seed))
        res = optimize_loop(rt, start, start_id, batches, scope_kind="baseline", scope_id="0", subset_id=None,
                            label=self.name)
        return Outcome(res.best, res.best_id, res.best_score, res.steps)

    def project(self, config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]:
        return _loop_calls(config, suite, n_train, n_test)


class AllAtOnce(_Batched):
    """Algorithm 1 on the whole training set at every step."""

    name = "all-at-once"

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        return [train] * (config.subsets * config.epochs)


class BatchWise(_Batched):
    """Fixed-size batches (|train| / N) in sequence within each epoch."""

    name = "batch-wise"

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        size = math.ceil(len(train) / config.subsets)
        batches: list[list[Task]] = []
        for _ in range(config.epochs):
            batches += [train[i:i + size] for i in range(0, len(train), size)]
        return batches[:config.subsets * config.epochs]


class Bootstrapping(_Batched):
    """Batches of |train| / N sampled with replacement (duplicates dropped)."""

    name = "bootstrapping"

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        size = math.ceil(len(train) / config.subsets)
        batches = [[rng.choice(train) for _ in range(size)] for _ in range(config.subsets * config.epochs)]
        return [list({t.id: t for t in b}.values()) for b in batches]


METHODS: dict[str, Method] = {m.name: m for m in (FGO(), NoMerge(), Vanilla(), AllAtOnce(), BatchWise(),
                                                  Bootstrapping())}


def method_for(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def project_calls(config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]:
    """Upper-bound estimate of LLM calls per role, before any cache hit."""
    return method_for(config.method).project(config, suite, n_train, n_test)
