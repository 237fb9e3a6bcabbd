"""The engine stays usable without the app, and litellm is imported only when needed."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import pkgutil, importlib, sys
import fgo_engine
assert 'litellm' not in sys.modules, 'importing fgo_engine imported litellm'
for m in pkgutil.walk_packages(fgo_engine.__path__, 'fgo_engine.'):
    if m.name == 'fgo_engine.llm.sim.provider':
        continue  # the litellm custom handler: imported lazily by the gateway
    importlib.import_module(m.name)
bad = sorted(k for k in sys.modules if k == 'textual' or k.startswith('textual.') or k.startswith('fgo_tui'))
print(','.join(bad))
"""


def test_engine_never_imports_textual_or_the_app():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_environment_defaults_set_before_litellm():
    code = ("import os, fgo_engine; print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP']); "
            "print(os.path.isdir(os.environ['TIKTOKEN_CACHE_DIR']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


# What reading a session file looks like: SQL text, a database driver, the store's own readers.
_STORE_READS = {"query", "rows", "get", "count", "session_info", "meta_get", "cache_get"}


def _store_reads(path):
    """(line, what) for each way a module reaches session data without the query layer."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue  # annotations may name the Store type
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in ("sqlite3", "sqlite_utils") or name == "fgo_engine.persistence.store":
                    found.append((node.lineno, f"imports {name}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if " from " in node.value.lower() and node.value.lower().lstrip().startswith("select "):
                found.append((node.lineno, "SQL text"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            if node.func.attr in _STORE_READS and "store" in name.lower():
                found.append((node.lineno, f"{name}.{node.func.attr}()"))
    return found


def test_the_app_reads_sessions_only_through_the_query_layer():
    from pathlib import Path

    import fgo_tui

    root = Path(fgo_tui.__file__).parent
    offences = [f"{p.relative_to(root)}:{line}: {what}" for p in sorted(root.rglob("*.py"))
                for line, what in _store_reads(p)]
    assert offences == []


def test_the_store_read_check_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom fgo_engine.persistence.store import Store\nif TYPE_CHECKING:\n    import sqlite_utils\n"
                   "def f(ctl):\n    ctl.store.rows('modules')\n    return 'select id from modules'\n")
    assert [what for _, what in _store_reads(bad)] == ["imports sqlite3", "imports fgo_engine.persistence.store",
                                                        "store.rows()", "SQL text"]
