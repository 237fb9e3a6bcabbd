"""``fgo_engine.optimize``: a user's agent and scorer, end to end, on the simulator and on a
loopback OpenAI-style server; resume from the CLI and from Python; the user's mistakes."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import user_agents
from fake_openai import ok, tool_call

import fgo_engine
from fgo_cli.main import main
from fgo_engine.errors import ConfigError, SessionError, TaskFileError, UserCodeError

START = "You answer questions about glorps.\n- Answer briefly."
TESTS = Path(__file__).resolve().parent.parent


def q(path, sql, *args):
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def run(tmp_path, agent=user_agents.toy_agent, scorer=user_agents.exact_scorer, name="s.db", **kw):
    kw.setdefault("tasks", user_agents.toy_tasks())
    kw.setdefault("model", "fgo-sim/medium")
    args = {"instruction": START, "subsets": 3, "epochs": 2, "workers": 3, "session": tmp_path / name, **kw}
    return fgo_engine.optimize(agent=agent, scorer=scorer, **args)


def test_importing_the_package_leaves_the_api_unloaded():
    code = ("import sys, fgo_engine; assert 'fgo_engine.run.api' not in sys.modules; "
            "assert 'litellm' not in sys.modules and 'sqlite_utils' not in sys.modules; "
            "f = fgo_engine.optimize; print(f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fgo_engine.run.api"


def test_optimize_runs_a_user_agent_end_to_end_on_the_simulator(tmp_path):
    res = run(tmp_path)
    assert res.status == "done"
    assert res.session == tmp_path / "s.db" and res.session.exists()
    assert res.module and res.module != START and res.module.startswith("You answer questions about glorps.")
    assert res.test_score is not None and 0.0 <= res.test_score <= 1.0
    agent_calls = q(res.session, "select task_id, model from ledger where role = 'agent'")
    assert len(agent_calls) >= 12 * 2 and {c["model"] for c in agent_calls} == {"fgo-sim/medium"}
    # the session is an ordinary one: its start module, its suite options (import paths, no code)
    cfg = json.loads(q(res.session, "select config_json from session")[0]["config_json"])
    assert cfg["suite"] == "user_agent" and cfg["instruction"] == START
    assert cfg["suite_options"]["agent"] == "user_agents:toy_agent"
    assert cfg["suite_options"]["scorer"] == "user_agents:exact_scorer"
    steps = json.loads(q(res.session, "select steps_json from trajectories limit 1")[0]["steps_json"])
    assert [s[0] for s in steps] == ["input", "action", "answer"]  # the agent's call is in its trajectory


def test_a_multi_turn_agent_and_a_builtin_scorer(tmp_path):
    res = run(tmp_path, agent=user_agents.two_turn_agent, scorer="normalized", subsets=2, epochs=1)
    assert res.status == "done"
    per_task = q(res.session, "select task_id, count(*) n from ledger where role = 'agent' and phase = 'explore' "
                              "and epoch = 0 group by task_id")
    assert per_task and {r["n"] for r in per_task} == {2}


def test_no_test_split_gives_no_test_score(tmp_path):
    tasks = [t for t in user_agents.toy_tasks() if t["split"] == "train"]
    for t in tasks:
        del t["split"]
    res = run(tmp_path, tasks=tasks, test_fraction=0.0, subsets=2, epochs=1)
    assert res.status == "done" and res.test_score is None and res.train_score is not None


def test_tasks_from_a_csv_file_with_a_mapping(tmp_path):
    path = tmp_path / "tasks.csv"
    lines = ["question,answer,category,split,id"]
    for t in user_agents.toy_tasks(n_train=6, n_test=2):
        lines.append(f"\"{t['input']}\",{t['expected']},{t['category']},{t['split']},{t['id']}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = run(tmp_path, tasks=str(path), mapping={"input": "question", "expected": "answer"}, subsets=2, epochs=1)
    assert res.status == "done"
    assert len(q(res.session, "select id from tasks")) == 8


def test_a_loopback_server_answers_the_agent_and_its_calls_are_in_the_ledger(tmp_path, fake_openai):
    fake_openai.responder = lambda body: ok("Answer: teal")
    res = run(tmp_path, models={"agent": {"model": "openai/glorp-1", "api_base": fake_openai.url}},
              subsets=2, epochs=1)
    assert res.status == "done"
    agent_rows = q(res.session, "select model, cache_hit from ledger where role = 'agent'")
    paid = [r for r in agent_rows if not r["cache_hit"]]
    assert {r["model"] for r in agent_rows} == {"openai/glorp-1"}
    assert len(fake_openai.requests) == len(paid) > 0  # every request the server saw is in the ledger
    assert all(b["messages"][0]["role"] == "system" for b in fake_openai.bodies())
    colour = [t["id"] for t in user_agents.toy_tasks() if t["category"] == "colour" and t["split"] == "test"]
    scores = q(res.session, "select task_id, score from trajectories where phase = 'test'")
    assert {r["task_id"]: r["score"] for r in scores if r["task_id"] in colour} == dict.fromkeys(colour, 1.0)


def test_a_tool_calling_agent_on_a_loopback_server(tmp_path, fake_openai):
    def reply(body):
        if body["messages"][-1]["role"] == "tool":
            return ok("Answer: teal")
        assert body["tools"][0]["function"]["name"] == "lookup"
        return tool_call("lookup", {"word": "glorp"})

    fake_openai.responder = reply
    res = run(tmp_path, agent=user_agents.tool_agent, models={"agent": "openai/glorp-1"}, api_base=fake_openai.url,
              subsets=2, epochs=1)
    assert res.status == "done"
    steps = json.loads(q(res.session, "select steps_json from trajectories limit 1")[0]["steps_json"])
    assert [s[0] for s in steps] == ["input", "tool_call", "observation", "action", "answer"]
    assert steps[1][1] == 'lookup({"word": "glorp"})'


def test_resume_from_the_cli_after_a_budget_stop_pays_nothing_twice(tmp_path, capsys):
    first = run(tmp_path, budget_tokens=3000)
    assert first.status == "budget" and first.module is None
    paid_before = {r["cache_key"] for r in q(first.session, "select cache_key from ledger where cache_hit = 0 "
                                                              "and error is null")}
    assert main(["resume", str(first.session), "--headless", "--budget-tokens", "100000000"]) == 0
    status = q(first.session, "select status, final_module_id from session")[0]
    assert status["status"] == "done" and status["final_module_id"]
    paid_after = [r["cache_key"] for r in q(first.session, "select cache_key from ledger where cache_hit = 0 "
                                                             "and error is null")]
    assert paid_before <= set(paid_after) and len(paid_after) == len(set(paid_after))  # no call paid twice


def test_optimize_again_with_the_same_session_resumes_it(tmp_path):
    first = run(tmp_path, budget_tokens=3000)
    assert first.status == "budget"
    again = run(tmp_path)  # same session path, no budget this time
    assert again.status == "done" and again.module
    hits = q(again.session, "select count(*) n from ledger where cache_hit = 1")[0]["n"]
    assert hits > 0  # what the first call paid for came from the cache
    with pytest.raises(SessionError, match="holds other tasks"):
        run(tmp_path, tasks=user_agents.toy_tasks(n_train=6, n_test=2))


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import toy_suite, user_agents, fgo_engine
from fgo_engine import events as ev

def sink(e):
    if isinstance(e, ev.SubsetDone):
        print("SUBSET DONE", flush=True)

fgo_engine.optimize(user_agents.toy_tasks(), user_agents.toy_agent, user_agents.exact_scorer,
                    instruction={start!r}, model="fgo-sim/medium:latency=0.02", subsets=3, epochs=2,
                    workers=1, session={path!r}, sinks=[sink])
print("FINISHED", flush=True)
"""


def test_a_killed_api_run_resumes_with_fgo_resume(tmp_path, capsys):
    path = tmp_path / "killed.db"
    script = SCRIPT.format(tests=str(TESTS), start=START, path=str(path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env)
    seen = []
    assert p.stdout is not None
    for line in p.stdout:
        seen.append(line)
        if "SUBSET DONE" in line:
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, "".join(seen)
    assert q(path, "select status from session")[0]["status"] == "running"
    assert main(["resume", str(path), "--headless"]) == 0
    assert q(path, "select status from session")[0]["status"] == "done"
    assert q(path, "select count(*) n from ledger where role = 'agent' and cache_hit = 0")[0]["n"] > 0


def test_resume_from_the_cli_says_when_the_agent_cannot_be_imported(tmp_path, capsys):
    notes = []

    def sink(e):
        if type(e).__name__ == "RunStarted":
            notes.extend(e.projection["notes"])

    res = run(tmp_path, agent=lambda module, task, llm: user_agents.toy_agent(module, task, llm), budget_tokens=3000,
              sinks=[sink])
    assert res.status == "budget"
    assert any("your agent cannot be imported by name" in n and "`fgo resume` cannot continue" in n for n in notes)
    assert main(["resume", str(res.session), "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot be imported by name" in err and "fgo_engine.optimize(" in err and "session=" in err
    assert run(tmp_path, agent=lambda module, task, llm: user_agents.toy_agent(module, task, llm)).status == "done"


# --- the user's mistakes -------------------------------------------------------------


@pytest.mark.parametrize("agent, scorer, match", [
    (lambda module, task: "x", user_agents.exact_scorer, r"agent .* cannot be called as agent\(module, task, llm\)"),
    (user_agents.toy_agent, lambda answer: 1.0, r"scorer .* cannot be called as scorer\(answer, task\)"),
    ("not callable", user_agents.exact_scorer, "agent must be a callable"),
])
def test_a_wrong_signature_is_refused_before_anything_is_written(tmp_path, agent, scorer, match):
    with pytest.raises(ConfigError, match=match):
        run(tmp_path, agent=agent, scorer=scorer)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scorer, match", [
    (lambda answer, task: "yes", r"returned 'yes' on task tr0; it must return a number in \[0, 1\]"),
    (lambda answer, task: 2.0, r"returned 2.0 on task tr0"),
    (lambda answer, task: float("nan"), r"returned nan"),
    (lambda answer, task: 1 / 0, r"your scorer raised on task tr0: ZeroDivisionError"),
])
def test_a_scorer_that_fails_its_first_check_writes_nothing(tmp_path, scorer, match):
    with pytest.raises(UserCodeError, match=match) as info:
        run(tmp_path, scorer=scorer)
    assert info.value.task_id == "tr0"
    assert list(tmp_path.iterdir()) == []


def test_bad_tasks_are_one_line_errors(tmp_path):
    with pytest.raises(TaskFileError, match=r"tasks, item 2: missing key 'expected'"):
        run(tmp_path, tasks=[{"id": "a", "input": "x", "expected": "y"}, {"id": "b", "input": "x"}])
    with pytest.raises(ConfigError, match="unknown field 'question'"):
        run(tmp_path, mapping={"question": "input"})
    with pytest.raises(ConfigError, match="models: unknown role 'critic'"):
        run(tmp_path, models={"critic": "fgo-sim/medium"})
    assert list(tmp_path.iterdir()) == []


def _breaks_on(task_id):
    def agent(module, task, llm):
        if task["id"] == task_id:
            raise ValueError(f"my agent cannot read {task_id}")
        return user_agents.toy_agent(module, task, llm)
    return agent


def test_an_agent_that_raises_stops_the_run_with_its_traceback_in_the_log(tmp_path):
    with pytest.raises(UserCodeError, match=r"your agent raised on task tr4: ValueError: my agent cannot read tr4") as info:
        run(tmp_path, agent=_breaks_on("tr4"))
    err = info.value
    assert err.task_id == "tr4"
    assert "in agent" in err.user_traceback and "raise ValueError" in err.user_traceback
    log = (tmp_path / "s.log").read_text(encoding="utf-8")
    assert "task tr4: your agent raised ValueError" in log and "raise ValueError(f\"my agent cannot read" in log
    status = q(tmp_path / "s.db", "select status from session")[0]["status"]
    assert status == "failed"
    # stopped: later tasks were not run (no agent call after the failure for tr4's subset's next epoch)
    assert not q(tmp_path / "s.db", "select * from trajectories where phase = 'test'")


def test_on_error_skip_counts_the_task_failed_and_says_so(tmp_path):
    res = run(tmp_path, agent=_breaks_on("tr4"), on_error="skip")
    assert res.status == "done" and res.skipped == ["tr4"]
    rows = q(res.session, "select score, error from trajectories where task_id = 'tr4'")
    assert rows and all(r["score"] == 0.0 and "my agent cannot read tr4" in r["error"] for r in rows)
    assert "counts as failed (on_error='skip')" in (tmp_path / "s.log").read_text(encoding="utf-8")


def test_a_scorer_value_out_of_range_during_the_run_stops_it(tmp_path):
    def scorer(answer, task):
        return 1.0 if answer.lower() == task["expected"] else 7.0

    with pytest.raises(UserCodeError, match=r"the scorer returned 7.0 on task \w+; it must return a number"):
        run(tmp_path, scorer=scorer)
    assert q(tmp_path / "s.db", "select status from session")[0]["status"] == "failed"


def test_the_instruction_from_a_file_and_progress_on_stdout(tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(START + "\n", encoding="utf-8")
    res = run(tmp_path, instruction=prompt, subsets=2, epochs=1, progress=True)
    assert res.status == "done"
    cfg = json.loads(q(res.session, "select config_json from session")[0]["config_json"])
    assert cfg["instruction"] == START
    out = capsys.readouterr().out
    assert "subset 0 done" in out and "finished: done" in out
    with pytest.raises(ConfigError, match="instruction file not found"):
        run(tmp_path, instruction=tmp_path / "missing.txt", name="other.db")
    assert not (tmp_path / "other.db").exists()


def test_a_session_from_a_task_file_resumes_from_its_own_tasks(tmp_path, capsys):
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in user_agents.toy_tasks()), encoding="utf-8")
    first = run(tmp_path, tasks=path, budget_tokens=3000)
    assert first.status == "budget"
    path.unlink()  # the session holds the tasks: the file is not read again
    assert main(["resume", str(first.session), "--headless", "--budget-tokens", "100000000"]) == 0
    assert q(first.session, "select status from session")[0]["status"] == "done"
