"""Progress and ETA people can trust (issue 24 item 2 and "found on a real local model"): done
counts across resumes, the ETA is projected per role from each role's own latency, and time
spent waiting for a person is left out (and said while it waits)."""
from __future__ import annotations

import io

from fgo_engine import events as ev
from fgo_engine.run.console import ConsolePrinter
from fgo_engine.run.progress import Progress

PROJECTION = {"roles": {"agent": {"calls": 1000}, "optimizer": {"calls": 10}}, "total": {"calls": 1010}}


def test_eta_per_role_does_not_mix_a_1s_agent_with_a_60s_optimizer():
    p = Progress()
    p.start(PROJECTION)
    t = 0.0
    for _ in range(100):  # one agent call a second
        t += 1.0
        p.add(t, "agent", seconds=1.0)
    before = p.eta()
    assert before is not None and 900 <= before <= 1000  # 900 agent s + 10 optimizer calls at the mean
    t += 60.0  # one optimizer call of a minute: the last 60 s of the window saw a single call
    p.add(t, "optimizer", seconds=60.0)
    after = p.eta()
    # the truth: 900 agent calls × 1 s + 9 optimizer calls × 60 s, one call at a time
    assert after is not None and abs(after - 1440) < 50
    # a single call rate over the last minute would say 909 calls at one a minute (≈ 15 hours)
    assert after < 2 * before


def test_progress_counts_earlier_runs_and_not_the_replay():
    p = Progress()
    p.start(PROJECTION, {"agent": {"calls": 670, "timed": 600, "seconds": 600.0}})
    assert abs(p.fraction() - 670 / 1010) < 1e-9  # 66%, at once, not 0% after a resume
    for i in range(300):  # the resumed run replays earlier work from the cache first
        p.add(float(i), "agent", cached=1)
    assert abs(p.fraction() - 670 / 1010) < 1e-9
    for i in range(100):
        p.add(300.0 + i, "agent", seconds=1.0)
    assert p.roles["agent"].done == 770
    assert p.roles["agent"].latency == 1.0  # the earlier runs' latency seeds the rate


def test_waiting_for_a_person_is_no_run_time():
    p = Progress()
    p.start(PROJECTION)
    for i in range(1, 51):
        p.add(float(i), "agent", seconds=1.0)
    p.add(60.0, "optimizer", seconds=10.0)
    eta = p.eta()
    p.wait(60.0, True)
    assert p.eta() is None  # no ETA while waiting
    p.wait(3660.0, False)  # an hour for the review
    p.add(3661.0, "agent", seconds=1.0)
    later = p.eta()
    assert eta is not None and later is not None and abs(later - eta) < 0.05 * eta  # the hour counts for nothing


def test_the_heartbeat_says_it_waits_for_a_review():
    out = io.StringIO()
    printer = ConsolePrinter(out, heartbeat=0)
    printer(ev.RunStarted("fgo", 2, 8, 8, {"agent": 1000}, PROJECTION, {"agent": {"calls": 500}}))
    for _ in range(3):
        printer(ev.TokensUsed("agent", "subset", "0", "explore", 10, 2, False, 12, latency_ms=1000.0))
    line = printer.progress_line()
    assert "50% of ~1,010 expected" in line  # the 500 calls made before the resume count
    printer(ev.MergeNodeUpdated("n1", None, ("s0", "s1"), "pending_review", 8))
    line = printer.progress_line()
    assert "waiting for a review" in line and "not counted" in line and "ETA 0" not in line
    printer(ev.MergeNodeUpdated("n1", None, ("s0", "s1"), "backtesting", 8))
    assert "waiting" not in printer.progress_line()


def test_a_resumed_run_starts_where_the_last_one_stopped(tmp_path, toy_config):
    """Stopped by its token budget, then resumed: the resumed run's progress starts at (about)
    the share the first run reached, not at 0 %, and ends near the whole of it."""
    from fgo_engine.run.session import Session

    path = tmp_path / "r.db"
    first = ConsolePrinter(io.StringIO(), heartbeat=0)
    s = Session.create(path, toy_config(subsets=4, epochs=2, budget_tokens=8_000), sinks=[first])
    try:
        assert s.run().status == "budget"
        s.store.flush()
    finally:
        s.close()
    reached = first._progress.fraction()
    assert 0.05 < reached < 0.95
    second = ConsolePrinter(io.StringIO(), heartbeat=0)
    at_start: list[float] = []

    def on_start(e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            at_start.append(second._progress.fraction())

    s = Session.open(path, config_overrides={"budget_tokens": None}, sinks=[second, on_start])
    try:
        assert s.run().status == "done"
    finally:
        s.close()
    assert at_start and abs(at_start[0] - reached) < 0.01  # today: 0 % at the start of a resume
    assert second._progress.fraction() >= 0.7  # the replayed part is not counted twice, nor lost


PHASED = {"roles": {"agent": {"calls": 1200}},
          "phases": {"explore": {"role": "agent", "calls": 1000, "parallel": 40},
                     "test": {"role": "agent", "calls": 200, "parallel": 8}},
          "total": {"calls": 1200}}


def test_eta_per_phase_divides_each_phase_by_its_own_width():
    """Explore runs 40 calls at once, the test split 8: once explore is done, the 200 test calls
    left are 200 s of work at 8 at a time (25 s), not at explore's 40 (5 s)."""
    p = Progress()
    p.start(PHASED)
    t = 0.0
    for _ in range(25):  # 40 calls under way, 1 s each: 40 calls end per second
        t += 1.0
        p.add(t, "agent", calls=40, seconds=40.0, phase="explore")
    assert p.phases["explore"].done == 1000 and p.phases["test"].left == 200
    eta = p.eta()
    assert eta is not None and 22.0 <= eta <= 26.0, eta  # the observed width scaled to the test's
    # one rate for every phase divides by the 40 observed: about 5 s
    single = Progress()
    single.start({k: v for k, v in PHASED.items() if k != "phases"})
    t = 0.0
    for _ in range(25):
        t += 1.0
        single.add(t, "agent", calls=40, seconds=40.0)
    assert (single.eta() or 0) < 6.0


def test_earlier_runs_fill_the_phases_in_order():
    p = Progress()
    p.start(PHASED, {"agent": {"calls": 1100, "timed": 1100, "seconds": 1100.0}})
    assert p.phases["explore"].left == 0 and p.phases["test"].done == 100
    for i in range(1100):  # the resumed run replays the earlier work from the cache: nothing new is done
        p.add(float(i) / 100, "agent", cached=1, phase="explore")
    assert p.phases["test"].done == 100 and p.phases["explore"].left == 0


def test_a_phase_that_runs_over_does_not_use_up_the_phases_ahead():
    """Explore makes 1,200 calls where 1,000 were expected: per role the run would be "done"
    (ETA 0) before its test split starts; per phase the test's 200 calls are still ahead."""
    p, single = Progress(), Progress()
    p.start(PHASED)
    single.start({k: v for k, v in PHASED.items() if k != "phases"})
    for i in range(1, 31):
        p.add(float(i), "agent", calls=40, seconds=40.0, phase="explore")
        single.add(float(i), "agent", calls=40, seconds=40.0)
    assert single.eta() == 0.0
    eta = p.eta()
    assert eta is not None and 22.0 <= eta <= 26.0, eta


def test_episodes_longer_than_projected_lengthen_the_phases_ahead():
    """The projection expects 10 calls an episode; this run's episodes take 15: the explore
    calls left and the test split ahead grow by half (after 20 episodes, not before)."""
    projection = {"roles": {"agent": {"calls": 1200}}, "total": {"calls": 1200},
                  "phases": {"explore": {"role": "agent", "calls": 1000, "parallel": 40, "episodes": 100},
                             "test": {"role": "agent", "calls": 200, "parallel": 8, "episodes": 20}}}
    p = Progress()
    p.start(projection)
    for i in range(1, 31):  # 30 calls a second, 1 s each: 30 under way; two episodes end a second
        p.add(float(i), "agent", calls=30, seconds=30.0, phase="explore")
        p.episode("explore", 2)
    # 900 calls in 60 episodes: 15 an episode, 1.5× the projection's 10
    eta = p.eta()
    expected = (1000 * 1.5 - 900) / 30 + 200 * 1.5 / 8  # explore at the 30 observed, the test at its width 8
    assert eta is not None and abs(eta - expected) < 0.05 * expected, (eta, expected)
    q = Progress()  # the same calls with fewer than 20 episodes seen: the projection's counts stand
    q.start(projection)
    for i in range(1, 31):
        q.add(float(i), "agent", calls=30, seconds=30.0, phase="explore")
    q.episode("explore", 10)
    plain = (1000 - 900) / 30 + 200 / 8
    assert abs((q.eta() or 0) - plain) < 0.05 * plain
