"""Text is masked first and cut after (issue 23 item 7): a cut never leaves a key's first
characters behind, in the console, in events' excerpts or in error lines."""
from __future__ import annotations

import io
import json
import sqlite3

import pytest

from fgo_cli.main import main
from fgo_engine import events as ev
from fgo_engine import redaction
from fgo_engine.method.resample import excerpt
from fgo_engine.run.console import ConsolePrinter

KEY = "sk-cut-SECRET-7373737373737373737373"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("CUT_TEST_API_KEY", KEY)
    redaction.refresh()
    yield KEY
    monkeypatch.delenv("CUT_TEST_API_KEY")
    redaction.refresh()


def test_clip_masks_before_it_cuts(key):
    text = "x" * 70 + key + " and more"
    for keep in ("head", "tail", "both"):
        out = redaction.clip(text, 80, keep=keep)
        assert key[:6] not in out, keep
    assert redaction.clip(text, 80).startswith("x" * 70 + "***")


def test_a_key_cut_short_elsewhere_is_masked_too(key):
    # a child process or a provider cut the text before this process saw it
    assert redaction.scrub("echo: " + key[:20] + "\n... [truncated]") == "echo: ***\n... [truncated]"


def test_a_bearer_credential_never_held_here_is_masked():
    shown = redaction.scrub("the reply said: Authorization: Bearer sk-proj-Zq81Lm20Xc93Vb47Nn56Qw")
    assert "Zq81" not in shown and "Bearer ***" in shown
    assert redaction.scrub("a bearer of good news arrived yesterday") == "a bearer of good news arrived yesterday"


def test_the_rejected_replys_excerpt_keeps_no_prefix(key):
    reply = "a" * 140 + key + "b" * 400
    assert key[:6] not in excerpt(reply)


def test_the_console_line_of_an_agent_step_keeps_no_prefix(key):
    out = io.StringIO()
    printer = ConsolePrinter(out, verbose=True, heartbeat=0)
    printer(ev.AgentStep("subset", "0", "t1", "obs", "I will call with " + "z" * 50 + key))
    printer(ev.Log("warning", "the reply said: Bearer " + "Qx7" * 10))
    shown = out.getvalue()
    assert key[:6] not in shown and "Qx7Qx7" not in shown


@pytest.mark.parametrize("name,secret", [
    ("OPENAI_API_KEY", True), ("HF_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True), ("Authorization", True),
    ("X-Api-Key", True), ("Cookie", True), ("api_key", True), ("password", True), ("key", True),
    ("api_key_env", False), ("HF_HOME", False), ("TIKTOKEN_CACHE_DIR", False), ("max_tokens", False),
    ("budget_tokens", False), ("X-Trace", False), ("extra_headers", False),
])
def test_one_rule_for_secret_names(name, secret):
    assert redaction.is_secret_name(name) is secret


def test_a_key_echoed_in_a_long_reply_is_neither_stored_nor_printed_in_part(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUT_TEST_API_KEY", KEY)
    redaction.refresh()
    # agent steps are cut at 400 characters, the console at 80, rejected excerpts keep 150 + 150
    reply = "Answer: teal " + "w" * 62 + KEY + "w" * 300 + KEY
    roles = {r: {"model": "openai/gpt-4o-mini", "api_key_env": "CUT_TEST_API_KEY",
                 "params": {"mock_response": reply}} for r in ("agent", "evaluator", "optimizer", "merger")}
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"suite": "toy", "subsets": 1, "epochs": 1, "roles": roles}))
    path = tmp_path / "s.db"
    main(["run", "--config", str(cfg), "--headless", "--session", str(path), "-v"])
    out = capsys.readouterr()
    con = sqlite3.connect(path)
    excerpts = [r[0] for r in con.execute("select payload_json from events where kind = 'RejectedOutput'")]
    every_event = [r[0] for r in con.execute("select payload_json from events")]
    con.close()
    assert excerpts  # the replies were rejected, with an excerpt
    assert "teal " + "w" * 20 in out.out + out.err  # -v printed the agent's steps
    assert KEY[:6] not in out.out + out.err
    for payload in every_event:  # the excerpts and errors keep no part of the key
        assert KEY[:6] not in payload, payload[:200]
    for p in tmp_path.iterdir():  # nor does any file: the session, its cache, its log
        if p.name != "c.json":
            assert KEY[:6].encode() not in p.read_bytes(), p.name
    redaction.refresh()


def test_the_apps_short_lines_keep_no_prefix(key):
    from fgo_tui.model.state import short

    shown = short("the tool said " + "q" * 20 + key, 50)
    assert key[:6] not in shown and shown.startswith("the tool said")
    assert short("exactly ten", 11) == "exactly ten"
