"""Profiles of the simulated LLM: window, attention span, noise, latency.

A call takes ``latency + prompt_tokens / prefill_rate + completion_tokens / decode_rate``
seconds (a rate of 0 adds nothing), so long prompts cost wall time as with an API.

Reached as ``fgo-sim/<profile>`` with optional overrides after a colon:
``fgo-sim/small:latency=0.2,noise=0.1`` or ``fgo-sim/medium:latency=0.1,prefill_rate=20000,decode_rate=100``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

from fgo_engine.errors import ConfigError


@dataclass(frozen=True)
class SimProfile:
    name: str
    window: int  # context window in tokens; longer prompts raise ContextWindowExceededError
    attention: int  # prompt tokens it reads fully; past this, recall falls as attention / length
    noise: float  # chance a competent agent still slips
    guess: float  # chance an agent lacking the knowledge gets lucky
    critic_noise: float  # chance the evaluator gives a vague critique instead of naming the gap
    drift: float  # chance an optimizer rewrite drops one existing rule
    merge_loss: float  # per module beyond two in one merge call, share of rules dropped
    latency: float = 0.0  # seconds per call (a), to emulate an API in benchmarks
    prefill_rate: float = 0.0  # prompt tokens per second; 0: reading the prompt takes no time
    decode_rate: float = 0.0  # completion tokens per second; 0: writing takes no time
    seed: int = 0


PROFILES: dict[str, SimProfile] = {
    "small": SimProfile("small", window=16_000, attention=3_000, noise=0.06, guess=0.08,
                        critic_noise=0.15, drift=0.2, merge_loss=0.1),
    "medium": SimProfile("medium", window=32_000, attention=8_000, noise=0.04, guess=0.06,
                         critic_noise=0.1, drift=0.12, merge_loss=0.08),
    "large": SimProfile("large", window=128_000, attention=24_000, noise=0.02, guess=0.05,
                        critic_noise=0.05, drift=0.06, merge_loss=0.05),
}


@functools.lru_cache(maxsize=64)
def parse_model(model: str) -> SimProfile:
    """``fgo-sim/small:latency=0.2`` (with or without the provider prefix) → profile."""
    name = model.split("/", 1)[1] if model.startswith("fgo-sim/") else model
    name, _, overrides = name.partition(":")
    if name not in PROFILES:
        raise ConfigError(f"unknown simulated profile {name!r}; choose one of: {', '.join(PROFILES)}")
    prof = PROFILES[name]
    if not overrides:
        return prof
    types = {f.name: f.type for f in fields(SimProfile)}
    changes: dict[str, object] = {}
    for part in overrides.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in types or key == "name":
            raise ConfigError(f"unknown simulated-profile setting {key!r} in {model!r}")
        try:
            changes[key] = int(value) if key in ("window", "attention", "seed") else float(value)
        except ValueError:
            raise ConfigError(f"bad value for {key} in {model!r}: {value!r}") from None
    return replace(prof, **changes)
