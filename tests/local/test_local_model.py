"""A tiny FGO session on BBH with every role on a real local model (SmolLM2-135M-Instruct
served by llama.cpp). The model is weak; these tests check the path, not the scores."""
from __future__ import annotations

import collections
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_data

from fgo_engine.config import ROLES, RunConfig
from fgo_engine.run.session import Session

from .conftest import ALIAS, UsageProxy

pytestmark = pytest.mark.local

# Every role capped so a rambling reply cannot run to the end of the context window.
MAX_TOKENS = {"agent": 200, "evaluator": 200, "optimizer": 400, "merger": 400}
SCAFFOLD = ("<instruction>", "</instruction>", "<examples>", "<trajectory>", "<modules>", "<task>")


def roles(api_base: str) -> dict:
    return {r: {"model": f"openai/{ALIAS}", "api_base": api_base, "max_tokens": MAX_TOKENS[r],
                "timeout": 300, "max_concurrency": 1} for r in ROLES}


def bbh_options(n: int = 2) -> dict:
    return {"data": str(shared_data("bbh")), "tasks": "web_of_lies,boolean_expressions",
            "n_train": n, "n_test": n}


def test_tiny_session_on_bbh_every_role_local(tmp_path, server):
    proxy = UsageProxy(server.url)
    try:
        cfg = RunConfig.from_dict({
            "suite": "bbh", "suite_options": bbh_options(), "subsets": 2, "epochs": 1, "threshold": 2,
            "partition": "category", "workers": 1, "roles": roles(proxy.url)})
        s = Session.create(tmp_path / "local.db", cfg)
        try:
            res = s.run()
            s.store.flush()
            ledger = s.store.rows("ledger")
            modules = s.store.rows("modules")
        finally:
            s.close()
    finally:
        proxy.close()
    assert res.status == "done", res.message
    assert res.test_score is not None and 0.0 <= res.test_score <= 1.0

    # Every role reached the model, and the ledger holds exactly the server's usage, call by call.
    paid = [e for e in ledger if not e["cache_hit"] and not e["error"]]
    assert {"agent", "evaluator", "optimizer"} <= {e["role"] for e in paid}
    server_usage = collections.Counter((r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"])
                                       for _, r in proxy.exchanges)
    ledger_usage = collections.Counter((e["prompt_tokens"], e["completion_tokens"]) for e in paid)
    assert ledger_usage == server_usage
    assert all(req["model"] == ALIAS and req["max_tokens"] <= max(MAX_TOKENS.values())
               for req, _ in proxy.exchanges)

    # Nothing empty, truncated or echoed was adopted.
    # (a module's text may also appear in a later cut-off reply that echoes it, e.g. a merger
    # repeating its children: what matters is that it came from a reply the model finished)
    finished = [r["choices"][0]["message"]["content"] or "" for _, r in proxy.exchanges
                if r["choices"][0].get("finish_reason") != "length"]
    for m in modules:
        if not m["adopted"] or m["origin"] == "initial":
            continue
        text = m["text"]
        assert text.strip(), m["id"]
        assert not any(tag in text for tag in SCAFFOLD), (m["id"], text[:200])
        if m["origin"] in ("optimize", "merge"):
            assert any(text.strip() in t for t in finished), m["id"]


def _ledger(path) -> list[sqlite3.Row]:
    if not path.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM ledger ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the file is still being created
        return []
    finally:
        con.close()


def test_killed_server_then_resume_repeats_no_paid_call(tmp_path, server):
    config = tmp_path / "local.json"
    config.write_text(json.dumps({
        "suite": "bbh", "suite_options": bbh_options(3), "subsets": 2, "epochs": 1, "partition": "category",
        "workers": 1, "retries": 1, "roles": roles(server.url)}))
    db = tmp_path / "killed.db"
    env = {**os.environ, "FGO_SESSIONS_DIR": str(tmp_path)}
    fgo = [str(Path(sys.executable).parent / "fgo")]
    run = subprocess.Popen(fgo + ["run", "--config", str(config), "--session", str(db), "--headless"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and run.poll() is None:  # wait for 4 paid calls
            if sum(1 for e in _ledger(db) if not e["cache_hit"] and not e["error"]) >= 4:
                break
            try:  # between polls of the ledger, wait on the run itself ending
                run.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        assert run.poll() is None, "the run ended before the server could be killed:\n" + run.stdout.read()
        server.kill()
        out, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
        server.start()  # the next tests (and this one's resume) need it again
    assert run.returncode == 1, out
    assert "Traceback" not in out, out
    before = _ledger(db)
    paid_before = {e["cache_key"] for e in before if not e["cache_hit"] and not e["error"]}

    resume = subprocess.run(fgo + ["resume", str(db), "--headless"], capture_output=True, text=True,
                            env=env, timeout=1200)
    assert resume.returncode == 0, resume.stdout + resume.stderr
    after = [e for e in _ledger(db) if e["id"] > before[-1]["id"]]
    paid_after = {e["cache_key"] for e in after if not e["cache_hit"] and not e["error"]}
    assert paid_after, "the resumed run made no new call"
    assert not paid_before & paid_after  # no call paid for before the kill was paid again
    # The failed run's error names the server's URL (and says to check that it runs).
    assert f"127.0.0.1:{server.port}" in out, out
