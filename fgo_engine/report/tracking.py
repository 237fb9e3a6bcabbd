"""Experiment tracking: a run's configuration, scores, tokens and modules sent to MLflow.

``track = "mlflow"`` (``--track mlflow``, ``optimize(track="mlflow")``) logs to
``MLFLOW_TRACKING_URI``, else to a local ``mlruns/`` folder (MLflow's file store), in the
experiment ``MLFLOW_EXPERIMENT_NAME`` (default ``fgo-studio``):

- params: the run's settings (method, N, E, t, clustering, partition, review, seed, models...);
- metrics: each subset's epoch scores (``subset.<i>.epoch_score``, step = epoch), each merge
  node's backtest score (``node.<id>.backtest_score``, ``node.<id>.score_before``), the train
  and test scores, and at the end tokens (spent, cached, per role), calls and cost;
- artifacts: ``final_module.txt``, every merged module (``merged/<node>.txt``), the merge tree
  (``merge_tree.json``) and the session's export (``session.json``).

The tracker is an event sink (observational: a failing tracker is logged, the run goes on).
The MLflow run id is kept in the session, so a resumed session goes on logging to the same run.
MLflow is an optional extra (``pip install 'fgo-studio[track]'``); it is imported only here.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgo_engine import events as ev
from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.persistence import queries, writes

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store

TRACKERS = ("mlflow",)
RUN_ID_KEY = "mlflow_run_id"
DEFAULT_EXPERIMENT = "fgo-studio"
_log = logging.getLogger("fgo.tracking")


def check_available(config: RunConfig) -> None:
    """A one-line :class:`ConfigError` when tracking is asked for and its package is missing."""
    if config.track == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("--track mlflow needs MLflow: pip install 'fgo-studio[track]' (or mlflow-skinny)")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else a local ``mlruns/`` folder (MLflow's file store)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 keeps the file store but asks for this opt-in; it is what a local folder means
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def params_of(config: RunConfig) -> dict[str, str]:
    out: dict[str, Any] = {k: getattr(config, k) for k in (
        "suite", "method", "subsets", "epochs", "threshold", "cluster", "partition", "seed", "review", "backtest",
        "workers", "budget_tokens", "budget_cost", "prompt_budget")}
    for role, rc in config.roles.items():
        out[f"model.{role}"] = rc.model
    out["starting_module"] = "yours" if (config.instruction or config.toolbox) else "the suite's"
    return {k: "" if v is None else str(v)[:500] for k, v in out.items()}


class MlflowTracker:
    """An event sink logging one session's run to MLflow; :meth:`finish` logs the artifacts."""

    def __init__(self, store: Store, config: RunConfig, *, client: Any = None):
        from mlflow.tracking import MlflowClient

        self.store = store
        self.config = config
        self.client = client or MlflowClient(tracking_uri=tracking_uri())
        self._lock = threading.Lock()
        run_id = store.meta_get(RUN_ID_KEY)
        if run_id:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
            found = self.client.get_experiment_by_name(name)
            experiment = found.experiment_id if found is not None else self.client.create_experiment(name)
            run = self.client.create_run(experiment, run_name=Path(store.path).stem,
                                         tags={"fgo.session": str(Path(store.path).resolve()),
                                               "fgo.suite": config.suite})
            self.run_id = run.info.run_id
            writes.meta_value(store, RUN_ID_KEY, self.run_id)
            for key, value in params_of(config).items():
                self.client.log_param(self.run_id, key, value)

    def _metric(self, key: str, value: float | None, step: int = 0) -> None:
        if value is None:
            return
        with self._lock:
            self.client.log_metric(self.run_id, key, float(value), step=step)

    def __call__(self, e: ev.Event) -> None:
        if isinstance(e, ev.EpochDone):
            self._metric(f"subset.{e.subset_id}.epoch_score", e.score, e.epoch)
            self._metric(f"subset.{e.subset_id}.best_score", e.best_score, e.epoch)
        elif isinstance(e, ev.SubsetDone) and not e.error:
            self._metric(f"subset.{e.subset_id}.final_score", e.best_score)
        elif isinstance(e, ev.MergeNodeUpdated) and e.status == "done":
            self._metric(f"node.{e.node_id}.backtest_score", e.score_after)
            self._metric(f"node.{e.node_id}.score_before", e.score_before)
        elif isinstance(e, ev.RunFinished):
            self._metric("train_score", e.train_score)
            self._metric("test_score", e.test_score)

    def finish(self, result: Any) -> None:
        """Tokens, calls and cost as metrics; the modules and the merge tree as artifacts; the run ended."""
        from fgo_engine.report.export import session_report, to_json

        for key in ("prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cached_completion_tokens",
                    "calls", "cache_hits", "cost", "wall_seconds"):
            self._metric(key, getattr(result, key, None))
        for role, totals in (result.by_role or {}).items():
            self._metric(f"tokens.{role}", totals["prompt_tokens"] + totals["completion_tokens"])
        report = session_report(self.store)
        if report["final_module"]:
            suffix = "py" if report["final_module"]["kind"] == "toolbox" else "txt"
            self.client.log_text(self.run_id, report["final_module"]["text"], f"final_module.{suffix}")
        for node in report["merge_tree"]:
            row = queries.module(self.store, node["module_id"])
            if row is not None:
                self.client.log_text(self.run_id, row["text"], f"merged/{node['id']}.txt")
        self.client.log_dict(self.run_id, report["merge_tree"], "merge_tree.json")
        self.client.log_text(self.run_id, to_json(report), "session.json")
        status = {"done": "FINISHED", "cancelled": "KILLED"}.get(result.status, "FAILED")
        if result.status in ("budget", "paused"):
            status = "SCHEDULED"  # stopped, to be resumed: not an end
        self.client.set_terminated(self.run_id, status=status)


def make_tracker(store: Store, config: RunConfig) -> MlflowTracker | None:
    if config.track is None:
        return None
    check_available(config)
    try:
        return MlflowTracker(store, config)
    except Exception as exc:  # noqa: BLE001 - an unreachable server, a bad URI: one line, the session kept
        first = " ".join(str(exc).split())[:300]
        raise ConfigError(f"--track mlflow: cannot start an MLflow run at {tracking_uri()}: "
                          f"{type(exc).__name__}: {first}") from exc
