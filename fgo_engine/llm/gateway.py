"""The one place every LLM call goes through.

Role → model and parameters; a ledger of every call (tokens, cost, latency, cache hit,
error) with totals per role, scope and session; retries with exponential backoff and
jitter; a per-model concurrency limit; a persistent response cache in the session's
SQLite file; a context-window check before the call; token and cost budgets.
litellm is imported lazily, on the first call.
"""
from __future__ import annotations

import dataclasses
import datetime
import email.utils
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fgo_engine import redaction
from fgo_engine.config import RoleConfig
from fgo_engine.errors import BudgetExceededError, CancelledError, ContextOverflowError, LLMError
from fgo_engine.llm import tokens
from fgo_engine.llm.scheduling import FairSlots
from fgo_engine.llm.sim import faults as sim_faults
from fgo_engine.llm.sim.faults import Faults
from fgo_engine.persistence import writes
from fgo_engine.timeutil import now
from fgo_engine.types import Budget, Completion, LedgerEntry, Scope, Totals, is_simulated

log = logging.getLogger("fgo.llm.gateway")
_litellm_lock = threading.Lock()
_litellm_mod = None


def get_litellm():
    """Import litellm once, quietly, with the simulated provider registered."""
    global _litellm_mod
    if _litellm_mod is not None:
        return _litellm_mod
    with _litellm_lock:
        if _litellm_mod is None:
            from fgo_engine.heap import quiet_gc

            with quiet_gc():  # ~330,000 objects: see fgo_engine.heap
                import litellm

                from fgo_engine import _env  # noqa: F401  (the package's import applies the environment defaults)
                from fgo_engine.llm.sim.provider import SimLLM

            litellm.suppress_debug_info = True
            litellm.drop_params = True
            litellm.telemetry = False
            existing = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != "fgo-sim"]
            litellm.custom_provider_map = existing + [{"provider": "fgo-sim", "custom_handler": SimLLM()}]
            _litellm_mod = litellm
    return _litellm_mod


_NO_SCOPE = Scope()


class Gateway:
    def __init__(
        self,
        roles: dict[str, RoleConfig],
        *,
        store: Any = None,
        use_cache: bool = True,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        budget: Budget | None = None,
        listener: Callable[[LedgerEntry], None] | None = None,
        rng: random.Random | None = None,
        queue_listener: Callable[[str, str, str, bool, int, int], None] | None = None,
        before_call: Callable[[], None] | None = None,
    ):
        self.roles = roles
        # the run's checkpoint (pause, cancel), asked before a call queues and again when it has its slot,
        # so that a call waiting for a slot when cancel is asked never starts
        self.before_call = before_call
        self._abandon = threading.Event()  # set by abandon(): requests under way are given up, not awaited
        self.faults = Faults()  # what the simulated LLM fails with on this gateway's calls (tests)
        self._in_flight = 0
        for rc in roles.values():
            redaction.register_role(rc)
        self.store = store
        self.use_cache = use_cache
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.budget = budget or Budget()
        self.listener = listener
        self._rng = rng or random.Random(0)
        self._lock = threading.Lock()
        self._mem_cache: dict[str, dict] = {}  # the cache of a gateway without a session only
        self._inflight: dict[str, threading.Event] = {}
        self._slots: dict[str, FairSlots] = {}
        self.queue_listener = queue_listener
        self._windows: dict[str, int | None] = {}
        self._unpriced: set[str] = set()
        self.by_role: dict[str, Totals] = defaultdict(Totals)
        self.by_scope: dict[tuple[str, str], Totals] = defaultdict(Totals)
        self.by_phase: dict[str, Totals] = defaultdict(Totals)
        self.total = Totals()
        for rc in roles.values():
            self._slots_for(rc)
        if store is not None:
            self._load_totals()

    # -- public ---------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Calls sent and not answered yet."""
        with self._lock:
            return self._in_flight

    def abandon(self) -> None:
        """Stop waiting for the replies under way (a cancel): each raises CancelledError at once and is
        ledgered as abandoned; the request itself keeps its model slot until the server ends it."""
        self._abandon.set()

    def bind(self, role: str, scope: Scope, *, sample: int = 0):
        """An :class:`~fgo_engine.suites.base.AgentLLM` for a suite's agent loop."""

        def call(messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None) -> Completion:
            return self.complete(role, messages, scope=scope, sample=sample, tools=tools)

        return call

    def complete(
        self,
        role: str,
        messages: list[dict[str, Any]],
        *,
        scope: Scope = _NO_SCOPE,
        sample: int = 0,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """One call of ``role``. ``temperature`` overrides the role's (a retry sample that
        must differ from the first); it is part of the cache key, like ``sample``."""
        rc = self.roles[role]
        if temperature is not None and temperature != rc.temperature:
            rc = dataclasses.replace(rc, temperature=temperature)
        key = self.cache_key(rc, messages, sample, tools)
        if not self.use_cache:
            return self._complete_fresh(role, rc, messages, sample, tools, scope, key)
        # single flight: an identical request already on its way is waited for, not paid twice
        while True:
            with self._lock:
                waiting = self._inflight.get(key)
                if waiting is None:
                    self._inflight[key] = threading.Event()
            if waiting is None:
                break
            waiting.wait()
        try:
            return self._complete_cached(role, rc, messages, sample, tools, scope, key)
        finally:
            with self._lock:
                self._inflight.pop(key).set()

    def _complete_cached(self, role, rc, messages, sample, tools, scope, key) -> Completion:
        if self.use_cache:
            hit = self._cache_lookup(key)
            if hit is not None:
                comp = Completion(
                    text=hit.get("text", ""), tool_calls=hit.get("tool_calls") or [],
                    prompt_tokens=hit.get("prompt_tokens", 0), completion_tokens=hit.get("completion_tokens", 0),
                    cost=hit.get("cost", 0.0), latency_ms=0.0, cached=True, model=rc.model,
                    finish_reason=hit.get("finish_reason"),
                )
                self._record(LedgerEntry(role, rc.model, scope, comp.prompt_tokens, comp.completion_tokens,
                                         comp.cost, 0.0, True, None, key, sample=sample))
                return comp
        return self._complete_fresh(role, rc, messages, sample, tools, scope, key)

    def _complete_fresh(self, role, rc, messages, sample, tools, scope, key) -> Completion:
        self._check_budget(role)
        window = self.window(rc.model)
        # tiktoken once per call: the provider reports the prompt's tokens; the gateway counts
        # them itself only when a cheap upper bound does not show that the prompt fits
        prompt_tokens: int | None = None
        if window is not None and tokens.upper_bound(messages, tools) > window:
            prompt_tokens = tokens.count_messages(messages, rc.model, tools)
        if window is not None and prompt_tokens is not None and prompt_tokens > window:
            msg = (f"prompt of {prompt_tokens} tokens does not fit the {window}-token context window "
                   f"of {rc.model} (role {role})")
            self._record(LedgerEntry(role, rc.model, scope, 0, 0, 0.0, 0.0, False, msg, key, sample=sample))
            raise ContextOverflowError(msg, prompt_tokens=prompt_tokens, window=window)
        return self._call_with_retries(role, rc, messages, sample, tools, scope, key, prompt_tokens)

    def window(self, model: str) -> int | None:
        if model not in self._windows:
            if is_simulated(model):
                from fgo_engine.llm.sim.profiles import parse_model

                self._windows[model] = parse_model(model).window
            else:
                try:
                    info = get_litellm().get_model_info(model)
                    self._windows[model] = info.get("max_input_tokens") or info.get("max_tokens")
                except Exception:
                    self._windows[model] = None
        return self._windows[model]

    def _cost(self, litellm, model: str, resp: Any) -> float:
        """The call's price. litellm's wrapper has already priced the reply (its hidden
        ``response_cost``); pricing it again costs a model-info lookup per call. A model
        litellm cannot price is remembered, so its lookup fails once, not on every call."""
        priced = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
        if priced is not None:
            return float(priced)
        if model in self._unpriced:
            return 0.0
        try:
            return float(litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:
            self._unpriced.add(model)
            return 0.0

    def totals_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": vars(self.total).copy(),
                "by_role": {k: vars(v).copy() for k, v in self.by_role.items()},
                "by_phase": {k: vars(v).copy() for k, v in self.by_phase.items()},
                "by_scope": {f"{k[0]}:{k[1]}": vars(v).copy() for k, v in self.by_scope.items()},
            }

    @staticmethod
    def cache_key(rc: RoleConfig, messages: list[dict[str, Any]], sample: int, tools: list | None) -> str:
        params = {k: v for k, v in rc.params.items() if not redaction.is_secret_name(k)}  # the one rule
        blob = json.dumps(
            {"model": rc.model, "messages": messages, "temperature": rc.temperature,
             "max_tokens": rc.max_tokens, "tools": tools, "sample": sample, "params": params,
             "api_base": rc.api_base},
            sort_keys=True, ensure_ascii=False, default=str,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # -- internals ------------------------------------------------------------------
    def _slots_for(self, rc: RoleConfig) -> FairSlots:
        """One set of slots per model (the first role naming it sets its size and rule)."""
        with self._lock:
            slots = self._slots.get(rc.model)
            if slots is None:
                model = rc.model

                def on_queue(key, queued: bool, busy: int, capacity: int) -> None:
                    if self.queue_listener is not None:
                        self.queue_listener(key[0], key[1], model, queued, busy, capacity)

                slots = self._slots[rc.model] = FairSlots(rc.max_concurrency, fair=rc.scheduling == "fair",
                                                          on_queue=on_queue)
            return slots

    def _load_totals(self) -> None:
        """A resumed session continues the totals (and budgets) where its ledger stands."""
        from fgo_engine.persistence.queries import ledger_totals  # the query layer imports Totals from here

        led = ledger_totals(self.store)
        self.total, self.by_role, self.by_scope, self.by_phase = led.total, led.by_role, led.by_scope, led.by_phase

    def _cache_lookup(self, key: str) -> dict | None:
        """The session's response cache (which shows an answer from the moment it is queued);
        a gateway without a session keeps its answers in memory."""
        if self.store is not None:
            return self.store.cache_get(key)
        with self._lock:
            return self._mem_cache.get(key)

    def _check_budget(self, role: str) -> None:
        b = self.budget
        with self._lock:
            if b.total_tokens is not None and self.total.tokens >= b.total_tokens:
                raise BudgetExceededError(
                    f"token budget reached: {self.total.tokens:,} of {b.total_tokens:,} tokens spent")
            if b.cost is not None and self.total.cost >= b.cost:
                raise BudgetExceededError(f"cost budget reached: ${self.total.cost:.4f} of ${b.cost:.4f}")
            lim = b.per_role.get(role)
            if lim is not None and self.by_role[role].tokens >= lim:
                raise BudgetExceededError(
                    f"{role} token budget reached: {self.by_role[role].tokens:,} of {lim:,} tokens")

    def _record(self, e: LedgerEntry, response: dict | None = None) -> None:
        """Ledger the call. A fresh answer is committed together with its cache row before
        it is returned, so a call whose answer was used is never paid for twice, even if
        the process is killed right after."""
        e.ts = now()
        e.ended_at = time.time()
        if e.started_at is None:
            e.started_at = e.ended_at - e.latency_ms / 1000.0
        if e.error:
            e.error = redaction.scrub(e.error)  # the roles' keys are registered (register_role)
        with self._lock:
            for agg in (self.total, self.by_role[e.role], self.by_scope[(e.scope.kind, e.scope.id)],
                        self.by_phase[e.scope.phase]):
                agg.add(e)
            if response is not None and self.store is None:
                self._mem_cache[e.cache_key] = response
        if self.store is not None:
            if response is None:
                writes.ledger_entry(self.store, e)
            else:
                writes.llm_call(self.store, e, response)
        if self.listener is not None:
            self.listener(e)

    def _call_with_retries(self, role, rc: RoleConfig, messages, sample, tools, scope, key, prompt_tokens):
        litellm = get_litellm()
        retryable = (litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError,
                     litellm.InternalServerError, litellm.ServiceUnavailableError, MalformedReply)
        kwargs = _request(role, rc, messages, sample, tools)
        slots = self._slots_for(rc)
        attempt = 0

        def entry(p: int, c: int, cost: float, error: str | None) -> LedgerEntry:
            return LedgerEntry(role, rc.model, scope, p, c, cost, _ms(start), False, error, key, sample=sample,
                               started_at=started_at, queue_ms=queue_ms)

        def release() -> None:
            with self._lock:
                self._in_flight -= 1
            slots.release(scope.key)

        while True:
            asked = time.perf_counter()
            if self.before_call is not None:
                self.before_call()
            slots.acquire(scope.key)
            try:
                if self.before_call is not None:  # cancel asked while this call waited for its slot
                    self.before_call()
            except BaseException:
                slots.release(scope.key)
                raise
            with self._lock:
                self._in_flight += 1
            start = time.perf_counter()
            started_at, queue_ms = time.time(), (start - asked) * 1000.0
            try:
                resp = self._send(litellm, rc, release, kwargs, self._abandon, self.faults)
                if not getattr(resp, "choices", None):
                    raise MalformedReply("the reply has no choices", getattr(resp, "usage", None))
            except CancelledError:
                self._record(entry(0, 0, 0.0, "abandoned: the run was cancelled while this call was under way"))
                raise
            except litellm.ContextWindowExceededError as exc:
                msg = f"{rc.model} rejected the prompt as too long for its context window (role {role})"
                self._record(entry(0, 0, 0.0, msg))
                if prompt_tokens is None:
                    prompt_tokens = tokens.count_messages(messages, rc.model, tools)
                raise ContextOverflowError(msg, prompt_tokens=prompt_tokens,
                                           window=self.window(rc.model) or 0) from exc
            except retryable as exc:
                self.sleep(self._retry_delay(litellm, role, rc, exc, attempt, entry))
                attempt += 1
                continue
            except Exception as exc:  # auth, bad request, unknown model: not worth retrying
                log.error("%s (%s): %s", rc.model, role, redaction.scrub(str(exc)))
                msg = redaction.scrub(_user_message(rc, role, exc, 0))
                self._record(entry(0, 0, 0.0, msg))
                raise LLMError(msg) from None
            break
        comp = self._completion(litellm, rc, resp, messages, tools, prompt_tokens, _ms(start))
        payload = {"text": comp.text, "tool_calls": comp.tool_calls, "prompt_tokens": comp.prompt_tokens,
                   "completion_tokens": comp.completion_tokens, "cost": comp.cost}
        if comp.finish_reason:
            payload["finish_reason"] = comp.finish_reason
        done = entry(comp.prompt_tokens, comp.completion_tokens, comp.cost, None)
        done.latency_ms = comp.latency_ms
        self._record(done, payload if self.use_cache or self.store else None)
        return comp

    def _retry_delay(self, litellm, role: str, rc: RoleConfig, exc: BaseException, attempt: int,
                     entry: Callable[[int, int, float, str | None], LedgerEntry]) -> float:
        """A retryable failure ledgered; how long to wait before the next try, or the
        :class:`LLMError` that ends the call (a credentials problem, no tries left)."""
        log.warning("%s (%s) try %d: %s", rc.model, role, attempt + 1, redaction.scrub(str(exc)))
        if _is_auth_problem(exc):  # litellm reports some credential problems as server errors
            msg = f"{rc.model} ({role}): credentials problem: {_short(exc)}"
            self._record(entry(0, 0, 0.0, msg))
            raise LLMError(msg) from None
        p_used, c_used = _usage_tokens(getattr(exc, "usage", None))
        self._record(entry(p_used, c_used, 0.0, f"{type(exc).__name__}: {_short(exc)}"))
        gives_up = attempt >= self.retries
        if isinstance(exc, litellm.Timeout) and not rc.retry_timeouts:
            gives_up = True  # a local server is still generating the abandoned reply
        if gives_up:
            msg = redaction.scrub(_user_message(rc, role, exc, attempt + 1))
            log.error("%s", msg)
            raise LLMError(msg) from None
        wait = _retry_after(exc)
        if wait is not None:
            return min(self.max_retry_after, wait)  # the server said when; capped by a setting
        delay = min(self.max_backoff, self.backoff * (2 ** attempt))
        return delay * (0.5 + self._rng.random())  # jitter

    def _completion(self, litellm, rc: RoleConfig, resp, messages, tools, prompt_tokens: int | None,
                    latency: float) -> Completion:
        """The reply as a :class:`Completion`; tokens the server did not report are counted here."""
        msg = resp.choices[0].message
        text = redaction.storable(msg.content or "")  # a lone surrogate would stop the run at the first write
        calls = []
        for tc in getattr(msg, "tool_calls", None) or []:
            calls.append({"id": redaction.storable(str(tc.id)), "name": redaction.storable(str(tc.function.name)),
                          "arguments": redaction.storable(tc.function.arguments or "{}")})
        usage = getattr(resp, "usage", None)
        p = getattr(usage, "prompt_tokens", None) or prompt_tokens
        if not p:
            p = tokens.count_messages(messages, rc.model, tools)
        c = getattr(usage, "completion_tokens", None)
        if c is None:
            c = tokens.count_text(text, rc.model)
        cost = 0.0 if is_simulated(rc.model) else self._cost(litellm, rc.model, resp)
        finish = getattr(resp.choices[0], "finish_reason", None)
        return Completion(text=text, tool_calls=calls, prompt_tokens=int(p), completion_tokens=int(c),
                          cost=cost, latency_ms=latency, cached=False, model=rc.model,
                          finish_reason=str(finish) if finish else None)

    @staticmethod
    def _send(litellm, rc: RoleConfig, release: Callable[[], None], kwargs: dict[str, Any],
              abandon: threading.Event | None = None, faults: Faults | None = None):
        """One request on a model slot already taken, cut at ``rc.timeout`` seconds in total.
        The HTTP client's timeout bounds each read, not the whole reply: a body trickled in
        slowly would never end. ``release`` gives the slot back when the request really ends,
        so an abandoned request keeps it (a local server is still busy with it)."""
        if is_simulated(rc.model):
            from fgo_engine.llm.sim.provider import cpu_turn

            try:
                with cpu_turn(), sim_faults.bound(faults):  # the simulator's CPU is this process's: see cpu_turn
                    return litellm.completion(**kwargs)
            finally:
                release()
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["resp"] = litellm.completion(**kwargs)
            except BaseException as exc:  # handed to the caller
                box["exc"] = exc
            finally:
                release()
                done.set()

        threading.Thread(target=work, name="fgo-llm-call", daemon=True).start()
        deadline = time.monotonic() + rc.timeout
        while not done.wait(max(0.0, min(0.1, deadline - time.monotonic()))):
            if abandon is not None and abandon.is_set():
                raise CancelledError("run cancelled: the reply under way was abandoned")
            if time.monotonic() >= deadline:
                break
        if not done.is_set():
            raise litellm.Timeout(f"no complete reply within the {rc.timeout:g} s deadline", model=rc.model,
                                  llm_provider=_provider(rc))
        if "exc" in box:
            raise box["exc"]
        return box["resp"]


class MalformedReply(Exception):
    """A reply without choices (or otherwise unusable as a completion): retried, and ledgered
    with the usage the server reported for it."""

    def __init__(self, message: str, usage: Any = None):
        super().__init__(message)
        self.usage = usage


def _usage_tokens(usage: Any) -> tuple[int, int]:
    if usage is None:
        return 0, 0
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def _provider(rc: RoleConfig) -> str:
    return rc.model.split("/", 1)[0] if "/" in rc.model else "openai"


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``: seconds or an HTTP date;
    ``retry-after-ms``), or None."""
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        if not headers:
            continue
        lower = {str(k).lower(): str(v) for k, v in dict(headers).items()}
        if "retry-after-ms" in lower:
            try:
                return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
            except ValueError:
                pass
        value = lower.get("retry-after")
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        if when is None:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
    return None


def _request(role: str, rc: RoleConfig, messages, sample: int, tools) -> dict[str, Any]:
    """litellm's arguments for one call of ``role``: its own retries off (the gateway retries)."""
    kwargs: dict[str, Any] = {"model": rc.model, "messages": messages, "timeout": rc.timeout,
                              "temperature": rc.temperature, "seed": sample, "num_retries": 0,
                              "max_retries": 0}
    if rc.max_tokens:
        kwargs["max_tokens"] = rc.max_tokens
    if tools:
        kwargs["tools"] = tools
        # Our tools are plain functions; without this litellm imports its MCP bridge,
        # which needs the optional `mcp` package.
        kwargs["_skip_mcp_handler"] = True
    if rc.api_base:
        kwargs["api_base"] = rc.api_base
    api_key = rc.api_key or (os.environ.get(rc.api_key_env) if rc.api_key_env else None)
    if rc.api_key_env and not api_key:
        raise LLMError(f"{rc.model} ({role}): the environment variable {rc.api_key_env} is not set")
    if not api_key and rc.api_base and rc.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
        api_key = "no-key"  # a local OpenAI-compatible server (llama.cpp, vLLM, Ollama) wants some key
    if api_key:
        kwargs["api_key"] = api_key
    kwargs.update(rc.params)
    return kwargs


_PREFIXES = re.compile(r"^(?:litellm\.\w+:\s*)?(?:\w+Error:\s*)?(?:\w+Exception\s*-\s*)?")


def _reason(exc: BaseException, limit: int = 160) -> str:
    """The provider's own words, without litellm's prefixes, on one short line."""
    text = _PREFIXES.sub("", redaction.scrub(" ".join(str(exc).split()))).strip() or type(exc).__name__
    return redaction.clip(text, limit)


def _is_connection_problem(exc: BaseException) -> bool:
    import litellm

    text = str(exc).lower()
    return isinstance(exc, litellm.APIConnectionError) or any(
        h in text for h in ("connection error", "connection refused", "failed to establish", "connecterror"))


def _user_message(rc: RoleConfig, role: str, exc: BaseException, tries: int) -> str:
    """One line for the user: which model and role, the provider and HTTP status, what to do.
    The full text of the error goes to the ``fgo.llm.gateway`` log."""
    import litellm

    kind = type(exc).__name__
    provider = getattr(exc, "llm_provider", None) or _provider(rc)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.Timeout):
        advice = f"no complete reply within the {rc.timeout:g} s timeout; raise roles.{role}.timeout"
        if not rc.retry_timeouts:
            advice += " (timeouts are not retried here: set retry_timeouts = true to retry them)"
        status = None
    elif _is_connection_problem(exc):
        kind = "connection error"
        advice = (f"cannot connect to {rc.api_base}; check that the server is running" if rc.api_base
                  else f"cannot reach {provider}; check the network")
        status = None
    elif isinstance(exc, litellm.RateLimitError):
        advice = "rate limited; resume later or lower max_concurrency"
    elif isinstance(exc, MalformedReply):
        advice = f"the server sent a malformed reply ({exc})"
    elif isinstance(exc, litellm.AuthenticationError):
        var = rc.api_key_env or "the provider's key variable"
        advice = f"the API key was refused; check {var}"
    elif isinstance(exc, litellm.NotFoundError):
        advice = f"check the model name ({_reason(exc)})"
    elif isinstance(exc, (litellm.InternalServerError, litellm.ServiceUnavailableError)):
        advice = f"the server failed ({_reason(exc)}); try again later with `fgo resume`"
    else:
        advice = _reason(exc)
    where = provider + (f", HTTP {status}" if status else "")
    tried = f" after {tries} tries" if tries > 1 else ""
    return f"{rc.model} ({role}): {kind}{tried} ({where}): {advice}"


_AUTH_HINTS = ("missing credentials", "incorrect api key", "invalid api key", "api_key client option",
               "no api key", "unauthorized", "authentication")


def _is_auth_problem(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(h in text for h in _AUTH_HINTS)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _short(exc: BaseException, limit: int = 300) -> str:
    return redaction.clip(" ".join(str(exc).split()), limit)
