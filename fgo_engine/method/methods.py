"""FGO, its no-merge ablation and the baselines as small strategy objects.

Every method gets the same optimizer-step budget (subsets × epochs), as in the paper.
Each method also describes the shape of the work it will do (``plan``, from the same
batching code ``run`` uses); :func:`project` turns that into calls, tokens and cost.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fgo_engine import redaction
from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.method import cluster, gepa_method
from fgo_engine.method.divide import partition
from fgo_engine.method.merge import MergeTree
from fgo_engine.method.optimize import optimize_loop, optimize_subsets
from fgo_engine.method.projection import Loop, MergeStep, Plan, Projection, estimate, tree_plan
from fgo_engine.method.runtime import Runtime
from fgo_engine.suites.base import Suite
from fgo_engine.types import Module, Task, is_simulated


@dataclass
class Outcome:
    module: Module
    module_id: str
    train_score: float | None  # None: the method ran no training tasks (vanilla)
    steps: int


class Method(Protocol):
    name: str
    has_merge_tree: bool
    """Works in subsets whose modules meet in merge nodes (what the app shows as panels and a tree)."""

    def max_merge_nodes(self, n_subsets: int) -> int:
        """The merge nodes a full run makes at most."""
        ...

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome: ...

    def plan(self, config: RunConfig, train: list[Task], test: list[Task]) -> Plan:
        """The shape of the work ``run`` will do, from the same batching code (for the projection)."""
        ...


def _with_test(config: RunConfig, plan: Plan, test: list[Task]) -> Plan:
    plan.test = list(test) if config.evaluate_test else []
    plan.post_check = config.review == "if-not-worse"
    return plan


class _NoTree:
    has_merge_tree = False

    def max_merge_nodes(self, n_subsets: int) -> int:
        return 0


class Vanilla(_NoTree):
    name = "vanilla"

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome:
        return Outcome(start, start_id, None, 0)  # no training: no train score to report

    def plan(self, config: RunConfig, train: list[Task], test: list[Task]) -> Plan:
        return _with_test(config, Plan(), test)


class FGO:
    """Divide into subsets, optimize each in parallel, merge through the clustered tree."""

    name = "fgo"
    has_merge_tree = True

    def max_merge_nodes(self, n_subsets: int) -> int:
        return max(0, n_subsets - 1)  # every merge takes two modules or more

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome:
        cfg = rt.cfg
        groups = partition(train, cfg.subsets, cfg.partition, cfg.seed)
        cluster.warm_up(cfg.cluster)
        items = optimize_subsets(rt, groups, start, start_id)
        root = self.merge(MergeTree(rt), items)
        return Outcome(root.module, root.module_id, root.score, cfg.subsets * cfg.epochs)

    def merge(self, tree: MergeTree, items):
        return tree.progressive_merge(items)

    def plan(self, config: RunConfig, train: list[Task], test: list[Task]) -> Plan:
        groups = partition(train, config.subsets, config.partition, config.seed)
        loops = [Loop([g] * config.epochs) for g in groups]
        deepest = config.cluster != "none"  # "none" chunks deterministically: the balanced tree is the tree
        return _with_test(config, Plan(loops, self.merges(config, groups, deepest=deepest),
                                       self.merges(config, groups, deepest=False)), test)

    def merges(self, config: RunConfig, groups: list[list[Task]], *, deepest: bool) -> list[MergeStep]:
        return tree_plan(groups, config.threshold, deepest=deepest)


class NoMerge(FGO):
    """Ablation: the subsets' modules merged by one call instead of the progressive tree."""

    name = "no-merge"

    def max_merge_nodes(self, n_subsets: int) -> int:
        return 1 if n_subsets > 1 else 0

    def merge(self, tree: MergeTree, items):
        return items[0] if len(items) == 1 else tree.merge_all_at_once(items)

    def merges(self, config: RunConfig, groups: list[list[Task]], *, deepest: bool) -> list[MergeStep]:
        if len(groups) < 2:
            return []
        return [MergeStep(len(groups), [t for g in groups for t in g])]


class _Batched(_NoTree):
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

    def plan(self, config: RunConfig, train: list[Task], test: list[Task]) -> Plan:
        return _with_test(config, Plan([Loop(self.batches(config, train, random.Random(config.seed)))]), test)


class AllAtOnce(_Batched):
    """Algorithm 1 on the whole training set at every step."""

    name = "all-at-once"

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        return [train] * (config.subsets * config.epochs)


class BatchWise(_Batched):
    """N consecutive batches of |train| / N tasks (sizes differ by at most one) in sequence
    within each epoch: always N×E steps (fixed-size ⌈T/N⌉ chunks gave fewer, e.g. 6 for T=9, N=4)."""

    name = "batch-wise"

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        n = max(1, min(config.subsets, len(train)))
        small, extra = divmod(len(train), n)
        epoch: list[list[Task]] = []
        start = 0
        for i in range(n):
            size = small + (1 if i < extra else 0)
            epoch.append(train[start:start + size])
            start += size
        return [list(b) for _ in range(config.epochs) for b in epoch]


class Bootstrapping(_Batched):
    """Batches of |train| / N sampled with replacement (duplicates dropped)."""

    name = "bootstrapping"

    def batches(self, config: RunConfig, train: list[Task], rng: random.Random) -> list[list[Task]]:
        size = math.ceil(len(train) / config.subsets)
        batches = [[rng.choice(train) for _ in range(size)] for _ in range(config.subsets * config.epochs)]
        return [list({t.id: t for t in b}.values()) for b in batches]


class GEPA(_NoTree):
    """GEPA (gepa 0.1.4, the ``gepa`` extra) on the same tasks, through this run's gateway,
    with FGO's training rollouts for these settings as its metric-call budget."""

    name = "gepa"

    def budget(self, config: RunConfig, train: list[Task]) -> int:
        return gepa_method.rollouts(FGO().plan(config, train, []), config.review)

    def run(self, rt: Runtime, train: list[Task], start: Module, start_id: str) -> Outcome:
        module, module_id, score, calls = gepa_method.run_gepa(rt, train, start, self.budget(rt.cfg, train))
        return Outcome(module, module_id, score, calls)

    def plan(self, config: RunConfig, train: list[Task], test: list[Task]) -> Plan:
        """Approximate: GEPA's own schedule decides. Its budget as steps on rotating
        minibatches, each judging a parent and a child (GEPA's reflective mutation)."""
        size = min(gepa_method.MINIBATCH, len(train))
        steps = max(1, self.budget(config, train) // (2 * size))
        batches = [[train[(k * size + j) % len(train)] for j in range(size)] for k in range(steps)]
        # GEPA checks its budget between iterations: the last one may overrun it by a minibatch
        # pair and a full pass over the validation set (here the training set)
        return _with_test(config, Plan([Loop(batches), Loop([list(train)])]), test)


METHODS: dict[str, Method] = {m.name: m for m in (FGO(), NoMerge(), Vanilla(), AllAtOnce(), BatchWise(),
                                                  Bootstrapping(), GEPA())}


def method_for(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def check_run(config: RunConfig, suite: Suite, train: list[Task]) -> None:
    """Refuse a run that cannot do what it says (more subsets than training tasks)."""
    if not train:
        raise ConfigError(f"suite {config.suite!r} has no training tasks")
    if config.method != "vanilla" and config.subsets > len(train):
        raise ConfigError(f"subsets: N = {config.subsets} but there are only {len(train)} training tasks; "
                          f"choose N ≤ {len(train)}")


def run_notes(config: RunConfig, suite: Suite) -> list[str]:
    """What the operator should know before starting: the suite's notes, the simulator's limits."""
    notes = list(getattr(suite, "notes", None) or [])
    start = config.instruction or config.toolbox
    if start:
        kind = "instruction" if config.instruction else "toolbox"
        first = next((line.strip() for line in start.splitlines() if line.strip()), "")
        notes.append(f"starting {kind}: yours, {len(start.splitlines())} lines, {len(start):,} characters "
                     f"(\"{redaction.clip(first, 60)}\")")
    sim_roles = [r for r, rc in config.roles.items() if is_simulated(rc.model)]
    if config.suite == "jsonl" and "agent" in sim_roles:
        notes.append("the simulated LLM cannot answer your own tasks (it replies 'unknown'): use a real model "
                     "for the agent to learn anything")
    return notes


def project(config: RunConfig, suite: Suite, train: list[Task], test: list[Task], *,
            windows: Callable[[str], int | None] | None = None) -> Projection:
    """Calls (a hard upper bound and an expected value), tokens and cost per role for this run."""
    check_run(config, suite, train)
    plan = method_for(config.method).plan(config, train, test)
    proj = estimate(plan, config, suite, suite.initial_module(), windows=windows)
    proj.notes = run_notes(config, suite) + proj.notes
    return proj
