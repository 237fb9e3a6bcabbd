"""The Ray executor: rollouts on a Ray cluster, one writer on the driver.

Design (the simplest that keeps the session file the single source of truth):

* A rollout (one task under one module) is a Ray task. It builds the suite on its worker
  and runs the agent there: the environment steps, the sandboxed tool processes — the
  work that costs CPU.
* Every agent LLM call of a rollout goes back to the driver through a small relay actor
  pinned to the driver's node. The driver serves it with the run's one ``Gateway``: pause
  and cancel checkpoint, budgets, fair model slots, single flight, the response cache
  lookup and the ledger + cache commit — exactly as for the thread executor. The worker
  gets the answer only after it is committed, so killing a worker (or the driver) at any
  moment repeats no paid call on resume or on retry: the retry replays the committed
  calls from the cache.
* Trajectories come back as the task's result and are written by the driver's store
  writer, as today. Events are emitted on the driver. Workers write nothing.
* Secrets: LLM calls are made by the driver, so workers need no key for them; credential
  variables the roles name are still given to the Ray job through its runtime env
  (``env_vars``) for suite environments that need them and for worker-side redaction.
  Never through task arguments, the object store or the session file.
* A worker lost mid-rollout: Ray retries the task (``max_retries``, elsewhere if its node
  is gone); past that the rollout fails with one clear error and the run can be resumed.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fgo_engine import _env, redaction
from fgo_engine.config import RunConfig
from fgo_engine.errors import CancelledError, ConfigError, FGOError, LLMError
from fgo_engine.method.executor import RolloutHost, SubsetThreads
from fgo_engine.redaction import is_secret_name
from fgo_engine.types import is_simulated

if TYPE_CHECKING:
    from fgo_engine.types import Module, Scope, Task, Trajectory

log = logging.getLogger("fgo.ray")

ROLLOUT_RETRIES = 2  # a rollout whose worker died is run again at most this many times
POLL_S = 0.5  # how often a waiting rollout looks at cancel; bounds how long a cancel takes
INSTALL_HINT = "--executor ray needs Ray: install the extra with  pip install 'fgo-studio[ray]'"


def import_ray(*, local: bool) -> Any:
    """``ray``, or a one-line ConfigError. A local instance binds to loopback only: Ray
    otherwise advertises the machine's address (read once, when Ray is first imported)."""
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def secret_env(config: RunConfig) -> dict[str, str]:
    """The credential variables the run's roles use, for the Ray job's runtime env: each
    role's ``api_key_env`` and the provider's own variables (``OPENAI_API_KEY`` for
    ``openai/…``). Plugins (``FGO_PLUGINS``) too, so workers know the same suites."""
    names = {rc.api_key_env for rc in config.roles.values() if rc.api_key_env}
    providers = {rc.model.split("/", 1)[0].upper().replace("-", "_") + "_" for rc in config.roles.values()
                 if "/" in rc.model and not is_simulated(rc.model)}
    for name in os.environ:
        if is_secret_name(name) and any(name.startswith(p) for p in providers):
            names.add(name)
    env = {n: os.environ[n] for n in sorted(names) if os.environ.get(n)}
    if os.environ.get(_env.PLUGINS):
        env[_env.PLUGINS] = os.environ[_env.PLUGINS]
    return env


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to ``host:port`` (``ray://`` or a GCS address) before Ray is asked, so an
    unreachable cluster is one clear line, not a minute of retries."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"ray_address {address!r}: write host:port, ray://host:port or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {reason}") from None


class RayExecutor(SubsetThreads):
    name = "ray"

    def __init__(self, config: RunConfig, *, num_cpus: int | None = None):
        self.config = config
        self.address = config.ray_address
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.ray: Any = None
        self.relay: Any = None
        self.on_request: Any = None  # called with each relayed agent call's request (tests kill workers here)
        self._spec: tuple[Any, dict[str, Any]] | None = None  # (config, its secret-free dict): a worker's suite
        self._owns_ray = False
        self._task_env: dict[str, Any] | None = None
        self._rt: RolloutHost | None = None
        self._placement: dict[tuple[str, str], str] = {}
        self._labels: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._pump: threading.Thread | None = None
        self._serve_pool: ThreadPoolExecutor | None = None

    # -- connect ----------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self.relay is not None:
                return
            ray = self.ray = import_ray(local=self.address is None)
            env = {"env_vars": secret_env(self.config)}
            if self.address is not None:
                check_reachable(self.address)  # even when our caller connected Ray already
            if not ray.is_initialized():
                try:
                    if self.address is None:
                        ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False,
                                 log_to_driver=False, logging_level=logging.ERROR, runtime_env=env)
                    else:
                        ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR,
                                 runtime_env=env)
                except FGOError:
                    raise
                except Exception as exc:  # ConnectionError, a version mismatch, a refused token…
                    where = self.address or "a local instance"
                    why = redaction.clip(" ".join(str(exc).split()), 300)
                    raise ConfigError(f"cannot start Ray ({where}): {why}") from None
                self._owns_ray = True
            else:
                self._task_env = env  # Ray started by our caller: the env goes with each task
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            from fgo_engine.run.executors.ray_worker import Relay

            here = ray.get_runtime_context().get_node_id()
            strategy = NodeAffinitySchedulingStrategy(here, soft=False)
            self.relay = Relay.options(scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]
            ray.get(self.relay.ping.remote())  # up before the first rollout
            workers = max(4, 2 * self.config.task_workers + 4)
            self._serve_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fgo-relay")
            self._closing.clear()
            self._pump = threading.Thread(target=self._pump_loop, name="fgo-relay-pump", daemon=True)
            self._pump.start()

    def close(self) -> None:
        with self._lock:
            if self.relay is None:
                return
            self._closing.set()
            if self._pump is not None:
                self._pump.join()
            if self._serve_pool is not None:
                self._serve_pool.shutdown(wait=True, cancel_futures=True)
            try:
                self.ray.kill(self.relay)
            except Exception:  # noqa: BLE001 - already gone with its cluster
                log.debug("relay already gone", exc_info=True)
            self.relay = None
            if self._owns_ray:
                self.ray.shutdown()
                self._owns_ray = False

    # -- placement --------------------------------------------------------------------
    def nodes(self) -> list[tuple[str, str]]:
        """(node id, label) of the alive nodes that run rollouts, in a fixed order."""
        out = []
        for n in self.ray.nodes():
            if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0:
                out.append((n["NodeID"], f"{n.get('NodeManagerAddress', '?')} ({n['NodeID'][:8]})"))
        return sorted(out)

    def place(self, subset_id: int) -> str:
        """Subset i's rollouts prefer node i mod n (soft: another node if that one is gone)."""
        nodes = self.nodes()
        if not nodes:
            return ""
        node_id, label = nodes[subset_id % len(nodes)]
        with self._lock:
            self._placement[("subset", str(subset_id))] = node_id
            self._labels[node_id] = label
        return label

    # -- rollouts ---------------------------------------------------------------------
    def rollout(self, rt: RolloutHost, task: Task, module: Module, scope: Scope) -> Trajectory:
        from fgo_engine.run.executors.ray_worker import raise_answer, rollout_task

        ray = self.ray
        self._rt = rt
        opts: dict[str, Any] = {"max_retries": ROLLOUT_RETRIES, "retry_exceptions": False}
        node = self._placement.get(scope.key)
        if node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        if self._task_env is not None:
            opts["runtime_env"] = self._task_env
        rt.control.checkpoint()
        if self._spec is None or self._spec[0] is not rt.cfg:
            self._spec = (rt.cfg, rt.cfg.to_dict())
        ref = rollout_task.options(**opts).remote(self._spec[1], self.relay, task, module, scope)
        try:
            while not ray.wait([ref], timeout=POLL_S)[0]:
                if rt.control.cancelled:  # a cancel or a budget stop: end it now, even mid-tool
                    ray.cancel(ref, force=True)
                    rt.control.checkpoint()
                    raise CancelledError("run cancelled")
            answer = ray.get(ref)
        except FGOError:
            raise
        except ray.exceptions.TaskCancelledError:
            rt.control.checkpoint()
            raise CancelledError("run cancelled") from None
        except ray.exceptions.RayError as exc:
            rt.control.checkpoint()  # a Ctrl-C that reached the workers too: a cancel, not a failure
            first = redaction.clip(" ".join(str(exc).split()), 200)
            lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError)
            if isinstance(exc, lost):  # its worker or node died more often than we retry
                raise LLMError(f"rollout of task {task.id} was lost on Ray after {ROLLOUT_RETRIES + 1} "
                               f"tries: {first}") from None
            raise LLMError(f"rollout of task {task.id} failed on Ray: {first}") from None
        if answer[0] != "ok":
            raise_answer(answer)
        return answer[1]

    # -- the driver's side of the relay ---------------------------------------------
    def _pump_loop(self) -> None:
        assert self._serve_pool is not None
        while not self._closing.is_set():
            try:
                batch = self.ray.get(self.relay.take.remote(POLL_S))
            except Exception:  # noqa: BLE001 - the relay or the cluster is gone: rollouts fail on their own
                if not self._closing.is_set():
                    log.exception("the Ray relay stopped answering")
                return
            for rid, request in batch:
                self._serve_pool.submit(self._serve, rid, request)

    def _serve(self, rid: int, request: dict[str, Any]) -> None:
        """Answer one agent call with the driver's gateway; committed before it is sent."""
        from fgo_engine.run.executors.ray_worker import error_answer

        rt = self._rt
        try:
            if self.on_request is not None:
                self.on_request(request)
            if rt is None:
                raise LLMError("no run is using this executor")
            llm = rt.agent_llm(request["scope"], request["task_id"])
            answer: tuple = ("ok", llm(request["messages"], tools=request["tools"]))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the rollout that asked
            answer = error_answer(exc)
        try:
            self.relay.reply.remote(rid, answer)
        except Exception:  # noqa: BLE001
            log.exception("could not answer a relayed call")
