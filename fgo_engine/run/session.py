"""A session: one SQLite file, one configuration, one run that can stop and resume.

``Session.create`` validates everything and writes the file; ``Session.open`` reads it
back; ``Session.run`` executes the configured method (FGO or a baseline) until it is
done, cancelled, out of budget or failed — and is safe to call again to resume.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgo_engine import events as ev
from fgo_engine.config import RunConfig
from fgo_engine.errors import BudgetExceededError, CancelledError, FGOError, SessionError
from fgo_engine.llm.gateway import Gateway
from fgo_engine.method.control import Control
from fgo_engine.method.methods import check_run, method_for, project
from fgo_engine.method.projection import Projection
from fgo_engine.method.review import ReviewGate, gate_for_policy, with_gate_defaults
from fgo_engine.method.runtime import Runtime
from fgo_engine.persistence import queries, writes
from fgo_engine.persistence.store import is_disk_full
from fgo_engine.report.tracking import MlflowTracker, make_tracker
from fgo_engine.report.tracking import check_available as check_tracking
from fgo_engine.run.executors import Executor, make_executor
from fgo_engine.run.logs import SessionLog
from fgo_engine.run.progress import RoleProgress
from fgo_engine.suites.base import Suite, build_suite, with_suite_defaults
from fgo_engine.types import Budget, LedgerEntry, Module, Task

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@dataclass
class RunResult:
    method: str
    status: str
    message: str = ""
    train_score: float | None = None
    test_score: float | None = None
    test_by_category: dict[str, float] = field(default_factory=dict)
    start_test_score: float | None = None  # the starting module on the same test tasks, beside test_score
    final_module: Module | None = None
    final_module_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    cache_hits: int = 0
    cached_prompt_tokens: int = 0  # served by the response cache: not spent, not in prompt_tokens
    cached_completion_tokens: int = 0
    wall_seconds: float = 0.0
    train_wall_seconds: float | None = None  # the method's run, the final test evaluation left out
    overflowed: bool = False
    optimizer_steps: int = 0
    by_phase: dict[str, dict[str, int]] = field(default_factory=dict)  # spent and cached tokens per phase
    by_role: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def optimization_prompt_tokens(self) -> int:
        """Prompt tokens spent before the final test evaluation (explore → merge → backtest)."""
        return sum(v["prompt_tokens"] for k, v in self.by_phase.items() if k != "test")


ELAPSED_KEY = queries.ELAPSED_KEY
elapsed_seconds = queries.elapsed_seconds


class Session:
    def __init__(self, store: Store, config: RunConfig, *, suite: Suite | None = None,
                 sinks: list[Callable[[ev.Event], None]] | None = None, gate: ReviewGate | None = None,
                 sleep: Callable[[float], None] = time.sleep, executor: Executor | None = None):
        self.store = store
        self.config = config
        self.suite = with_suite_defaults(suite or build_suite(config))
        self.session_log = SessionLog(store.path)
        self.log = self.session_log.log
        self.suite.set_log(self.log)
        self.bus = ev.EventBus(sinks, log=self.log)
        self.gate = gate or gate_for_policy(config.review)
        self.control = Control()
        self.gateway = Gateway(
            config.roles, store=store, use_cache=config.cache, retries=config.retries, sleep=sleep,
            max_retry_after=config.max_retry_after,
            budget=Budget(config.budget_tokens, config.budget_cost, dict(config.role_budgets)),
            listener=self._on_call, rng=random.Random(config.seed), queue_listener=self._on_queue,
            before_call=self.control.checkpoint,
        )
        self._running = threading.Lock()
        self.executor = executor or make_executor(config)  # started before the first run

    @property
    def gate(self) -> ReviewGate:
        return self._gate

    @gate.setter
    def gate(self, gate: ReviewGate) -> None:
        self._gate = with_gate_defaults(gate)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: RunConfig, *, name: str | None = None, **kw: Any) -> Session:

        config.validate()
        # validates suite options and task files before any file is written; a caller may give the
        # suite built already (fgo_engine.optimize wraps the user's callables)
        suite = kw.pop("suite", None) or build_suite(config)
        train, test = suite.train_tasks(), suite.test_tasks()
        check_run(config, suite, train)
        check_tracking(config)  # --track mlflow without MLflow installed: one line, no file
        executor = kw.pop("executor", None) or make_executor(config)
        executor.start()  # Ray missing or unreachable: one line, and still no file
        try:  # the tasks are written with the file: a task it cannot hold leaves no file
            store = writes.new_session(path, name=name or Path(path).stem, config=config.to_dict(),
                                       suite=config.suite, train=train, test=test)
        except BaseException:
            executor.close()
            raise
        return cls(store, config, suite=suite, executor=executor, **kw)

    @classmethod
    def open(cls, path: str | Path, *, config_overrides: dict[str, Any] | None = None, **kw: Any) -> Session:
        from fgo_engine.persistence.store import Store

        store = Store.open(path)
        try:  # a session refused here (unreadable, a suite not installed, ...) is left as it was
            info = store.session_info()
            data = dict(info["config_json"] or {})
            data.update(config_overrides or {})
            config = RunConfig.from_dict(data)
        except FGOError:
            store.abandon()
            raise
        except Exception as exc:
            store.abandon()
            raise SessionError(f"{path}: session configuration is unreadable: {exc}") from None
        executor = kw.pop("executor", None) or make_executor(config)
        try:
            executor.start()  # before the overrides are written
            session = cls(store, config, executor=executor, **kw)
        except BaseException:
            executor.close()
            store.abandon()
            raise
        if config_overrides and info.get("status") != "done":  # a finished session is not changed
            writes.session_config(store, config.to_dict())
        return session

    def close(self) -> None:
        try:
            self.executor.close()
        finally:
            self.store.close()

    # -- control ----------------------------------------------------------------------
    def pause(self) -> None:
        self.control.pause()
        writes.session_status(self.store, "paused")
        self.bus.emit(ev.RunStatus("paused"))

    def resume(self) -> None:
        self.control.resume()
        writes.session_status(self.store, "running")
        self.bus.emit(ev.RunStatus("running"))

    def cancel(self) -> int:
        """Stop the run: no new LLM call starts; replies under way from a server are abandoned (a
        simulated call, in this process, ends first). Returns how many calls were under way."""
        first = not self.control.cancelled
        self.control.cancel()
        self.gate.cancel()
        self.gateway.abandon()
        n = self.gateway.in_flight
        if first:
            self.bus.emit(ev.Log("warning", f"cancel asked: no new LLM call starts; {n} call(s) under way "
                                            "are abandoned (the session keeps everything answered before)"))
        return n

    # -- data -------------------------------------------------------------------------
    def tasks(self, split: str) -> list[Task]:
        return queries.tasks(self.store, split)

    def _keep_event(self, e: ev.Event) -> None:
        """The session keeps its history (the Events tab of a reopened session shows it)."""
        if isinstance(e, ev.HISTORY_EVENTS):
            payload = ev.event_payload(e)
            writes.history_event(self.store, payload.pop("kind"), payload)

    def _log_event(self, e: ev.Event) -> None:
        """What the run reports is also in the session log (marked, so the console does not repeat it)."""
        mark = {"event": True}
        if isinstance(e, ev.Log):
            self.log.log(_LEVELS.get(e.level, logging.INFO), "%s", e.text, extra=mark)
        elif isinstance(e, ev.SubsetDone) and e.error:
            self.log.error("subset %s failed: %s", e.subset_id, e.error, extra=mark)
        elif isinstance(e, ev.RunStarted):
            self.log.info("run started: %s, %s subsets, %s train / %s test tasks; projected calls %s", e.method,
                          e.n_subsets, e.n_train, e.n_test, e.projected_calls, extra=mark)
        elif isinstance(e, ev.RunFinished):
            self.log.info("run finished: %s%s", e.status, f" ({e.message})" if e.message else "", extra=mark)

    def elapsed_before(self) -> float:
        """Wall seconds of this session's earlier runs (elapsed time survives a resume)."""
        return elapsed_seconds(self.store)

    def projection(self, train: list[Task] | None = None, test: list[Task] | None = None) -> Projection:
        """What this run will cost: calls (bound and expected), tokens and cost per role."""
        train = self.tasks("train") if train is None else train
        test = self.tasks("test") if test is None else test
        return project(self.config, self.suite, train, test, windows=self.gateway.window)

    def _on_call(self, e: LedgerEntry) -> None:
        self.bus.emit(ev.TokensUsed(e.role, e.scope.kind, e.scope.id, e.scope.phase, e.prompt_tokens,
                                    e.completion_tokens, e.cache_hit, self.gateway.total.tokens, e.error,
                                    0.0 if e.cache_hit else e.latency_ms))

    def _on_queue(self, kind: str, scope_id: str, model: str, queued: bool, busy: int, limit: int) -> None:
        self.bus.emit(ev.ScopeQueued(kind, scope_id, model, queued, busy, limit))

    # -- run --------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """The run ended with a result: running it again would only replay it from the cache."""
        return self.store.session_info().get("status") == "done"

    def finished_result(self) -> RunResult:
        """What a finished session holds, read without writing anything."""
        info = self.store.session_info()
        final_id = info.get("final_module_id")
        row = queries.module(self.store, final_id)
        result = RunResult(method=self.config.method, status="done",
                           message="this session is finished; nothing was run (export it, or start a new one)",
                           train_score=info.get("best_score"), final_module_id=final_id,
                           final_module=Module(row["kind"], row["text"]) if row else None)
        if final_id:
            result.test_score = queries.mean_test_score(self.store, final_id)
            result.start_test_score = queries.mean_test_score(self.store, "initial")
        return result

    def _calls_done(self, before: dict[str, dict], counts: dict[str, tuple[int, int]]) -> dict[str, int]:
        """The session's work done per role after this run, counted as :class:`Progress` counts it
        (this run's cache hits are earlier work replayed until that is used up)."""
        out = {}
        for role in set(before) | set(self.gateway.by_role):
            t = self.gateway.by_role.get(role)
            calls0, hits0 = counts.get(role, (0, 0))
            calls, hits = (t.calls - calls0, t.cache_hits - hits0) if t is not None else (0, 0)
            r = RoleProgress(before=int(before.get(role, {}).get("calls") or 0), fresh=calls - hits, cached=hits)
            out[role] = r.done
        return out

    def run(self) -> RunResult:
        if not self._running.acquire(blocking=False):
            raise SessionError("this session is already running")
        if self.finished:
            try:
                result = self.finished_result()
            finally:
                self._running.release()
            self.bus.emit(ev.RunFinished(result.status, result.train_score, result.test_score,
                                         result.final_module_id, result.message, result.start_test_score))
            return result
        start = time.perf_counter()
        self.session_log.open()
        self.bus.add(self._log_event)
        self.bus.add(self._keep_event)
        train, test = self.tasks("train"), self.tasks("test")
        cfg = self.config
        method = method_for(cfg.method)
        self.executor.start()
        rt = Runtime(cfg, self.suite, self.store, self.gateway, self.bus, self.gate, self.control,
                     {t.id: t for t in train + test}, executor=self.executor)
        result = RunResult(method=cfg.method, status="running")
        writes.session_status(self.store, "running")
        tracker = None
        before = queries.calls_done(self.store)
        counts = {r: (t.calls, t.cache_hits) for r, t in self.gateway.by_role.items()}
        try:
            tracker = make_tracker(self.store, cfg)
            if tracker is not None:
                self.bus.add(tracker)
            projection = self.projection(train, test)
            subsets = 0 if cfg.method == "vanilla" else cfg.subsets  # vanilla divides nothing
            sandbox, sandbox_warning = self.suite.sandbox_status()
            if sandbox:
                writes.meta_value(self.store, "sandbox", sandbox)
            self.bus.emit(ev.RunStarted(cfg.method, subsets, len(train), len(test),
                                        projection.calls_by_role(), projection.to_dict(), before,
                                        sandbox=sandbox, sandbox_warning=sandbox_warning,
                                        has_merge_tree=method.has_merge_tree,
                                        max_merge_nodes=method.max_merge_nodes(subsets)))
            if sandbox_warning:  # the CLI line, the session log and the app's event log
                self.bus.emit(ev.Log("warning", sandbox_warning))
            self.bus.emit(ev.RunStatus("running"))
            initial = self.suite.initial_module()
            initial_id = rt.save_module("initial", initial, origin="initial")
            out = method.run(rt, train, initial, initial_id)
            final, final_id, train_score = out.module, out.module_id, out.train_score
            result.final_module, result.final_module_id, result.train_score = final, final_id, train_score
            result.optimizer_steps = out.steps
            result.train_wall_seconds = time.perf_counter() - start
            if cfg.evaluate_test and test:
                result.test_score, result.test_by_category = rt.test(final, final_id, test)
                result.start_test_score = self._test_the_rest(rt, method.has_merge_tree, test, final_id,
                                                              initial, initial_id, result.test_score)
            result.status = "done"
            writes.session_result(self.store, train_score=train_score, final_module_id=final_id)
        except BudgetExceededError as exc:
            result.status, result.message = "budget", f"{exc}; resume with a larger budget to continue"
        except CancelledError as exc:
            result.status, result.message = "cancelled", str(exc)
        except FGOError as exc:
            result.status, result.message = "failed", str(exc)
        except Exception as exc:  # keep the session consistent, say what happened and where the traceback is
            self.log.exception("internal error")
            result.status, result.message = "failed", (f"internal error: {type(exc).__name__}: {exc} "
                                                       f"(traceback in {self.session_log.path})")
        finally:
            rt.close()
            if tracker is not None:
                self.bus.remove(tracker)
            result.overflowed = rt.overflowed
            result.wall_seconds = time.perf_counter() - start
            writes.meta_value(self.store, ELAPSED_KEY, f"{self.elapsed_before() + result.wall_seconds:.3f}")
            writes.meta_value(self.store, queries.PROGRESS_KEY, json.dumps(self._calls_done(before, counts)))
            t = self.gateway.total
            result.prompt_tokens, result.completion_tokens, result.cost = t.prompt_tokens, t.completion_tokens, t.cost
            result.calls, result.cache_hits = t.calls, t.cache_hits
            result.cached_prompt_tokens, result.cached_completion_tokens = (t.cached_prompt_tokens,
                                                                            t.cached_completion_tokens)
            snap = self.gateway.totals_snapshot()
            keys = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cached_completion_tokens",
                    "calls", "cache_hits")
            result.by_phase = {k: {f: v[f] for f in keys} for k, v in snap["by_phase"].items()}
            result.by_role = {k: {f: v[f] for f in keys} for k, v in snap["by_role"].items()}
            try:
                try:
                    self._record_finish(result)
                    self._clear_decisions()
                finally:
                    self._running.release()
                self.bus.emit(ev.RunFinished(result.status, result.train_score, result.test_score,
                                             result.final_module_id, result.message, result.start_test_score))
                if tracker is not None:
                    self._finish_tracking(tracker, result)
            finally:
                self.bus.remove(self._log_event)
                self.bus.remove(self._keep_event)
                self.session_log.close()
        return result

    def _test_the_rest(self, rt: Runtime, has_tree: bool, test: list[Task], final_id: str, initial: Module,
                       initial_id: str, final_score: float) -> float:
        """The starting module on the test split beside the result and, with ``test_modules``, every
        module of the merge tree, side by side. Reported only: no decision reads the test split
        (they are scored after the run, so nobody decides with them either). The starting module's score."""
        others = [] if final_id == initial_id else [(initial, initial_id)]
        if has_tree and self.config.test_modules:
            tree = [(m, mid) for mid, m in queries.tree_modules(self.store) if mid not in (final_id, initial_id)]
            if tree:
                self.bus.emit(ev.Log("info", f"test split: the starting module and {len(tree)} module(s) of the "
                                             "merge tree beside the result (reported only; no decision reads them)"))
            others += tree
        scores = rt.test_side_by_side(others, test)
        return final_score if final_id == initial_id else scores[initial_id]

    def _clear_decisions(self) -> None:
        """Decisions the app posted for this run and the run recorded are done with (see persistence.inbox)."""
        from fgo_engine.persistence import inbox

        try:
            inbox.clear(self.store.path, {r["node_id"] for r in queries.reviews(self.store)})
        except (OSError, FGOError):
            self.log.warning("could not remove the review decisions posted beside %s", self.store.path)

    def _finish_tracking(self, tracker: MlflowTracker, result: RunResult) -> None:
        """The run's last metrics and its artifacts to the tracker; a tracker failing says so in the log."""
        tracker(ev.RunFinished(result.status, result.train_score, result.test_score, result.final_module_id))
        try:
            tracker.finish(result)
        except Exception:  # observational, like every sink: the session is already complete
            self.log.exception("experiment tracking could not log the run's end")

    def _record_finish(self, result: RunResult) -> None:
        """The run's end on disk. On a full disk, the space held beside the session is given
        back so that at least the stop and its reason are recorded."""
        def queue() -> None:
            writes.session_status(self.store, result.status)
            if result.status != "done":
                writes.run_error(self.store, result.message)

        queue()
        writes.run_finished(self.store, status=result.status, message=result.message,
                            train_score=result.train_score, test_score=result.test_score)
        try:
            self.store.flush()
        except SessionError as exc:
            if not is_disk_full(exc):
                raise
            self.store.release_reserve()
            if result.status == "done":
                result.status, result.message = "failed", str(exc)
            queue()
            self.store.flush()
