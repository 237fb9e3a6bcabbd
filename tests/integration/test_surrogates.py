"""Text no UTF-8 store takes (a lone surrogate, "bad\\udcff") from a model or a tool is stored
escaped and the run goes on; `fgo resume` reads it back (issue 23 item 9)."""
from __future__ import annotations

import sqlite3

import pytest

from fgo_cli.main import main
from fgo_engine.tools.sandbox import run_tool
from tests.fake_openai import FakeOpenAI, ok

LONE = "bad\udcff"


@pytest.fixture
def server():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def _rows_with_escape(db) -> int:
    con = sqlite3.connect(db)
    n = 0
    for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
        for row in con.execute(f'select * from "{table}"'):
            n += sum(isinstance(v, str) and "bad\\udcff" in v for v in row)
    con.close()
    return n


def test_a_model_reply_with_a_lone_surrogate_is_stored_escaped(tmp_path, capsys, monkeypatch, server):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    server.responder = lambda body: ok(f"I think so.\nAnswer: {LONE}")
    db = tmp_path / "s.db"
    args = ["--suite", "invoices", "--model", "openai/fake", "--api-base", server.url, "--method", "vanilla",
            "--option", "n_train=2", "--option", "n_test=1", "--headless", "--session", str(db)]
    code = main(["run", *args])
    out = capsys.readouterr()
    assert code == 0, out
    assert "UnicodeEncodeError" not in out.out + out.err
    assert _rows_with_escape(db) > 0  # recorded as it came, escaped
    assert main(["resume", str(db), "--headless"]) == 0, capsys.readouterr()


def test_a_tool_returning_a_lone_surrogate_gives_storable_text():
    src = ("import sys\n"
           "def f():\n"
           "    print('printed \\udcff')\n"
           "    return 'bad\\udcff'\n"
           "def g():\n"
           "    raise ValueError('worse \\udcfe')\n")
    r = run_tool(src, "f", {}, sandbox="strict")
    assert r.ok and r.value == "bad\\udcff" and "printed \\udcff" in r.stdout
    e = run_tool(src, "g", {}, sandbox="strict")
    assert e.error == "ValueError: worse \\udcfe"
    for text in (r.value, r.stdout, e.error, e.traceback):
        text.encode("utf-8")  # storable
