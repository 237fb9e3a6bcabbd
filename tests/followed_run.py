"""A session run by another process (``fgo run --headless --review ask`` in a subprocess) and
what a follower does to it: read its pending reviews, post decisions beside it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fgo_engine.persistence import inbox
from fgo_engine.persistence import queries as q
from fgo_engine.types import ReviewDecision

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
BASE = ("--suite", "toy", "--model", "fgo-sim/medium", "--subsets", "3", "--epochs", "1", "--threshold", "2",
        "--workers", "3", "--review", "ask", "--headless")


def wait_until(cond, timeout=120.0, what="condition", proc: subprocess.Popen | None = None):
    """Poll ``cond``; with ``proc``, fail at once (with its output) if that process has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}:\n{out[-3000:]}")
        time.sleep(0.05)
    if proc is not None and proc.poll() is None:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"timed out waiting for {what}; the run's output:\n{(out or '')[-3000:]}")
    raise AssertionError(f"timed out waiting for {what}")


def run_cli(db: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p),
           "FGO_PLUGINS": "toy_suite"}
    return subprocess.Popen([sys.executable, "-m", "fgo_cli", *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def pending(db: Path) -> list[str]:
    try:
        store = q.open_readonly(db)
    except Exception:  # noqa: BLE001 - not created yet
        return []
    try:
        return q.pending_reviews(store)
    finally:
        store.close()


def reviews(db: Path) -> list[tuple[str, str, str]]:
    store = q.open_readonly(db)
    try:
        return [(r["node_id"], r["decision"], r["by"]) for r in q.reviews(store)]
    finally:
        store.close()


def answer(db: Path, node: str, decision: ReviewDecision) -> None:
    store = q.open_readonly(db)
    try:
        req = q.review_request(store, node)
    finally:
        store.close()
    assert req is not None and inbox.post(db, node, decision, req.proposed.text)


def finish(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("the run did not finish:\n" + out[-3000:]) from None
    return out
