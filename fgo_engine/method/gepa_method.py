"""GEPA side by side (``--method gepa``; the optional ``gepa`` extra, gepa 0.1.4).

GEPA's own ``optimize`` runs with an adapter that makes every one of its metric calls a
rollout of the suite's agent through this run's gateway, and a reflection LM that is this
run's optimizer role through the same gateway: both methods' tokens land in the same
ledger, under the same cache rules, on the same train and test tasks. GEPA's metric-call
budget is FGO's training rollouts for the same settings (N, E, t, review), so both make
the same number of agent episodes.

GEPA writes its own reflection prompt; the simulated optimizer reads only this project's
prompt tags, so with an ``fgo-sim/`` optimizer GEPA's proposals are not GEPA's and its
score says nothing (the bench's table says so instead of showing it).
"""
from __future__ import annotations

import logging
from typing import Any

from fgo_engine.errors import ConfigError
from fgo_engine.method import prompts
from fgo_engine.method.projection import Plan
from fgo_engine.method.runtime import Runtime, short_hash
from fgo_engine.persistence import queries, writes
from fgo_engine.types import Module, Scope, Task, Trajectory

log = logging.getLogger("fgo.method")
SCOPE_ID = "gepa"
MINIBATCH = 3  # GEPA's reflection minibatch (its default)


def _gepa() -> Any:
    try:
        import gepa
    except ImportError:
        raise ConfigError("method gepa needs the gepa package: pip install 'fgo-studio[gepa]' "
                          "(gepa==0.1.4)") from None
    return gepa


def rollouts(plan: Plan, review: str) -> int:
    """The agent episodes FGO's training makes under ``plan`` (FGO's): each subset's loop (its
    best module every step plus the judging pass, and a candidate at every step after the
    first) and every merge's backtest (twice under if-not-worse: the best child beside it)."""
    n = 0
    for loop in plan.loops:
        passes = loop.batches + [loop.batches[-1]]
        n += sum(len(b) for b in passes) + sum(len(b) for b in passes[1:])
    per_merge = 2 if review == "if-not-worse" else 1
    return n + per_merge * sum(len(m.tasks) for m in plan.merges)


class _Logger:
    def log(self, message: str) -> None:
        log.info("gepa: %s", message)


class _Adapter:
    """GEPA's view of this run: a candidate is ``{kind: text}``; evaluating it on a batch
    runs the agent on those tasks (``Runtime.explore``: the executor, the ledger, the cache)."""

    def __init__(self, rt: Runtime, start: Module):
        self.rt, self.kind = rt, start.kind
        self.passes = 0
        self.propose_new_texts = None

    def _module(self, candidate: dict[str, str]) -> tuple[Module, str]:
        module = Module(self.kind, candidate[self.kind])
        module_id = f"gepa.{short_hash(module.text)}"
        if queries.module(self.rt.store, module_id) is None:
            self.rt.save_module(module_id, module, origin="optimize", note="proposed by GEPA")
        return module, module_id

    def evaluate(self, batch: list[Task], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        module, module_id = self._module(candidate)
        self.passes += 1
        trajs = self.rt.explore(module, module_id, batch, scope=Scope("baseline", SCOPE_ID, "explore"),
                                epoch=self.passes)
        return EvaluationBatch(outputs=[t.answer for t in trajs], scores=[float(t.score) for t in trajs],
                               trajectories=list(zip(batch, trajs)) if capture_traces else None)

    def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                components_to_update: list[str]) -> dict[str, list[dict[str, Any]]]:
        pairs: list[tuple[Task, Trajectory]] = eval_batch.trajectories or []
        records = [{"Inputs": task.input,
                    "Generated Outputs": prompts.render_trajectory(tr),
                    "Feedback": (f"score {tr.score:.2f} ({'success' if tr.success else 'failure'})"
                                 + (f"; agent error: {tr.error}" if tr.error else "")
                                 + f"; expected: {task.expected}")}
                   for task, tr in pairs]
        return {name: records for name in components_to_update}


def run_gepa(rt: Runtime, train: list[Task], start: Module, budget: int) -> tuple[Module, str, float, int]:
    """GEPA's ``optimize`` with ``budget`` metric calls: (best module, its id, its score on
    the training set as GEPA measured it, reflection calls)."""
    gepa = _gepa()
    calls = {"n": 0}

    def reflect(prompt: str | list[dict[str, Any]]) -> str:
        calls["n"] += 1
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return rt.gw.complete("optimizer", messages,
                              scope=Scope("baseline", SCOPE_ID, "optimize", epoch=calls["n"])).text

    adapter = _Adapter(rt, start)
    result = gepa.optimize(seed_candidate={start.kind: start.text}, trainset=list(train), valset=list(train),
                           adapter=adapter, reflection_lm=reflect, max_metric_calls=budget,
                           reflection_minibatch_size=MINIBATCH, seed=rt.cfg.seed, logger=_Logger(),
                           display_progress_bar=False, raise_on_exception=True)
    module, module_id = adapter._module({start.kind: result.best_candidate[start.kind]})
    score = float(result.val_aggregate_scores[result.best_idx])
    writes.candidate_scored(rt.store, module_id, score, True)
    return module, module_id, score, calls["n"]
