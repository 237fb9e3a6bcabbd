"""Only fgo_engine/persistence/ knows the schema: no other module writes SQL, names a table
or reaches the store's writer. Callers say what happened (``writes.merge_node_backtested``)
or what they want to read (``queries.merge_nodes``)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import fgo_cli
import fgo_engine
import fgo_tui
from fgo_engine.persistence.schema import TABLES
from fgo_engine.persistence.store import Store

ROOTS = [Path(m.__file__).parent for m in (fgo_engine, fgo_cli, fgo_tui)]
PERSISTENCE = Path(fgo_engine.__file__).parent / "persistence"
BENCHMARKS = Path(fgo_engine.__file__).parent.parent / "benchmarks"

_TABLE = "|".join(sorted(TABLES, key=len, reverse=True))
# SQL in a string: a statement's keywords, or a table named after a clause that takes one
_SQL = [
    (re.compile(r"\binsert\s+(or\s+\w+\s+)?into\b", re.I), "insert into"),
    (re.compile(r"\breplace\s+into\b", re.I), "replace into"),
    (re.compile(r"\bselect\b[\s\S]+?\bfrom\b", re.I), "select ... from"),
    (re.compile(r"\bupdate\s+[\"'`\[]?\w+[\"'`\]]?\s+set\b", re.I), "update ... set"),
    (re.compile(r"\bdelete\s+from\b", re.I), "delete from"),
    (re.compile(r"\b(create|drop|alter)\s+(table|index|view|trigger)\b", re.I), "DDL"),
    (re.compile(r"^\s*pragma\s+\w+", re.I), "pragma"),
    (re.compile(r"\bjson_extract\s*\(", re.I), "json_extract"),
    (re.compile(rf"\b(from|into|join|update|table)\s+[\"'`\[]?({_TABLE})\b", re.I), "a table in SQL"),
]
# the store's and sqlite-utils' ways to write or read a table by name
_TABLE_METHODS = {"insert_many", "insert_all", "upsert", "upsert_all", "delete_where", "rows", "rows_where",
                  "count_where", "table", "execute", "executemany"}
# names dicts and lists have too: a table name passed to them counts on a store or a database only
_COMMON_METHODS = {"insert", "update", "delete", "get", "count"}
_DATABASES = ("store", "db", "database", "conn")
# the store's writer and the methods it no longer has: reached from outside persistence, a caller
# would be writing rows itself
_WRITER = {"_writes", "_writer", "write", "commit", "meta_set", "cache_put", "set_status", "query", "insert_many"}


def _receiver(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _receiver(node.func)
    return ""


def _sql(text: str) -> str | None:
    return next((what for pattern, what in _SQL if pattern.search(text)), None)


def _import(node: ast.Import | ast.ImportFrom) -> list[str]:
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    return [f"imports {n}" for n in names if n.split(".")[0] == "sqlite_utils"
            or n in ("fgo_engine.persistence.writer", "fgo_engine.persistence.schema")]


def _call(node: ast.Call) -> list[str]:
    if not isinstance(node.func, ast.Attribute):
        return []
    method, receiver = node.func.attr, _receiver(node.func.value)
    first = node.args[0] if node.args else None
    if isinstance(first, ast.Constant) and first.value in TABLES and (method in _TABLE_METHODS or (
            method in _COMMON_METHODS and any(d in receiver.lower() for d in _DATABASES))):
        return [f"{receiver}.{method}({first.value!r})"]
    if method in _WRITER and "store" in receiver.lower():
        return [f"{receiver}.{method}()"]
    if method == "connect" and receiver == "sqlite3":
        return ["sqlite3.connect()"]
    return []


def _node(node: ast.AST, docstrings: set[int]) -> list[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _import(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
        what = _sql(node.value)
        return [f"SQL text ({what}): {node.value[:40]!r}"] if what else []
    if isinstance(node, ast.JoinedStr):  # an f-string: its literal parts around placeholders
        what = _sql("".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
                            for v in node.values))
        return [f"SQL text ({what}) in an f-string"] if what else []
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
            and node.slice.value in TABLES and _receiver(node.value) in _DATABASES:
        return [f"{_receiver(node.value)}[{node.slice.value!r}]"]
    return []


def offences(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each place a module writes SQL or touches a table without the persistence layer."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(getattr(node, "lineno", 0), what) for node in ast.walk(tree) for what in _node(node, docstrings)]


def _sources() -> list[Path]:
    files = [p for root in ROOTS for p in sorted(root.rglob("*.py")) if PERSISTENCE not in p.parents]
    return files + sorted(BENCHMARKS.glob("*.py"))


def test_no_module_outside_persistence_writes_sql_or_names_a_table():
    assert len(_sources()) > 50  # the scan sees the whole code base
    bad = [f"{p}:{line}: {what}" for p in _sources() for line, what in offences(p)]
    assert bad == []


def test_the_table_list_is_the_schema(tmp_path):
    with Store.create(tmp_path / "s.db", name="s", config={}) as s:
        names = {r["name"] for r in s.query("select name from sqlite_master where type = 'table'")}
    assert TABLES == names - {"sqlite_sequence"}


def test_the_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""A docstring may say: select the rows from the ledger."""\n'
        "import sqlite_utils\n"
        "from fgo_engine.persistence.writer import encode_row\n"
        "def f(rt, db, key, t):\n"
        "    rt.store.insert('merge_nodes', {})\n"
        "    rt.store._writes().update('x', 1, {})\n"
        "    db.execute('insert or replace into cache (key) values (?)', [key])\n"
        "    db['reviews'].insert({})\n"
        "    rt.store.commit(lambda d: None)\n"
        "    x = 'SELECT count(*)\\n  FROM ledger'\n"
        "    y = f'update {t} set a = 1'\n"
        "    z = 'delete from events where 1'\n"
        "    w = \"json_extract(payload_json, '$.ref')\"\n"
        "    v = 'left join modules m on m.id = n.module_id'\n"
        "    return rt.store.rows('subsets'), sqlite3.connect('s.db'), {'tasks': 3}.get('n')\n")
    assert [(line, what.split(":")[0]) for line, what in sorted(offences(bad))] == [
        (2, "imports sqlite_utils"), (3, "imports fgo_engine.persistence.writer"),
        (5, "store.insert('merge_nodes')"), (6, "store._writes()"),
        (7, "SQL text (insert into)"), (8, "db['reviews']"), (9, "store.commit()"),
        (10, "SQL text (select ... from)"), (11, "SQL text (update ... set) in an f-string"),
        (12, "SQL text (delete from)"), (13, "SQL text (json_extract)"), (14, "SQL text (a table in SQL)"),
        (15, "sqlite3.connect()"), (15, "store.rows('subsets')"),
    ]
