"""The engine stays usable without the app, and litellm is imported only when needed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


# -- no import circle, function-level imports counted -----------------------------------------


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the project modules it imports anywhere in its body (a function's imports too)."""
    import ast

    mods: dict[str, Path] = {}
    for p in root.glob("fgo_*/**/*.py"):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p

    def owner(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names if a.name.startswith("fgo_")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                if not base.startswith("fgo_"):
                    continue
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else owner(base) for a in node.names]
            else:
                continue
            edges[m].update(t for t in targets if t and t != m)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_circle_counting_function_level_imports():
    edges = _import_graph(ROOT)
    assert len(edges) > 100 and "fgo_engine.run.session" in edges["fgo_cli.main"] | {
        t for m in edges["fgo_cli.main"] for t in edges.get(m, ())}  # the graph sees lazy imports
    assert _cycles(edges) == []


def test_the_circle_check_finds_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_engine_root_and_module_sizes():
    """At most ten modules at the engine's root besides its __init__, none over 800 lines in the
    three packages."""
    root_modules = sorted(p.name for p in (ROOT / "fgo_engine").glob("*.py") if p.name != "__init__.py")
    assert len(root_modules) <= 10, root_modules
    too_long = {str(p.relative_to(ROOT)): n for pkg in ("fgo_engine", "fgo_tui", "fgo_cli")
                for p in (ROOT / pkg).rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800}
    assert too_long == {}
