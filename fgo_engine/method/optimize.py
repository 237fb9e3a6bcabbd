"""Optimize: Algorithm 1 — explore → evaluate (textual gradients) → optimize, one step per batch.

FGO runs one loop per subset (``optimize_subsets``, in parallel); the baselines run one
loop over their batches. A candidate is adopted only if it scores at least as well as the
best so far on the same batch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fgo_engine import events as ev
from fgo_engine.errors import BudgetExceededError, CancelledError, ContextOverflowError, FGOError, SessionError
from fgo_engine.method import prompts, resample
from fgo_engine.method.divide import subset_name
from fgo_engine.method.runtime import Item, Runtime, mean, short_hash
from fgo_engine.persistence import queries, writes
from fgo_engine.types import Critique, Module, Scope, Task, Trajectory


@dataclass
class LoopResult:
    best: Module
    best_id: str
    best_score: float
    steps: int
    overflowed: bool = False
    history: list[str] = field(default_factory=list)


# -- evaluate -------------------------------------------------------------------------
def evaluate(rt: Runtime, module: Module, module_id: str, tasks: list[Task], trajs: list[Trajectory], *,
             scope: Scope, epoch: int, subset_id: int | None) -> list[Critique]:
    """Critique failures with the evaluator; successes are marked correct without a call."""
    describe = rt.suite.describe()

    def one(task: Task, tr: Trajectory) -> Critique:
        if tr.success:
            return Critique(task.id, True, raw="(success: not sent to the evaluator)")

        def judge(comp) -> str | None:
            return prompts.critique_problem(comp.text)

        comp, problem = resample.ask(rt, "evaluator", prompts.evaluator_messages(describe, module, task, tr),
                                    scope=replace(scope, task_id=task.id, epoch=epoch), samples=2,
                                    note_kind="critique", judge=judge)
        crit = prompts.parse_critique(task.id, comp.text)
        if problem is not None:
            rt.bus.emit(ev.Log("warning", f"evaluator reply for task {task.id} was not JSON; kept as free text"))
        return crit

    futures = [rt.pool.submit(scope.key, one, t, tr) for t, tr in zip(tasks, trajs)]
    crits = [f.result() for f in futures]
    for t, c in zip(tasks, crits):
        if not c.correct and subset_id is not None:
            rt.bus.emit(ev.CritiqueMade(subset_id, epoch, t.id, c.correct, c.failure, c.suggestion))
    writes.critiques(rt.store, scope, epoch, module_id, zip(tasks, crits), subset_id)
    return crits


# -- optimize -------------------------------------------------------------------------
def keep_unchanged(rt: Runtime) -> Callable[[str], bool]:
    """When an "unchanged" reply is the optimizer's answer (``resample.ask``'s ``final``): at
    a temperature above 0 at once; at 0 after one more sample, with a note and a raised
    temperature, since the same request (and every later step's near-identical one) gets
    the same reply back (issue 22: all-at-once's steps 2 and 3 got step 1's answer)."""
    greedy = rt.gw.roles["optimizer"].temperature <= 0
    seen: list[str] = []

    def final(reason: str) -> bool:
        if not prompts.is_unchanged(reason):
            return False
        seen.append(reason)
        return not greedy or len(seen) > 1
    return final


def propose(rt: Runtime, module: Module, tasks: list[Task], trajs: list[Trajectory], crits: list[Critique],
            history: list[str], rejected: list[str], *, scope: Scope) -> Module | None:
    """One optimizer step under the one prompt policy (``prompts.pack_optimizer_prompt``):
    whole examples packed into the optimizer's budget; a dropped failure marks the run
    overflowed. Every step asks the optimizer, even when the batch has no failure."""
    describe = rt.suite.describe()
    examples = list(zip(tasks, trajs, crits))
    budget = rt.optimizer_budget()
    while True:
        msgs, packing = prompts.pack_optimizer_prompt(describe, module, examples, history[-8:], rejected[-3:],
                                                      budget=budget, count=rt.count_optimizer_tokens)
        if packing.overflowed:
            rt.overflowed = True
            rt.bus.emit(ev.Log("warning", f"context overflow: the optimizer prompt ({scope.kind} {scope.id}) "
                                          f"holds {packing.kept} of {packing.failures} failures within its "
                                          f"{packing.budget:,}-token budget; "
                                          "the rest were left out (run marked overflowed)"))
        try:
            comp, problem = resample.ask(rt, "optimizer", msgs, scope=scope, samples=3, note_kind=module.kind,
                                        judge=lambda c: resample.proposal_problem(rt, module.kind, c.text, module.text),
                                        final=keep_unchanged(rt), whole=True)
            if problem is None:
                return Module(module.kind, prompts.extract_module(module.kind, comp.text) or "")
            level = "info" if prompts.is_unchanged(problem) else "warning"  # the rejection itself warned
            rt.bus.emit(ev.Log(level, f"optimizer gave no usable {module.kind} ({scope.kind} {scope.id}): "
                                      f"{problem}; kept the current one"))
            return None
        except ContextOverflowError as exc:
            # the provider counts differently from our tokenizer: shrink the budget, same rule
            rt.overflowed = True
            if packing.kept == 0:
                rt.bus.emit(ev.Log("error", f"context overflow even with no example: {exc}"))
                return None
            budget = max(1, (budget or packing.prompt_tokens) * 3 // 4)
            rt.bus.emit(ev.Log("warning", f"context overflow ({exc.prompt_tokens} > {exc.window} tokens); "
                                          f"packing again into {budget:,} tokens"))


def optimize_loop(rt: Runtime, start: Module, start_id: str, batches: list[list[Task]], *, scope_kind: str,
                  scope_id: str, subset_id: int | None, label: str) -> LoopResult:
    """Algorithm 1 generalised over batches: one optimizer step per batch.

    FGO's subset loop passes the subset as every batch; batch-wise and bootstrapping
    pass their batches; all-at-once passes the whole training set.
    """
    best, best_id = start, start_id
    candidate: Module | None = None
    candidate_id: str | None = None
    history: list[str] = []
    rejected: list[str] = []
    best_score = 0.0
    for step, batch in enumerate(batches + [batches[-1]]):  # the last pass only judges the last candidate
        final = step == len(batches)
        explore_scope = Scope(scope_kind, scope_id, "explore")
        # the best module and the candidate on this batch are independent: side by side
        passes = [(best, best_id, batch, explore_scope, step)]
        if candidate is not None:
            assert candidate_id is not None
            passes.append((candidate, candidate_id, batch, explore_scope, step))
        explored = rt.explore_together(passes, subset_id=subset_id)
        best_trajs = explored[0]
        best_score = mean([t.score for t in best_trajs])
        adopted = None
        cand_score = None
        if candidate is not None:
            assert candidate_id is not None
            cand_trajs = explored[1]
            cand_score = mean([t.score for t in cand_trajs])
            adopted = cand_score >= best_score
            writes.candidate_scored(rt.store, candidate_id, cand_score, adopted)
            if adopted:
                history.append(f"step {step}: {cand_score:.3f} (adopted; previous best {best_score:.3f})")
                best, best_id, best_score, best_trajs = candidate, candidate_id, cand_score, cand_trajs
            else:
                history.append(f"step {step}: {cand_score:.3f} (rejected; best stays {best_score:.3f})")
                rejected.append(candidate.text)
        else:
            history.append(f"step {step}: {best_score:.3f} (starting point)")
        writes.epoch(rt.store, scope_kind, scope_id, step, subset_id=subset_id, module_id=best_id,
                     candidate_id=candidate_id, score=best_score, candidate_score=cand_score, adopted=adopted,
                     label=label)
        if subset_id is not None:
            rt.bus.emit(ev.EpochDone(subset_id, step, cand_score if cand_score is not None else best_score,
                                     best_score, adopted, best_id))
        candidate = candidate_id = None
        if final:
            break
        crits = evaluate(rt, best, best_id, batch, best_trajs, scope=Scope(scope_kind, scope_id, "evaluate"),
                         epoch=step, subset_id=subset_id)
        proposal = propose(rt, best, batch, best_trajs, crits, history, rejected,
                           scope=Scope(scope_kind, scope_id, "optimize", epoch=step))
        if proposal is not None:
            # every step's candidate is evaluated; one equal to a module already run on
            # these tasks is served by the response cache (counted as cached, not spent)
            candidate = proposal
            candidate_id = f"{label}.e{step + 1}.{short_hash(proposal.text)}"
            rt.save_module(candidate_id, proposal, origin="optimize", parent_id=best_id, subset_id=subset_id,
                           epoch=step + 1)
            if subset_id is not None:
                rt.bus.emit(ev.ModuleProposed(subset_id, step + 1, candidate_id, proposal.text))
    return LoopResult(best, best_id, best_score, len(batches), rt.overflowed, history)


# -- FGO's subsets in parallel ----------------------------------------------------------
def optimize_subsets(rt: Runtime, groups: list[list[Task]], start: Module, start_id: str) -> list[Item]:
    """Run Algorithm 1 on every subset (loops submitted to the executor); finished subsets are
    loaded, not re-run."""
    cfg = rt.cfg
    existing = {r["id"]: r for r in queries.subsets(rt.store)}
    writes.subsets(rt.store, [(i, subset_name(g, i), [t.id for t in g]) for i, g in enumerate(groups)
                              if i not in existing])
    results: dict[int, Item] = {}
    errors: list[tuple[str, Exception]] = []

    def work(i: int, group: list[Task]) -> Item:
        row = existing.get(i)
        cats = tuple(sorted({t.category for t in group}))
        rt.bus.emit(ev.SubsetStarted(i, subset_name(group, i), len(group), cats, node=rt.executor.place(i)))
        if row and row["status"] == "done" and row["best_module_id"]:
            m = queries.module(rt.store, row["best_module_id"])
            assert m is not None  # written before the subset was marked done
            item = Item(f"s{i}", Module(m["kind"], m["text"]), row["best_module_id"], row["best_score"],
                        [t.id for t in group], subset_ids=[i])
            rt.bus.emit(ev.SubsetDone(i, item.score, item.module_id))
            return item
        writes.subset_started(rt.store, i)
        res = optimize_loop(rt, start, start_id, [group] * cfg.epochs, scope_kind="subset",
                            scope_id=str(i), subset_id=i, label=f"s{i}")
        writes.subset_finished(rt.store, i, res.best_id, res.best_score)
        rt.bus.emit(ev.SubsetDone(i, res.best_score, res.best_id))
        return Item(f"s{i}", res.best, res.best_id, res.best_score, [t.id for t in group], subset_ids=[i])

    futures = rt.executor.submit_subsets(work, groups, cfg.workers)  # coordinating threads on the driver
    for fut, i in futures.items():
        try:
            results[i] = fut.result()
        except (BudgetExceededError, CancelledError) as exc:
            rt.control.stop(exc)
            errors.append(("stop", exc))
        except FGOError as exc:
            writes.subset_failed(rt.store, i)
            rt.bus.emit(ev.SubsetDone(i, 0.0, "", error=str(exc)))
            errors.append(("fail", SessionError(f"subset {i} failed: {exc}")))
    stops = [e for k, e in errors if k == "stop"]
    if stops:
        raise stops[0]
    if errors:
        raise SessionError(f"{errors[0][1]} (other subsets' work is saved; resume to retry)")
    return [results[i] for i in sorted(results)]
