"""Backtests of a merged module: on the whole union of its subsets' tasks (``full``, the
paper's), or on a growing stratified sample of it (``adaptive``, beyond the paper).

Adaptive: the strata are the node's subsets. Each round runs the merged module and the
best child on the same sampled tasks (a paired comparison; the child's runs on its own
subset come from the response cache), and estimates d = score(merged) − score(best
child) over the union with the stratified mean and its variance (finite-population
corrected). Every stratum's variance gets a pseudo-sum of squares PRIOR_SS, so a small
sample that happens to show no difference is not taken as certainty. The sample stops
growing when the Z-interval around d excludes 0 (the two are separated) or when the
union is exhausted (then the figures are the full backtest's). Per stratum the sample
starts at max(2, ⌈N_h / 4⌉) tasks and doubles each round, in a seeded order.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from fgo_engine.method.runtime import Item, Runtime, mean
from fgo_engine.types import Module, Scope, Task, Trajectory

Z = 1.96  # two-sided 95%
PRIOR_SS = 0.25  # pseudo sum of squares per stratum (one observation of variance 1/4)
FIRST_SHARE = 4  # the first round samples ⌈N_h / FIRST_SHARE⌉ tasks per stratum


@dataclass
class Backtest:
    mode: str  # full | adaptive
    tasks: list[Task]  # what the merged module ran on, in the order run
    trajs: list[Trajectory]
    score: float  # the merged module's score over the union (adaptive: stratified estimate)
    child_trajs: list[Trajectory] | None = None  # the best child on the same tasks, when compared
    child_score: float | None = None
    interval: tuple[float, float] | None = None  # merged − best child, Z-interval


def stratified(strata: list[tuple[int, list[float]]]) -> tuple[float, float, float]:
    """(estimate, low, high) of the union's mean from per-stratum (size, sampled values)."""
    total = sum(n for n, _ in strata)
    est, var = 0.0, 0.0
    for n_pop, vals in strata:
        if not vals:
            continue
        w, k = n_pop / total, len(vals)
        m = sum(vals) / k
        ss = sum((v - m) ** 2 for v in vals) + PRIOR_SS
        est += w * m
        var += w * w * (ss / k) / k * max(0.0, 1.0 - k / n_pop)
    half = Z * math.sqrt(var)
    return est, est - half, est + half


def full(rt: Runtime, node_id: str, tasks: list[Task], module: Module, module_id: str,
         child: Item | None = None, *, draw: int = 0) -> Backtest:
    """The whole union; with ``child`` (if-not-worse), the best child runs beside it.
    ``draw`` ≠ 0: both run on fresh agent samples, so the child is not judged on the very
    runs it was selected on (a winner's curse) while the merged module gets new ones."""
    scope = Scope("node", node_id, "backtest", draw=draw)
    if child is None:
        trajs = rt.explore(module, module_id, tasks, scope=scope, epoch=0)
        return Backtest("full", tasks, trajs, mean([t.score for t in trajs]))
    trajs, kid = rt.explore_together([(module, module_id, tasks, scope, 0),
                                      (child.module, child.module_id, tasks, scope, 1)])
    return Backtest("full", tasks, trajs, mean([t.score for t in trajs]), kid, mean([t.score for t in kid]))


def adaptive(rt: Runtime, node_id: str, strata: list[list[Task]], module: Module, module_id: str,
             child: Item, *, draw: int = 0) -> Backtest:
    scope = Scope("node", node_id, "backtest", draw=draw)
    orders = []
    for h, tasks in enumerate(strata):
        order = list(tasks)
        random.Random(f"{rt.cfg.seed}:{node_id}:{h}").shuffle(order)
        orders.append(order)
    taken = [0] * len(strata)
    size = [max(2, math.ceil(len(s) / FIRST_SHARE)) for s in strata]
    ran: list[Task] = []
    merged: dict[str, Trajectory] = {}
    kid: dict[str, Trajectory] = {}
    while True:
        new = []
        for h, order in enumerate(orders):
            want = min(len(order), size[h])
            new += order[taken[h]:want]
            taken[h] = want
            size[h] *= 2
        if new:  # the merged module and its best child side by side on the same sample
            ours, theirs = rt.explore_together([(module, module_id, new, scope, 0),
                                                (child.module, child.module_id, new, scope, 1)])
            merged.update((t.id, tr) for t, tr in zip(new, ours))
            kid.update((t.id, tr) for t, tr in zip(new, theirs))
            ran += new
        sampled = [order[:taken[h]] for h, order in enumerate(orders)]
        diff = stratified([(len(o), [merged[t.id].score - kid[t.id].score for t in s])
                           for o, s in zip(orders, sampled)])
        exhausted = all(taken[h] >= len(o) for h, o in enumerate(orders))
        if exhausted or diff[1] > 0 or diff[2] < 0:
            break
    score = stratified([(len(o), [merged[t.id].score for t in s]) for o, s in zip(orders, sampled)])[0]
    child_score = stratified([(len(o), [kid[t.id].score for t in s]) for o, s in zip(orders, sampled)])[0]
    return Backtest("adaptive", ran, [merged[t.id] for t in ran], score, [kid[t.id] for t in ran], child_score,
                    (diff[1], diff[2]))
