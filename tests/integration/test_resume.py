"""Crash recovery: SIGKILL a real `fgo run` at several points, resume, and compare with an
uninterrupted run of the same seed. Synchronisation is on the run's own output lines."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]  # tests/: toy_suite and the fake server
# --review auto: the review-pending test answers "approve" to every merge, which is what auto does
# (the default, if-not-worse, also backtests each merge's best child)
ARGS = ["--suite", "toy", "--model", "fgo-sim/medium:latency=0.005", "--subsets", "6", "--epochs", "2",
        "--threshold", "2", "--seed", "3", "--headless", "--review", "auto"]
TABLES = ("subsets", "modules", "trajectories", "critiques", "epochs", "merge_nodes", "reviews")


def env():
    e = dict(os.environ)
    e["FGO_PLUGINS"] = "toy_suite"
    e["PYTHONPATH"] = str(TESTS) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONUNBUFFERED"] = "1"
    return e


def fgo(*args, stdin=None):
    return subprocess.Popen([sys.executable, "-m", "fgo_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=stdin or subprocess.DEVNULL, text=True, env=env())


def run_to_end(*args, answers=""):
    p = subprocess.run([sys.executable, "-m", "fgo_cli", *args], capture_output=True, text=True, env=env(),
                       input=answers, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def kill_at(pattern, *args):
    """Start a run and SIGKILL it as soon as a line matching ``pattern`` is printed."""
    p = fgo(*args, stdin=subprocess.PIPE)
    seen = []
    for line in p.stdout:
        seen.append(line)
        if re.search(pattern, line):
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, "".join(seen)
    return "".join(seen)


def snapshot(path):
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    q = lambda sql, *a: con.execute(sql, a).fetchall()  # noqa: E731
    s = q("select * from session")[0]
    final = q("select text from modules where id = ?", s["final_module_id"])
    out = {
        "status": s["status"], "best_score": s["best_score"],
        "final": final[0]["text"] if final else None,
        "test": sorted((r["task_id"], r["score"]) for r in q("select task_id, score from trajectories where phase='test'")),
        "spent": q("select coalesce(sum(prompt_tokens + completion_tokens), 0) n from ledger where cache_hit = 0")[0]["n"],
        "paid_keys": [r["cache_key"] for r in q("select cache_key from ledger where cache_hit = 0 and error is null")],
        "hits": q("select count(*) n from ledger where cache_hit = 1")[0]["n"],
        "counts": {t: q(f"select count(*) n from {t}")[0]["n"] for t in TABLES},
        "nodes": sorted((r["id"], r["status"], r["module_id"], r["score_after"]) for r in q("select * from merge_nodes")),
        "decisions": [r["decision"] for r in q("select decision from reviews order by id")],
    }
    con.close()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.db"
    run_to_end("run", *ARGS, "--session", str(path))
    return snapshot(path)


def assert_same_as_reference(snap, ref):
    assert snap["status"] == "done"
    assert snap["final"] == ref["final"] and snap["final"]
    assert snap["best_score"] == ref["best_score"]
    assert snap["test"] == ref["test"]
    assert snap["nodes"] == ref["nodes"]
    assert snap["counts"] == ref["counts"]  # no duplicate rows
    assert len(snap["paid_keys"]) == len(set(snap["paid_keys"]))  # no completed call paid twice
    assert snap["spent"] == ref["spent"]  # zero new tokens for work already paid for
    assert snap["hits"] > 0  # the resumed run was served from the cache


@pytest.mark.parametrize("point", [r"subset \d epoch 1:", r"merge n1 "])
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, reference, point):
    path = tmp_path / "s.db"
    kill_at(point, "run", *ARGS, "--session", str(path))
    before = snapshot(path)
    assert before["status"] == "running" and before["final"] is None
    assert before["spent"] > 0
    run_to_end("resume", str(path), "--headless")
    assert_same_as_reference(snapshot(path), reference)


def test_kill_while_a_review_is_pending_asks_again_on_resume(tmp_path, reference):
    path = tmp_path / "s.db"
    out = kill_at(r"review n1: \[a\]pprove", "run", *ARGS, "--review", "ask", "--session", str(path))
    assert "=== review n1" in out
    con = sqlite3.connect(path)
    assert con.execute("select status from merge_nodes where id='n1'").fetchone()[0] == "pending_review"
    assert con.execute("select count(*) from reviews").fetchone()[0] == 0
    con.close()
    out = run_to_end("resume", str(path), "--headless", answers="a\n" * 10)
    assert "=== review n1" in out  # asked again
    snap = snapshot(path)
    assert snap["decisions"] == ["approve"] * len(reference["decisions"])
    assert_same_as_reference(snap, reference)
