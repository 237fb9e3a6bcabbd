"""How long a run will take, before it starts: the projection's expected calls per phase at
its role's latency per call, divided by the calls that phase can have under way at once.

Nothing is measured and no key is needed: a simulated model's latency is its profile's
(``latency + prompt/prefill_rate + completion/decode_rate``); a real model's is assumed
(:data:`FIRST_TOKEN` seconds, then :data:`DECODE_RATE` completion tokens and
:data:`PREFILL_RATE` prompt tokens a second). Every figure says which it used, so a person can
redo the sum with their own numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fgo_engine.config import RunConfig
from fgo_engine.method.projection import Projection, fmt_count
from fgo_engine.timeutil import fmt_duration
from fgo_engine.types import is_simulated

FIRST_TOKEN = 0.6  # seconds before a hosted model's first token (assumed)
DECODE_RATE = 60.0  # completion tokens a second (assumed)
PREFILL_RATE = 4000.0  # prompt tokens a second (assumed)


@dataclass
class PhaseWall:
    role: str
    calls: float
    latency: float  # seconds per call (the role's)
    concurrency: int  # calls under way at once
    assumed: bool  # the latency is an assumption, not the simulator's profile

    @property
    def seconds(self) -> float:
        return self.calls * self.latency / max(1, self.concurrency)


@dataclass
class WallEstimate:
    phases: dict[str, PhaseWall] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        # a loop's explore, critique and rewrite follow one another, the merge tree comes after
        # the subsets and the test split last: the phases' times add up
        return sum(r.seconds for r in self.phases.values())

    def lines(self) -> list[str]:
        out = [f"estimated wall time ~{fmt_duration(self.seconds)} (per phase: expected calls × latency per "
               "call ÷ calls at once):"]
        for phase, r in self.phases.items():
            how = " (assumed)" if r.assumed else ""
            out.append(f"  {phase:<8} {fmt_count(r.calls):>6} × {r.latency:.2f} s{how} ÷ {r.concurrency} = "
                       f"{fmt_duration(r.seconds)}")
        if not all(r.assumed for r in self.phases.values()):
            out.append("  a simulated model's latency is its profile's")
        if any(r.assumed for r in self.phases.values()):
            out.append(f"  assumed for hosted models: {FIRST_TOKEN:g} s to the first token, "
                       f"{DECODE_RATE:g} completion and {PREFILL_RATE:g} prompt tokens a second")
        return out


def _latency(model: str, prompt: float, completion: float) -> tuple[float, bool]:
    if is_simulated(model):
        from fgo_engine.llm.sim.profiles import parse_model

        p = parse_model(model)
        s = p.latency + (prompt / p.prefill_rate if p.prefill_rate else 0.0)
        return s + (completion / p.decode_rate if p.decode_rate else 0.0), False
    return FIRST_TOKEN + prompt / PREFILL_RATE + completion / DECODE_RATE, True


def wall_time(proj: Projection, config: RunConfig) -> WallEstimate:
    """Per phase: its expected calls × its role's latency per call ÷ the calls the phase can
    have under way (the run's shape, capped by the role's ``max_concurrency``)."""
    out = WallEstimate()
    for phase, ph in proj.phases.items():
        p = proj.roles.get(ph.role)
        if ph.calls <= 0 or p is None or p.calls <= 0:
            continue
        rc = config.roles.get(ph.role)
        model = rc.model if rc is not None else ""
        latency, assumed = _latency(model, p.prompt_tokens / p.calls, p.completion_tokens / p.calls)
        limit = rc.max_concurrency if rc is not None and rc.max_concurrency else 1
        out.phases[phase] = PhaseWall(ph.role, ph.calls, latency, max(1, min(limit, ph.parallel)), assumed)
    return out
