"""Progress of a run for people watching it: share done and an ETA.

* Done counts every call of the session's work, cached or not, across resumes: the calls
  earlier runs made (``before``, distinct cache keys of the ledger) stay done, and a cache hit
  of this run counts only once the earlier work is used up (a resumed run replays it from the
  cache first).
* The ETA is projected per role from that role's own latency (a 1 s agent call and a 60 s
  optimizer call do not mix): seconds of work left = Σ calls left × the role's mean latency,
  divided by the concurrency observed (latency seconds per wall second).
* And per phase: the phases run at different widths (a subset's explore has every loop's tasks
  under way, a backtest or the test split one pass at a time), so the calls left in each phase
  are divided by the smaller of that phase's width (the projection's ``parallel``) and the
  concurrency observed. Where the observed concurrency is below every width this is the
  per-role figure; a projection without phases (an older session) gets the per-role figure.
* Time spent waiting for a person (a review, a pause) is no run time: it is left out of the
  observed window, and no ETA is given while waiting (the caller says why).

Used by the headless console (heartbeat lines) and the app (progress bar); no I/O.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fgo_engine.timeutil import fmt_duration

__all__ = ["Progress", "RoleProgress", "expected_calls", "fmt_duration", "fraction"]

RATE_WINDOW = 60.0  # seconds of active history the concurrency is measured over


@dataclass
class RoleProgress:
    expected: float = 0.0  # calls the projection expects of this role (the whole run)
    before: int = 0  # calls earlier runs of the session made (distinct)
    fresh: int = 0  # this run's calls not served by the cache
    cached: int = 0  # this run's cache hits
    seconds: float = 0.0  # latency of the fresh calls (earlier runs' included)
    timed: int = 0  # calls ``seconds`` is summed over

    @property
    def done(self) -> int:
        # a resumed run first replays what earlier runs did, from the cache: those hits are not new work
        return self.before + self.fresh + max(0, self.cached - self.before)

    @property
    def left(self) -> float:
        return max(0.0, self.expected - self.done)

    @property
    def latency(self) -> float | None:
        return self.seconds / self.timed if self.timed else None


EPISODES_TO_TRUST = 20  # episodes of a phase this run before its calls per episode replace the projection's


@dataclass
class PhaseProgress:
    role: str
    expected: float = 0.0
    parallel: int = 1  # calls of the phase the run's shape has under way at once (the projection's)
    done: float = 0.0  # calls of the session's work done (earlier runs' share included)
    episodes: float = 0.0  # expected agent episodes of the phase (0: not an agent phase)
    run_calls: int = 0  # this run's calls of the phase
    run_episodes: int = 0  # this run's episodes of the phase that ended

    @property
    def left(self) -> float:
        return max(0.0, self.expected - self.done)

    def observed_ratio(self) -> float | None:
        """This run's calls per episode over the projection's, once enough episodes ended."""
        if self.episodes <= 0 or self.expected <= 0 or self.run_episodes < EPISODES_TO_TRUST or not self.run_calls:
            return None
        return (self.run_calls / self.run_episodes) / (self.expected / self.episodes)


class Progress:
    """Per-role (and per-phase) call counts against the projection, and the ETA they give."""

    def __init__(self, window: float = RATE_WINDOW):
        self.window = window
        self.roles: dict[str, RoleProgress] = {}
        self.phases: dict[str, PhaseProgress] = {}
        self._agent_phase = ""  # the agent phase of the latest call
        self._samples: deque[tuple[float, int, float, float]] = deque()  # (t, calls, latency s, waited s)
        self._calls = 0
        self._latency = 0.0
        self._waited = 0.0  # seconds spent waiting for a person so far
        self._total = 0.0
        self._wait_since: float | None = None

    # -- feeding ------------------------------------------------------------------------
    def start(self, projection: Mapping[str, Any] | None, before: Mapping[str, Any] | None = None) -> None:
        """A run starts: its projection (``Projection.to_dict()``) and what earlier runs did
        (``{role: {"calls", "timed", "seconds"}}``, see ``queries.calls_done``)."""
        self.roles.clear()
        self.phases.clear()
        self._agent_phase = ""
        self._samples.clear()
        self._calls, self._latency, self._waited, self._wait_since = 0, 0.0, 0.0, None
        self._total = expected_calls(dict(projection or {}))  # when the projection names no roles
        for role, p in ((projection or {}).get("roles") or {}).items():
            self.role(role).expected = float(p.get("calls") or 0)
        for phase, p in ((projection or {}).get("phases") or {}).items():
            self.phases[phase] = PhaseProgress(str(p.get("role") or ""), float(p.get("calls") or 0),
                                               max(1, int(p.get("parallel") or 1)),
                                               episodes=float(p.get("episodes") or 0))
        for role, b in (before or {}).items():
            r = self.role(role)
            r.before = int(b.get("calls") or 0)
            r.timed, r.seconds = int(b.get("timed") or 0), float(b.get("seconds") or 0.0)
            # earlier runs' calls fill the role's phases in the order a run makes them
            left = float(r.before)
            for ph in self.phases.values():
                if ph.role == role and left > 0:
                    ph.done = min(ph.expected, left)
                    left -= ph.done

    def role(self, name: str) -> RoleProgress:
        r = self.roles.get(name)
        if r is None:
            r = self.roles[name] = RoleProgress()
        return r

    def add(self, t: float, role: str, *, calls: int = 1, cached: int = 0, seconds: float = 0.0,
            phase: str | None = None) -> None:
        """``calls`` calls of ``role`` ended (``cached`` of them cache hits; ``seconds``: the
        latency summed over the others), in ``phase`` when the caller knows it."""
        r = self.role(role)
        replayed = min(cached, max(0, r.before - r.cached))  # earlier work a resumed run replays
        ph = self.phases.get(phase or "")
        if ph is not None and ph.role == role:
            ph.done += calls - replayed
            ph.run_calls += calls
            if ph.episodes > 0:
                self._agent_phase = phase or ""
        r.cached += cached
        r.fresh += calls - cached
        if calls > cached:
            r.seconds += seconds
            r.timed += calls - cached
        if not self._samples:  # the window starts at the first answer: a slow start is no rate
            self._samples.append((t, 0, 0.0, self._waited_at(t)))
        self._calls += calls
        self._latency += seconds
        self._samples.append((t, self._calls, self._latency, self._waited_at(t)))
        while len(self._samples) > 2 and self._active(self._samples[1], self._samples[-1]) >= self.window:
            self._samples.popleft()

    def episode(self, phase: str, n: int = 1) -> None:
        """``n`` agent episodes of ``phase`` ended (TaskFinished)."""
        ph = self.phases.get(phase)
        if ph is not None:
            ph.run_episodes += n

    def wait(self, t: float, waiting: bool) -> None:
        """Waiting for a person starts (True) or ends (False)."""
        if waiting and self._wait_since is None:
            self._wait_since = t
        elif not waiting and self._wait_since is not None:
            self._waited += max(0.0, t - self._wait_since)
            self._wait_since = None

    @property
    def waiting(self) -> bool:
        return self._wait_since is not None

    def _waited_at(self, t: float) -> float:
        return self._waited + (max(0.0, t - self._wait_since) if self._wait_since is not None else 0.0)

    @staticmethod
    def _active(a: tuple[float, int, float, float], b: tuple[float, int, float, float]) -> float:
        return (b[0] - a[0]) - (b[3] - a[3])

    # -- reading ------------------------------------------------------------------------
    @property
    def done(self) -> int:
        return sum(r.done for r in self.roles.values())

    @property
    def expected(self) -> float:
        return sum(r.expected for r in self.roles.values()) or self._total

    def fraction(self, *, finished: bool = False) -> float:
        return fraction(self.done, self.expected, finished=finished)

    def eta(self) -> float | None:
        """Seconds left; None while waiting for a person, before there is a rate or an expectation."""
        if self.waiting or self.expected <= 0 or len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        span = self._active(first, last)
        calls, latency = last[1] - first[1], last[2] - first[2]
        if span <= 1e-6 or calls <= 0:
            return None
        if self.phases and latency > 0:
            timed = [r.latency for r in self.roles.values() if r.latency is not None]
            return self._phase_eta(latency / span, sum(timed) / len(timed) if timed else latency / calls)
        left = [(r.left, r.latency) for r in self.roles.values() if r.left > 0]
        if not any(r.expected for r in self.roles.values()):
            left = [(max(0.0, self._total - self.done), None)] if self._total > self.done else []
        if not left:
            return 0.0
        if latency <= 0:  # no latency to go by (all cached, or an instant model): the call rate
            return sum(n for n, _ in left) / (calls / span)
        timed = [lat for _, lat in left if lat is not None]
        mean = sum(timed) / len(timed) if timed else latency / calls
        work = sum(n * (lat if lat is not None else mean) for n, lat in left)
        return work * span / latency  # latency / span: calls under way on average

    def _phase_eta(self, concurrency: float, mean: float) -> float:
        """Seconds left, phase by phase: a phase has at most its width under way (the
        projection's ``parallel``), and no more than the run sustains now (``concurrency``, the
        calls under way on average in the window): a narrow phase ahead (a backtest, the test
        split) is not divided by a wide one's rate, and a machine or server that bounds every
        phase below its width bounds the ones ahead too. An agent phase's expected calls follow
        the calls per episode this run has seen (in that phase, else in the latest agent phase):
        episodes that take more turns than projected make the phases ahead longer too."""
        latest = self.phases.get(self._agent_phase)
        fallback = latest.observed_ratio() if latest is not None else None
        out = 0.0
        for ph in self.phases.values():
            left = ph.left
            if ph.episodes > 0:
                ratio = ph.observed_ratio() or fallback
                if ratio is not None:
                    left = max(0.0, ph.expected * ratio - ph.done)
            if left > 0:
                lat = self.roles[ph.role].latency if ph.role in self.roles else None
                out += left * (lat if lat is not None else mean) / max(1e-6, min(concurrency, ph.parallel))
        return out

    def role_etas(self) -> dict[str, float]:
        """Seconds of latency left per role (before dividing by the concurrency): what the ETA is made of."""
        return {k: r.left * (r.latency or 0.0) for k, r in self.roles.items() if r.left > 0}


def fraction(done: float, expected: float, *, finished: bool = False) -> float:
    """Share of the expected calls made; held below 1 until the run says it finished
    (an expectation is not a bound, so the last stretch may run over)."""
    if finished:
        return 1.0
    if expected <= 0:
        return 0.0
    return min(0.99, done / expected)


def expected_calls(projection: dict) -> float:
    """The expected total calls from a ``Projection.to_dict()``."""
    return float(((projection or {}).get("total") or {}).get("calls") or 0)
