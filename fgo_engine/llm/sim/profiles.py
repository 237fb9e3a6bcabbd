"""Profiles of the simulated LLM: one setting per mechanism, each with a null value.

A call takes ``latency + prompt_tokens / prefill_rate + completion_tokens / decode_rate``
seconds (a rate of 0 adds nothing), so long prompts cost wall time as with an API.

Reached as ``fgo-sim/<profile>`` with optional overrides after a colon:
``fgo-sim/small:latency=0.2,noise=0.1`` or ``fgo-sim/medium:latency=0.1,prefill_rate=20000,decode_rate=100``.
off (methods should then tie within noise); ``small``/``medium``/``large`` switch them
on at strengths fixed before any benchmark was run (README, "The simulated LLM").
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

from fgo_engine.errors import ConfigError
from fgo_engine.types import is_simulated

NO_WINDOW = 1_000_000  # the null window: large enough for any prompt the engine builds


@dataclass(frozen=True)
class SimProfile:
    name: str
    # (3) hard window: longer prompts raise litellm's ContextWindowExceededError
    window: int = NO_WINDOW
    # (2) lost in the middle: tokens read fully (0 = all); past this, noticing falls as attention / length
    attention: int = 0
    middle: float = 0.0  # depth of the U: an example in the middle is noticed (1 − middle) times as often
    # (1) evidence-based learning
    evidence: int = 0  # failing examples pointing at one item needed to learn it (0 = copy every critique read)
    critic_error: float = 0.0  # chance the evaluator blames the wrong item
    critic_noise: float = 0.0  # chance the evaluator gives a vague critique
    # (4) conflicting, category-scoped rules
    conflict: float = 0.0  # chance an unscoped category-specific rule misleads a task of another category
    generalize: float = 0.0  # chance a rule learned from a mixed batch is stated without its scope
    # (5) instruction capacity
    capacity: int = 0  # rules the agent follows reliably (0 = any number); past it, each is followed capacity/rules
    max_new: int = 0  # rules one optimizer call adds at most (0 = any number)
    # (6) merge loss
    merge_loss: float = 0.0  # per module beyond two in one merge call, share of rules dropped
    # (7) knowledge space
    space: int = 0  # 0 = each suite's base items; 1 = the fine-grained space (per object, per language, …)
    # not mechanisms: the agent's noise, the optimizer's drift, API latency
    noise: float = 0.03  # chance a competent agent still slips
    guess: float = 0.05  # chance an agent lacking the knowledge gets lucky
    drift: float = 0.0  # chance an optimizer rewrite drops one existing rule
    reword: float = 0.0  # chance an optimizer that learned nothing still rewrites the text (same meaning)
    latency: float = 0.0  # seconds per call (a), to emulate an API in benchmarks
    prefill_rate: float = 0.0  # prompt tokens per second; 0: reading the prompt takes no time
    decode_rate: float = 0.0  # completion tokens per second; 0: writing takes no time
    seed: int = 0


PROFILES: dict[str, SimProfile] = {
    "null": SimProfile("null"),
    "small": SimProfile("small", window=16_000, attention=3_000, middle=0.6, evidence=2, critic_error=0.15,
                        critic_noise=0.15, conflict=0.6, generalize=0.8, capacity=14, max_new=2, merge_loss=0.1,
                        space=1, noise=0.06, guess=0.08, drift=0.2, reword=1.0),
    "medium": SimProfile("medium", window=32_000, attention=8_000, middle=0.5, evidence=2, critic_error=0.1,
                         critic_noise=0.1, conflict=0.5, generalize=0.7, capacity=24, max_new=3, merge_loss=0.08,
                         space=1, noise=0.04, guess=0.06, drift=0.12, reword=1.0),
    "large": SimProfile("large", window=128_000, attention=24_000, middle=0.3, evidence=2, critic_error=0.05,
                        critic_noise=0.05, conflict=0.4, generalize=0.5, capacity=40, max_new=4, merge_loss=0.05,
                        space=1, noise=0.02, guess=0.05, drift=0.06, reword=1.0),
}
_INTS = {"window", "attention", "evidence", "capacity", "max_new", "space", "seed"}


@functools.lru_cache(maxsize=64)
def parse_model(model: str) -> SimProfile:
    """``fgo-sim/small:latency=0.2`` (with or without the provider prefix) → profile."""
    name = model.split("/", 1)[1] if is_simulated(model) else model
    name, _, overrides = name.partition(":")
    if name not in PROFILES:
        raise ConfigError(f"unknown simulated profile {name!r}; choose one of: {', '.join(PROFILES)}")
    prof = PROFILES[name]
    if not overrides:
        return prof
    types = {f.name for f in fields(SimProfile)}
    changes: dict[str, object] = {}
    for part in overrides.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in types or key == "name":
            raise ConfigError(f"unknown simulated-profile setting {key!r} in {model!r}")
        try:
            changes[key] = int(value) if key in _INTS else float(value)
        except ValueError:
            raise ConfigError(f"bad value for {key} in {model!r}: {value!r}") from None
    return replace(prof, **changes)
