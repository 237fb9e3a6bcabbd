"""How long a run will take, before it starts: the projection's expected calls per role at an
assumed latency per call, divided by the calls that can be under way at once.

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
class RoleWall:
    calls: float
    latency: float  # seconds per call
    concurrency: int  # calls under way at once
    assumed: bool  # the latency is an assumption, not the simulator's profile

    @property
    def seconds(self) -> float:
        return self.calls * self.latency / max(1, self.concurrency)


@dataclass
class WallEstimate:
    roles: dict[str, RoleWall] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        # a loop's explore, critique and rewrite follow one another: the roles' times add up
        return sum(r.seconds for r in self.roles.values())

    def lines(self) -> list[str]:
        out = [f"estimated wall time ~{fmt_duration(self.seconds)} (expected calls × latency ÷ concurrency):"]
        for role, r in self.roles.items():
            how = "assumed" if r.assumed else "simulator profile"
            out.append(f"  {role:<10} {fmt_count(r.calls):>7} calls × {r.latency:.2f} s ({how}) ÷ {r.concurrency}"
                       f" at once = {fmt_duration(r.seconds)}")
        if any(r.assumed for r in self.roles.values()):
            out.append(f"  assumed for hosted models: {FIRST_TOKEN:g} s to the first token, "
                       f"{DECODE_RATE:g} completion and {PREFILL_RATE:g} prompt tokens a second")
        return out


def _parallel(role: str, config: RunConfig) -> int:
    """Calls of a role the run's shape can have under way at once (before the model's limit)."""
    from fgo_engine.method.methods import method_for

    # a method whose subsets meet in a merge tree runs their loops side by side
    loops = max(1, min(config.workers, config.subsets)) if method_for(config.method).has_merge_tree else 1
    if role in ("agent", "evaluator"):
        return loops * config.task_workers  # the tasks of every loop's batch
    if role == "optimizer":
        return loops
    return 1  # merges one after the other up the tree


def _latency(model: str, prompt: float, completion: float) -> tuple[float, bool]:
    if is_simulated(model):
        from fgo_engine.llm.sim.profiles import parse_model

        p = parse_model(model)
        s = p.latency + (prompt / p.prefill_rate if p.prefill_rate else 0.0)
        return s + (completion / p.decode_rate if p.decode_rate else 0.0), False
    return FIRST_TOKEN + prompt / PREFILL_RATE + completion / DECODE_RATE, True


def wall_time(proj: Projection, config: RunConfig) -> WallEstimate:
    out = WallEstimate()
    for role, p in proj.roles.items():
        if p.calls <= 0:
            continue
        rc = config.roles.get(role)
        model = rc.model if rc is not None else ""
        latency, assumed = _latency(model, p.prompt_tokens / p.calls, p.completion_tokens / p.calls)
        limit = rc.max_concurrency if rc is not None and rc.max_concurrency else 1
        out.roles[role] = RoleWall(p.calls, latency, max(1, min(limit, _parallel(role, config))), assumed)
    return out
