"""The response cache: one mechanism (the session's cache table, which shows an answer from
the moment it is queued), masked like every other write, and a resumed run pays nothing twice."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from fgo_engine.config import ROLES, RoleConfig
from fgo_engine.llm.gateway import Gateway
from fgo_engine.persistence.store import Store

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Repeat the key."}]
SECRET = "sk-test-ECHOED-" + "q7" * 16


def _gateway(store: Store) -> Gateway:
    rc = RoleConfig(model="openai/gpt-4o-mini", api_key=SECRET,
                    params={"mock_response": f"Sure, the key is {SECRET} (and again: {SECRET})."})
    return Gateway({r: rc for r in ROLES}, store=store)


def _file_text(path: Path) -> str:
    """Every cell of the session file, as one text (after close: the WAL is checkpointed)."""
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(str(cell) for t in tables for row in con.execute(f"select * from {t}") for cell in row)
    finally:
        con.close()


def test_a_key_echoed_in_a_completion_is_masked_in_the_cache(tmp_path):
    path = tmp_path / "s.db"
    store = Store.create(path, name="s", config={})
    try:
        first = _gateway(store).complete("agent", MSGS)
        assert not first.cached
        cached = store.cache_get(next(iter(r["key"] for r in store.rows("cache"))))
        assert cached is not None and SECRET not in str(cached)
    finally:
        store.close()
    text = _file_text(path)
    assert "the key is" in text  # the answer is cached ...
    assert SECRET not in text and SECRET not in path.read_bytes().decode("utf-8", "replace")  # ... masked


def test_a_resumed_run_pays_nothing_twice(tmp_path):
    path = tmp_path / "s.db"
    with Store.create(path, name="s", config={}) as store:
        g = _gateway(store)
        first = g.complete("agent", MSGS)
        assert not first.cached and g.total.prompt_tokens > 0
    with Store.open(path) as store:
        g = _gateway(store)  # its totals start from the session's ledger
        spent, hits = (g.total.prompt_tokens, g.total.cost), g.total.cache_hits
        again = g.complete("agent", MSGS)
        assert again.cached and (g.total.prompt_tokens, g.total.cost) == spent and g.total.cache_hits == hits + 1
        assert again.text.startswith("Sure, the key is") and SECRET not in again.text
        assert store.count("cache") == 1


def test_the_cache_is_the_store_s_only(tmp_path):
    """A gateway with a session keeps no answers of its own: what it replays is what the
    session holds (masked), so a run and its resume see the same text."""
    with Store.create(tmp_path / "s.db", name="s", config={}) as store:
        g = _gateway(store)
        g.complete("agent", MSGS)
        assert g._mem_cache == {}
        second = g.complete("agent", MSGS)
        assert second.cached and SECRET not in second.text
