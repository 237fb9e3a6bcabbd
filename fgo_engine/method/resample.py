"""Asking a role again when its reply is unusable — with a request that differs.

A retry that repeats the first request at temperature 0 gets the same reply back (seen
with real models: identical evaluator and optimizer samples, paid for again). So sample
k > 0 says in the prompt why the previous reply could not be used and raises the
temperature. The sample index stays part of the cache key (the gateway's), so a resumed
run replays every sample exactly. Every unusable reply is recorded as a
``RejectedOutput`` row in the session's ``events`` table, with its reason.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from fgo_engine import events as ev
from fgo_engine import redaction
from fgo_engine.method import prompts
from fgo_engine.method.runtime import Runtime
from fgo_engine.persistence import writes
from fgo_engine.types import Completion, Scope

log = logging.getLogger("fgo.method")

TEMPERATURE_STEP = 0.4  # added per retry sample, up to 1.0 (never below the role's own temperature)
EXCERPT_CHARS = 300


def retry_temperature(base: float, sample: int) -> float:
    if sample == 0:
        return base
    return max(base, min(1.0, base + TEMPERATURE_STEP * sample))


def ask(rt: Runtime, role: str, messages: list[dict[str, str]], *, scope: Scope, samples: int, note_kind: str,
        judge: Callable[[Completion], str | None],
        final: Callable[[str], bool] = lambda reason: False, whole: bool = False) -> tuple[Completion, str | None]:
    """Up to ``samples`` calls until ``judge`` finds no problem with the reply (or the
    problem is ``final``: not worth another sample). Returns the last reply and its
    problem (None: usable). ``whole``: a reply that reached ``max_tokens`` was cut off, so
    nothing in it is used, even a block that happens to be closed (a module is adopted only
    from a reply the model finished)."""
    rc = rt.gw.roles[role]
    problem: str | None = None
    comp: Completion | None = None
    for sample in range(samples):
        rt.control.checkpoint()
        msgs = messages if problem is None else prompts.with_retry_note(messages, problem, note_kind)
        comp = rt.gw.complete(role, msgs, scope=scope, sample=sample,
                              temperature=retry_temperature(rc.temperature, sample))
        problem = judge(comp)
        # cut off: the provider says so ("length": max_tokens or a full context), or the cap was reached
        cut = comp.finish_reason == "length" or bool(rc.max_tokens and comp.completion_tokens >= rc.max_tokens)
        if problem is None and not (whole and cut):
            return comp, None
        if problem is None:
            problem = f"cut off: the reply reached max_tokens ({rc.max_tokens}) or the context; keep it shorter"
        elif cut:
            problem += f"; the reply reached max_tokens ({rc.max_tokens}): keep it shorter"
        record_rejected(rt, role, scope, problem, comp.text, sample)
        if final(problem):
            break
    assert comp is not None
    return comp, problem


def proposal_problem(rt: Runtime, kind: str, reply: str, current: str | None) -> str | None:
    """Why an optimizer or merger reply gives no usable module (None: it does). ``current``
    is the module the optimizer was asked to improve: repeating it is not a proposal."""
    text = prompts.extract_module(kind, reply)
    return prompts.module_problem(kind, reply, text, current) or rt.module_problem(kind, text or "")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    return redaction.clip(text.strip(), limit, keep="both", mark=" … ")


def record_rejected(rt: Runtime, role: str, scope: Scope, reason: str, text: str, sample: int) -> None:
    """A warning on the bus and in the log, and a row in ``events`` (once per reply, so a
    replay through the cache does not add it again)."""
    where = f"{scope.kind} {scope.id}".strip()
    rt.bus.emit(ev.Log("warning", f"rejected {role} reply ({where}, sample {sample}): {reason}"))
    log.warning("rejected %s reply (%s, %s, sample %d): %s", role, where, scope.phase, sample, reason)
    ref = hashlib.sha256(f"{role}|{scope}|{sample}|{text}".encode()).hexdigest()[:16]
    payload = {"role": role, "scope_kind": scope.kind, "scope_id": scope.id, "phase": scope.phase,
               "sample": sample, "reason": reason, "excerpt": excerpt(text), "ref": ref}
    writes.rejected_reply(rt.store, payload)
