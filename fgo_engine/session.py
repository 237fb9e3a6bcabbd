"""A session: one SQLite file, one configuration, one run that can stop and resume.

``Session.create`` validates everything and writes the file; ``Session.open`` reads it
back; ``Session.run`` executes the configured method (FGO or a baseline) until it is
done, cancelled, out of budget or failed — and is safe to call again to resume.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fgo_engine import events as ev
from fgo_engine.config import RunConfig
from fgo_engine.control import Control
from fgo_engine.divide import partition
from fgo_engine.engine import Engine, Item, mean, now
from fgo_engine.errors import BudgetExceededError, CancelledError, ConfigError, FGOError, SessionError
from fgo_engine.llm.gateway import Budget, Gateway, LedgerEntry
from fgo_engine.review import ReviewGate, gate_for_policy
from fgo_engine.suites.base import Suite, load_suite
from fgo_engine.types import Module, Task


@dataclass
class RunResult:
    method: str
    status: str
    message: str = ""
    train_score: float | None = None
    test_score: float | None = None
    test_by_category: dict[str, float] = field(default_factory=dict)
    final_module: Module | None = None
    final_module_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    cache_hits: int = 0
    wall_seconds: float = 0.0
    overflowed: bool = False
    optimizer_steps: int = 0
    by_phase: dict[str, dict[str, int]] = field(default_factory=dict)  # spent tokens per phase
    by_role: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def optimization_prompt_tokens(self) -> int:
        """Prompt tokens spent before the final test evaluation (explore → merge → backtest)."""
        return sum(v["prompt_tokens"] for k, v in self.by_phase.items() if k != "test")


def build_suite(config: RunConfig) -> Suite:
    return load_suite(config.suite, seed=config.seed, **config.suite_options)


def _task_row(t: Task, split: str) -> dict[str, Any]:
    return {"id": t.id, "split": split, "category": t.category, "input": t.input, "expected": t.expected,
            "meta_json": t.meta}


def project_calls(config: RunConfig, suite: Suite, n_train: int, n_test: int) -> dict[str, int]:
    """Upper-bound estimate of LLM calls per role, before any cache hit."""
    per_task = int(getattr(suite, "calls_per_task", 1))
    n, e = config.subsets, config.epochs
    steps = n * e
    explores = 2 * (e + 1) * n_train  # best + candidate per step
    merges = 0 if config.method != "fgo" else max(0, n - 1)
    backtests = 0
    if config.method == "fgo" and n > 1:
        depth = max(1, math.ceil(math.log2(max(2, math.log2(n) + 1))))
        backtests = (depth + 1) * n_train
    elif config.method == "no-merge":
        merges, backtests = 1, n_train
    if config.method == "vanilla":
        return {"agent": n_test * per_task, "evaluator": 0, "optimizer": 0, "merger": 0}
    return {
        "agent": (explores + backtests + (n_test if config.evaluate_test else 0)) * per_task,
        "evaluator": steps * max(1, n_train // max(1, n)),
        "optimizer": steps * 3,
        "merger": merges * 3,
    }


class Session:
    def __init__(self, store: Any, config: RunConfig, *, suite: Suite | None = None,
                 sinks: list[Callable[[ev.Event], None]] | None = None, gate: ReviewGate | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.store = store
        self.config = config
        self.suite = suite or build_suite(config)
        self.bus = ev.EventBus(sinks)
        self.gate = gate or gate_for_policy(config.review)
        self.control = Control()
        self._sleep = sleep
        self.gateway = Gateway(
            config.roles, store=store, use_cache=config.cache, retries=config.retries, sleep=sleep,
            budget=Budget(config.budget_tokens, config.budget_cost, dict(config.role_budgets)),
            listener=self._on_call, rng=random.Random(config.seed),
        )
        self._running = threading.Lock()

    # -- construction -----------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: RunConfig, *, name: str | None = None, **kw: Any) -> Session:
        from fgo_engine.store import Store

        config.validate()
        suite = build_suite(config)  # validates suite options and task files before any file is written
        train, test = suite.train_tasks(), suite.test_tasks()
        if not train:
            raise ConfigError(f"suite {config.suite!r} has no training tasks")
        store = Store.create(path, name=name or Path(path).stem, config=config.to_dict())
        store.update("session", 1, {"suite": config.suite})
        rows = [_task_row(t, "train") for t in train]
        train_ids = {t.id for t in train}
        rows += [_task_row(t, "test") for t in test if t.id not in train_ids]
        store.insert_many("tasks", rows, replace=True)
        store.flush()
        return cls(store, config, suite=suite, **kw)

    @classmethod
    def open(cls, path: str | Path, *, config_overrides: dict[str, Any] | None = None, **kw: Any) -> Session:
        from fgo_engine.store import Store

        store = Store.open(path)
        try:
            info = store.session_info()
            data = dict(info["config_json"] or {})
            data.update(config_overrides or {})
            config = RunConfig.from_dict(data)
        except FGOError:
            store.close()
            raise
        except Exception as exc:
            store.close()
            raise SessionError(f"{path}: session configuration is unreadable: {exc}") from None
        if config_overrides:
            store.update("session", 1, {"config_json": config.to_dict()})
        return cls(store, config, **kw)

    def close(self) -> None:
        self.store.close()

    # -- control ----------------------------------------------------------------------
    def pause(self) -> None:
        self.control.pause()
        self.store.set_status("paused")
        self.bus.emit(ev.RunStatus("paused"))

    def resume(self) -> None:
        self.control.resume()
        self.store.set_status("running")
        self.bus.emit(ev.RunStatus("running"))

    def cancel(self) -> None:
        self.control.cancel()
        cancel = getattr(self.gate, "cancel", None)
        if cancel:
            cancel()

    # -- data -------------------------------------------------------------------------
    def tasks(self, split: str) -> list[Task]:
        rows = self.store.rows("tasks", "split = ?", (split,), order_by="rowid")
        if split == "test" and not rows:
            return self.tasks("train")
        return [Task(r["id"], r["input"], r["expected"], r["category"] or "default", r["meta_json"] or {})
                for r in rows]

    def _on_call(self, e: LedgerEntry) -> None:
        self.bus.emit(ev.TokensUsed(e.role, e.scope.kind, e.scope.id, e.scope.phase, e.prompt_tokens,
                                    e.completion_tokens, e.cache_hit, self.gateway.total.tokens, e.error))

    # -- run --------------------------------------------------------------------------
    def run(self) -> RunResult:
        if not self._running.acquire(blocking=False):
            raise SessionError("this session is already running")
        start = time.perf_counter()
        train, test = self.tasks("train"), self.tasks("test")
        cfg = self.config
        engine = Engine(cfg, self.suite, self.store, self.gateway, self.bus, self.gate, self.control,
                        {t.id: t for t in train + test})
        result = RunResult(method=cfg.method, status="running")
        self.store.set_status("running")
        self.bus.emit(ev.RunStarted(cfg.method, cfg.subsets, len(train), len(test),
                                    project_calls(cfg, self.suite, len(train), len(test))))
        self.bus.emit(ev.RunStatus("running"))
        try:
            final, final_id, train_score, steps = self._run_method(engine, train)
            result.final_module, result.final_module_id, result.train_score = final, final_id, train_score
            result.optimizer_steps = steps
            if cfg.evaluate_test and test:
                result.test_score, result.test_by_category = engine.test(final, final_id, test)
            result.status = "done"
            self.store.update("session", 1, {"best_score": train_score, "final_module_id": final_id,
                                             "error": None, "updated_at": now()})
        except BudgetExceededError as exc:
            result.status, result.message = "budget", f"{exc}; resume with a larger budget to continue"
        except CancelledError as exc:
            result.status, result.message = "cancelled", str(exc)
        except FGOError as exc:
            result.status, result.message = "failed", str(exc)
        except Exception as exc:  # keep the session consistent and say what happened
            result.status, result.message = "failed", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            engine.close()
            result.overflowed = engine.overflowed
            result.wall_seconds = time.perf_counter() - start
            t = self.gateway.total
            result.prompt_tokens, result.completion_tokens, result.cost = t.prompt_tokens, t.completion_tokens, t.cost
            result.calls, result.cache_hits = t.calls, t.cache_hits
            snap = self.gateway.totals_snapshot()
            result.by_phase = {k: {"prompt_tokens": v["prompt_tokens"], "completion_tokens": v["completion_tokens"]}
                               for k, v in snap["by_phase"].items()}
            result.by_role = {k: {"prompt_tokens": v["prompt_tokens"], "completion_tokens": v["completion_tokens"]}
                              for k, v in snap["by_role"].items()}
            self.store.set_status(result.status)
            if result.status != "done":
                self.store.update("session", 1, {"error": result.message, "updated_at": now()})
            self.store.insert("events", {"ts": now(), "kind": "RunFinished", "payload_json": {
                "status": result.status, "message": result.message, "train_score": result.train_score,
                "test_score": result.test_score}})
            try:
                self.store.flush()
            finally:
                self._running.release()
            self.bus.emit(ev.RunFinished(result.status, result.train_score, result.test_score,
                                         result.final_module_id, result.message))
        return result

    def _run_method(self, engine: Engine, train: list[Task]) -> tuple[Module, str, float, int]:
        cfg = self.config
        start = self.suite.initial_module()
        start_id = engine.save_module("initial", start, origin="initial")
        rng = random.Random(cfg.seed)
        if cfg.method == "vanilla":
            return start, start_id, 0.0, 0
        if cfg.method in ("fgo", "no-merge"):
            items = self._optimize_subsets(engine, train, start, start_id)
            root = engine.progressive_merge(items) if cfg.method == "fgo" else (
                items[0] if len(items) == 1 else engine.merge_all_at_once(items))
            return root.module, root.module_id, root.score, cfg.subsets * cfg.epochs
        steps = cfg.subsets * cfg.epochs  # the same optimizer-step budget as FGO
        if cfg.method == "all-at-once":
            batches = [train] * steps
        elif cfg.method == "batch-wise":
            size = math.ceil(len(train) / cfg.subsets)
            order = list(train)
            batches = []
            for _ in range(cfg.epochs):
                batches += [order[i:i + size] for i in range(0, len(order), size)]
            batches = batches[:steps]
        elif cfg.method == "bootstrapping":
            size = math.ceil(len(train) / cfg.subsets)
            batches = [[rng.choice(train) for _ in range(size)] for _ in range(steps)]
            batches = [list({t.id: t for t in b}.values()) for b in batches]
        else:
            raise ConfigError(f"unknown method {cfg.method!r}")
        res = engine.optimize_loop(start, start_id, batches, scope_kind="baseline", scope_id="0", subset_id=None,
                                   label=cfg.method)
        trajs_score = res.best_score
        return res.best, res.best_id, trajs_score, res.steps

    def _optimize_subsets(self, engine: Engine, train: list[Task], start: Module, start_id: str) -> list[Item]:
        cfg = self.config
        existing = {r["id"]: r for r in self.store.rows("subsets")}
        groups = partition(train, cfg.subsets, cfg.partition, cfg.seed)
        rows = []
        for i, g in enumerate(groups):
            if i not in existing:
                rows.append({"id": i, "name": _subset_name(g, i), "task_ids_json": [t.id for t in g],
                             "status": "pending", "best_module_id": None, "best_score": None})
        if rows:
            self.store.insert_many("subsets", rows, replace=True)
        results: dict[int, Item] = {}
        errors: list[str] = []

        def work(i: int, group: list[Task]) -> Item:
            row = existing.get(i)
            cats = tuple(sorted({t.category for t in group}))
            self.bus.emit(ev.SubsetStarted(i, _subset_name(group, i), len(group), cats))
            if row and row["status"] == "done" and row["best_module_id"]:
                m = self.store.get("modules", row["best_module_id"])
                item = Item(f"s{i}", Module(m["kind"], m["text"]), row["best_module_id"], row["best_score"],
                            [t.id for t in group], subset_ids=[i])
                self.bus.emit(ev.SubsetDone(i, item.score, item.module_id))
                return item
            self.store.update("subsets", i, {"status": "running"})
            res = engine.optimize_loop(start, start_id, [group] * cfg.epochs, scope_kind="subset",
                                       scope_id=str(i), subset_id=i, label=f"s{i}")
            self.store.update("subsets", i, {"status": "done", "best_module_id": res.best_id,
                                             "best_score": res.best_score})
            self.store.update("modules", res.best_id, {"adopted": 1})
            self.bus.emit(ev.SubsetDone(i, res.best_score, res.best_id))
            return Item(f"s{i}", res.best, res.best_id, res.best_score, [t.id for t in group], subset_ids=[i])

        with ThreadPoolExecutor(max_workers=min(cfg.workers, len(groups)), thread_name_prefix="fgo-subset") as pool:
            futures = {pool.submit(work, i, g): i for i, g in enumerate(groups)}
            for fut, i in futures.items():
                try:
                    results[i] = fut.result()
                except (BudgetExceededError, CancelledError) as exc:
                    self.control.stop(exc)
                    errors.append(("stop", exc))
                except FGOError as exc:
                    self.store.update("subsets", i, {"status": "failed"})
                    self.bus.emit(ev.SubsetDone(i, 0.0, "", error=str(exc)))
                    errors.append(("fail", SessionError(f"subset {i} failed: {exc}")))
        stops = [e for k, e in errors if k == "stop"]
        if stops:
            raise stops[0]
        if errors:
            raise SessionError(f"{errors[0][1]} (other subsets' work is saved; resume to retry)")
        return [results[i] for i in sorted(results)]


def _subset_name(group: list[Task], i: int) -> str:
    cats = sorted({t.category for t in group})
    label = ",".join(cats[:3]) + ("…" if len(cats) > 3 else "")
    return f"subset {i} ({label})"
