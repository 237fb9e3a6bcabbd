"""Progress of a run for people watching it: share done and an ETA from the observed call rate.

Used by the headless console (heartbeat lines) and the app (progress bar); no I/O.
"""
from __future__ import annotations

from collections import deque

RATE_WINDOW = 60.0  # seconds of history the call rate is measured over


class RateMeter:
    """Calls per second over the last ``window`` seconds, and what that means for the rest."""

    def __init__(self, window: float = RATE_WINDOW):
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, t: float, calls: int) -> None:
        # the window starts when calls start moving: a slow start (imports, first answer) is no rate
        if self._samples and self._samples[-1][1] == calls and len(self._samples) == 1:
            self._samples.clear()
        self._samples.append((t, calls))
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 1e-6 or c1 <= c0:
            return None
        return (c1 - c0) / (t1 - t0)

    def eta(self, done: int, expected: float) -> float | None:
        """Seconds left at the observed rate; None before there is a rate or an expectation."""
        r = self.rate()
        if r is None or expected <= 0:
            return None
        return max(0.0, expected - done) / r


def fraction(done: float, expected: float, *, finished: bool = False) -> float:
    """Share of the expected calls made; held below 1 until the run says it finished
    (an expectation is not a bound, so the last stretch may run over)."""
    if finished:
        return 1.0
    if expected <= 0:
        return 0.0
    return min(0.99, done / expected)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def expected_calls(projection: dict) -> float:
    """The expected total calls from a ``Projection.to_dict()``."""
    return float(((projection or {}).get("total") or {}).get("calls") or 0)
