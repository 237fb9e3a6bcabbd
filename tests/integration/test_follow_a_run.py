"""A run started elsewhere (headless, `--review ask`) answered by another process through the
decision files beside the session (fgo_engine.persistence.inbox): decided once, never lost when
either side is killed."""
from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest
from followed_run import BASE, answer, finish, pending, reviews, run_cli, wait_until

from fgo_engine.errors import CancelledError
from fgo_engine.persistence import inbox
from fgo_engine.persistence import queries as q
from fgo_engine.run.console_gate import ConsoleGate, InboxGate
from fgo_engine.types import ChildInfo, Module, ReviewDecision, ReviewRequest


def request(node="n1", text="- merged rule") -> ReviewRequest:
    child = ChildInfo("s0", Module("instruction", "- a rule"), 0.5, 4)
    return ReviewRequest(node, Module("instruction", text), (child, child), 8)


# -- the protocol ----------------------------------------------------------------------------


def test_the_first_decision_posted_wins_and_a_second_is_refused(tmp_path):
    db = tmp_path / "s.db"
    db.write_bytes(b"")
    assert inbox.post(db, "n1", ReviewDecision("rollback", by="operator"), "- merged rule")
    assert not inbox.post(db, "n1", ReviewDecision("approve", by="operator"), "- merged rule")
    got = inbox.take(db, "n1", "- merged rule")
    assert got == ReviewDecision("rollback", by="operator")
    assert inbox.posted(db) == ["n1"]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # nothing half-written is left


def test_a_decision_for_another_proposal_is_not_applied(tmp_path):
    db = tmp_path / "s.db"
    inbox.post(db, "n1", ReviewDecision("approve", by="operator"), "- the old proposal")
    assert inbox.take(db, "n1", "- a different proposal") is None
    assert inbox.take(db, "n2", "- the old proposal") is None


def test_a_link_to_the_session_posts_beside_the_real_file(tmp_path):
    real = tmp_path / "real.db"
    real.write_bytes(b"")
    link = tmp_path / "link.db"
    link.symlink_to(real)
    assert inbox.post(link, "n1", ReviewDecision("approve", by="operator"), "x")
    assert inbox.posted(real) == ["n1"] and inbox.take(real, "n1", "x") is not None


def test_an_edit_posted_is_masked(tmp_path, monkeypatch):
    from fgo_engine import redaction

    monkeypatch.setenv("OPENAI_API_KEY", "sk-follow-SECRET-123456789012")
    redaction.refresh()
    try:
        db = tmp_path / "s.db"
        inbox.post(db, "n1", ReviewDecision("edit", "- key sk-follow-SECRET-123456789012", by="operator"), "x")
        assert "SECRET" not in inbox.decision_path(db, "n1").read_text()
    finally:
        monkeypatch.delenv("OPENAI_API_KEY")
        redaction.refresh()


def test_the_inbox_gate_waits_for_the_decision_and_can_be_cancelled(tmp_path):
    db = tmp_path / "s.db"
    gate = InboxGate(db, poll=0.01)
    got: list = []
    t = threading.Thread(target=lambda: got.append(gate.review(request())))
    t.start()
    assert inbox.post(db, "n1", ReviewDecision("approve", by="operator"), "- merged rule")
    t.join(30)
    assert got == [ReviewDecision("approve", by="operator")]
    gate2 = InboxGate(db, poll=0.01)
    errors: list = []

    def waits():
        try:
            gate2.review(request("n2"))
        except CancelledError as exc:
            errors.append(exc)

    t2 = threading.Thread(target=waits)
    t2.start()
    gate2.cancel()
    t2.join(30)
    assert errors and "n2" in str(errors[0])


def test_the_console_gate_takes_the_apps_decision_while_stdin_stays_silent(tmp_path):
    db = tmp_path / "s.db"
    r, w = os.pipe()  # an open, silent console
    out = io.StringIO()
    gate = ConsoleGate(os.fdopen(r), out, session=db, poll=0.01)
    got: list = []
    t = threading.Thread(target=lambda: got.append(gate.review(request())))
    t.start()
    wait_until(lambda: "[a]pprove" in out.getvalue(), what="the console prompt")
    inbox.post(db, "n1", ReviewDecision("edit", "- edited in the app", by="operator"), "- merged rule")
    t.join(30)
    os.close(w)
    assert got == [ReviewDecision("edit", "- edited in the app", by="operator")]
    assert "decided in the app" in out.getvalue()


def test_the_console_still_answers_first(tmp_path):
    db = tmp_path / "s.db"
    gate = ConsoleGate(io.StringIO("r\n"), io.StringIO(), session=db, poll=0.01)
    assert gate.review(request()).decision == "rollback"


def test_closed_input_waits_for_the_app_instead_of_cancelling(tmp_path):
    db = tmp_path / "s.db"
    out = io.StringIO()
    gate = ConsoleGate(io.StringIO(""), out, session=db, poll=0.01)
    got: list = []
    t = threading.Thread(target=lambda: got.append(gate.review(request())))
    t.start()
    wait_until(lambda: "input closed: waiting for the decision on n1 from the app" in out.getvalue(),
               what="the note")
    inbox.post(db, "n1", ReviewDecision("approve", by="operator"), "- merged rule")
    t.join(30)
    assert got and got[0].decision == "approve"


# -- end to end: a headless run in a subprocess, answered from outside, each side killed once --


@pytest.mark.xdist_group("subprocess-runs")
def test_a_headless_ask_run_is_answered_from_outside_and_survives_kills(tmp_path):
    db = tmp_path / "followed.db"
    base = (*BASE, "--session", str(db))
    proc = run_cli(db, "run", *base)
    try:
        first = wait_until(lambda: pending(db), what="a pending review", proc=proc)[0]
        # the runner is killed after the decision is posted but before it could record it
        os.kill(proc.pid, signal.SIGSTOP)
        answer(db, first, ReviewDecision("rollback", by="operator"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (first, "rollback", "operator") not in reviews(db)  # not recorded yet
    assert inbox.posted(db) == [first]  # but not lost either

    proc = run_cli(db, "resume", str(db), "--headless")
    try:
        def answered_first_and_waiting():
            recorded = reviews(db)
            return (first, "rollback", "operator") in recorded and [p for p in pending(db) if p != first]
        nxt = wait_until(answered_first_and_waiting, what="the first decision applied, the next asked", proc=proc)[0]
        # the follower is "killed" right after posting: its decision is in the file, nobody needs it alive
        answer(db, nxt, ReviewDecision("approve", by="operator"))
        # a second follower answering the same review is refused: decided once
        store = q.open_readonly(db)
        try:
            req = q.review_request(store, nxt)
        finally:
            store.close()
        assert req is not None
        assert not inbox.post(db, nxt, ReviewDecision("rollback", by="operator"), req.proposed.text)
        answered = {first, nxt}
        while proc.poll() is None:  # any later merge is approved from outside too
            for node in pending(db):
                if node not in answered:
                    answer(db, node, ReviewDecision("approve", by="operator"))
                    answered.add(node)
            time.sleep(0.05)
        out = finish(proc)
        assert proc.returncode == 0, out[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    recorded = reviews(db)
    assert [r for r in recorded if r[0] == first] == [(first, "rollback", "operator")]
    assert [r for r in recorded if r[0] == nxt] == [(nxt, "approve", "operator")]
    assert "decided in the app" in out
    assert inbox.posted(db) == []  # the finished run removed the decisions it recorded
