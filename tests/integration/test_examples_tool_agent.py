"""examples/tool_agent: a user's tool-using agent optimized end to end, its agent model served
by a loopback OpenAI-style server that calls the tools like a model would."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from fake_openai import ok, tool_call

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "tool_agent" / "optimize_tool_agent.py"


def stand_in_model(body):
    """Look the price up, convert it, answer: the tool loop a capable model would run."""
    messages = body["messages"]
    question = next(m["content"] for m in messages if m["role"] == "user")
    item, currency = re.search(r"the (\w+) cost in (\w+)\?", question).groups()
    results = [m["content"] for m in messages if m["role"] == "tool"]
    if not results:
        return tool_call("price_in_usd", {"item": item})
    if len(results) == 1:
        return tool_call("convert", {"amount_usd": float(results[0]), "currency": currency})
    return ok(f"It costs {results[-1]} {currency}.")


def test_the_tool_agent_example_runs_on_a_loopback_server(tmp_path, fake_openai):
    fake_openai.responder = stand_in_model
    session = tmp_path / "tool-agent.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(SCRIPT), "--model", "fgo-sim/medium", "--agent-model", "openai/stand-in",
                        "--api-base", fake_openai.url, "--subsets", "2", "--epochs", "1", "--session", str(session)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "status: done" in p.stdout and "test score: 1.000" in p.stdout
    bodies = fake_openai.bodies()
    assert bodies and all([t["function"]["name"] for t in b["tools"]] == ["price_in_usd", "convert"] for b in bodies)
    con = sqlite3.connect(session)
    steps = json.loads(con.execute("select steps_json from trajectories where phase = 'test' limit 1").fetchone()[0])
    calls = con.execute("select count(*) from ledger where role = 'agent' and cache_hit = 0").fetchone()[0]
    con.close()
    assert [s[0] for s in steps] == ["input", "tool_call", "observation", "tool_call", "observation", "action",
                                     "answer"]
    assert calls == len(bodies)  # every call the agent made is in the ledger
