"""Toolbox modules: Python source of the functions an agent may call.

A toolbox is stored as text, so every operation here is static (``ast``): tool
code is never imported or executed in the app's process — :mod:`fgo_engine.tools.sandbox`
runs it in a child process.

Canonical form (what :func:`render_toolbox` writes and every edit or merge returns):
leading comments / module docstring, then the imports (deduplicated, ``__future__``
first), then the remaining top-level definitions and statements *in their original
order*, separated by two blank lines when a function is involved. Comments directly
above a function travel with it. Only public top-level ``def``\\ s are tools; private
helpers (``_name``) and other statements are kept but not exposed.
"""
from __future__ import annotations

import ast
import copy
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fgo_engine.errors import MalformedOutputError

__all__ = [
    "REPLACE",
    "Tool",
    "ToolboxSource",
    "apply_edits",
    "canonical_source",
    "check_merged_toolbox",
    "merge_toolboxes",
    "parse_edits",
    "parse_toolbox",
    "parse_toolbox_source",
    "render_toolbox",
    "tool_schemas",
    "toolbox_text_for_similarity",
]

REPLACE = "replace"  # edit op produced by parse_edits for a full <toolbox> reply


@dataclass
class Tool:
    """One top-level function. ``source`` includes decorators and the comments
    directly above it; ``params`` are (name, annotation or "", default repr or None),
    with ``*args``/``**kwargs`` spelled with their stars."""

    name: str
    signature: str
    docstring: str
    source: str
    params: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def is_public(self) -> bool:
        return not self.name.startswith("_")


@dataclass
class ToolboxSource:
    """A whole toolbox, split for editing. ``items`` are functions (:class:`Tool`) and
    other top-level statements (source text), in source order."""

    header: str = ""  # leading comments and the module docstring
    imports: list[str] = field(default_factory=list)
    items: list[Tool | str] = field(default_factory=list)

    @property
    def tools(self) -> list[Tool]:
        return [it for it in self.items if isinstance(it, Tool) and it.is_public]

    @property
    def functions(self) -> list[Tool]:
        return [it for it in self.items if isinstance(it, Tool)]

    def index(self, name: str) -> int:
        for i, it in enumerate(self.items):
            if isinstance(it, Tool) and it.name == name:
                return i
        return -1

    def render(self) -> str:
        return render_toolbox(self.items, self.imports, header=self.header)


# ---------------------------------------------------------------------------- parsing


# Deeper than this, the recursive walks over a toolbox (unparse, dump, schemas, merging)
# would hit Python's recursion limit; real tools nest a few dozen levels at most.
MAX_NESTING = 100


def _nesting(tree: ast.AST) -> int:
    """The depth of the syntax tree, measured without recursion."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _parse_module(source: str, what: str = "toolbox") -> ast.Module:
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise MalformedOutputError(
            f"{what} has a syntax error at line {e.lineno}: {e.msg}"
        ) from None
    except RecursionError:
        tree = None
    except (ValueError, MemoryError) as e:  # null bytes, absurd size
        raise MalformedOutputError(f"{what} cannot be parsed: {e}") from None
    if tree is None or _nesting(tree) > MAX_NESTING:
        raise MalformedOutputError(f"{what} is nested too deeply (more than {MAX_NESTING} levels of syntax)")
    return tree


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _make_tool(node: ast.FunctionDef, text: str) -> Tool:
    a = node.args
    params: list[tuple[str, str, str | None]] = []
    positional = a.posonlyargs + a.args
    missing = len(positional) - len(a.defaults)
    defaults: list[ast.expr | None] = [None] * missing + list(a.defaults)
    for arg, d in zip(positional, defaults):
        params.append(_param(arg, d))
    if a.vararg:
        n, ann, _ = _param(a.vararg, None)
        params.append(("*" + n, ann, None))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        params.append(_param(arg, d))
    if a.kwarg:
        n, ann, _ = _param(a.kwarg, None)
        params.append(("**" + n, ann, None))
    sig = f"{node.name}({ast.unparse(a)})"
    if node.returns is not None:
        sig += f" -> {ast.unparse(node.returns)}"
    return Tool(
        name=node.name,
        signature=sig,
        docstring=ast.get_docstring(node) or "",
        source=text,
        params=params,
    )


def _param(arg: ast.arg, default: ast.expr | None) -> tuple[str, str, str | None]:
    ann = ast.unparse(arg.annotation) if arg.annotation is not None else ""
    return (arg.arg, ann, ast.unparse(default) if default is not None else None)


def parse_toolbox_source(source: str) -> ToolboxSource:
    """Split a toolbox into header, imports and items; raises MalformedOutputError
    (with the line number) on a syntax error."""
    tree = _parse_module(source)
    lines = source.splitlines()
    body = list(tree.body)
    out = ToolboxSource()

    def start_of(node: ast.stmt) -> int:
        decos = getattr(node, "decorator_list", None) or []
        return min([node.lineno] + [d.lineno for d in decos])

    spans = [(start_of(n), n.end_lineno or n.lineno) for n in body]
    first = spans[0][0] if spans else len(lines) + 1
    header_lines = [ln.rstrip() for ln in lines[: first - 1]]
    header_parts: list[str] = []
    if any(ln.strip() for ln in header_lines):
        header_parts.append("\n".join(header_lines).strip("\n"))
    if body and _is_docstring(body[0]):
        header_parts.append("\n".join(lines[spans[0][0] - 1 : spans[0][1]]))
        body, spans = body[1:], spans[1:]
    out.header = "\n\n".join(header_parts)

    by_name: dict[str, int] = {}
    prev_end = spans[0][0] - 1 if spans else 0
    for i, (node, (start, end)) in enumerate(zip(body, spans)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            stmt = ast.unparse(node)
            if stmt not in out.imports:
                out.imports.append(stmt)
            prev_end = max(prev_end, end)
            continue
        shares_line = (i > 0 and spans[i - 1][1] >= start) or (
            i + 1 < len(spans) and spans[i + 1][0] <= end
        )
        if shares_line:  # `a = 1; b = 2`: take the exact segment, no comments
            text = ast.get_source_segment(source, node) or ast.unparse(node)
        else:
            lead = [ln.rstrip() for ln in lines[prev_end : start - 1]]
            lead = [ln for ln in lead if ln.strip()]  # comments between statements
            text = "\n".join(lead + [ln.rstrip() for ln in lines[start - 1 : end]])
        prev_end = max(prev_end, end)
        if isinstance(node, ast.FunctionDef):
            tool = _make_tool(node, text)
            if node.name in by_name:  # a later def wins, as it does at run time
                out.items[by_name[node.name]] = None  # type: ignore[call-overload]
            by_name[node.name] = len(out.items)
            out.items.append(tool)
        else:
            out.items.append(text)
    out.items = [it for it in out.items if it is not None]
    return out


def parse_toolbox(source: str) -> list[Tool]:
    """The public tools of a toolbox (top-level ``def``\\ s not starting with ``_``)."""
    return parse_toolbox_source(source).tools


def render_toolbox(
    tools: Sequence[Tool | str], header_imports: Sequence[str], *, header: str = ""
) -> str:
    """Canonical source: header, imports, then the items (functions or raw statements)
    in the given order; two blank lines around functions."""
    imports = list(dict.fromkeys(s.strip() for s in header_imports if s.strip()))
    imports.sort(key=lambda s: 0 if s.startswith("from __future__") else 1)
    blocks: list[str] = []
    if header.strip():
        blocks.append(header.strip("\n"))
    if imports:
        blocks.append("\n".join(imports))
    body = ""
    prev_is_func = None
    for it in tools:
        is_func = isinstance(it, Tool)
        text = (it.source if isinstance(it, Tool) else it).strip("\n")
        if not text.strip():
            continue
        if body:
            body += "\n\n\n" if (is_func or prev_is_func) else "\n"
        body += text
        prev_is_func = is_func
    if body:
        blocks.append(body)
    if not blocks:
        return ""
    text = ""
    for i, block in enumerate(blocks):
        if text:  # one blank line after the header, two before the body
            text += "\n\n" if i == 1 and header.strip() and imports else "\n\n\n"
        text += block
    return text + "\n"


def canonical_source(source: str) -> str:
    """The canonical rendering of a toolbox (stable under parse → render)."""
    return parse_toolbox_source(source).render()


# ---------------------------------------------------------------------------- schemas

_JSON_TYPES = {
    "str": "string", "int": "integer", "float": "number", "bool": "boolean",
    "list": "array", "tuple": "array", "set": "array", "frozenset": "array",
    "List": "array", "Tuple": "array", "Set": "array", "Sequence": "array",
    "Iterable": "array", "dict": "object", "Dict": "object", "Mapping": "object",
    "Path": "string", "bytes": "string",
}


def _annotation_schema(text: str) -> dict[str, Any]:
    """JSON schema for an annotation string; unannotated or unknown → string
    (what an LLM passes), ``Any`` → no constraint."""
    if not text:
        return {"type": "string"}
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return {"type": "string"}
    return _node_schema(node)


def _node_schema(node: ast.expr) -> dict[str, Any]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "int" (quoted)
        return _annotation_schema(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        return _union_schema(_flatten_union(node))
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    if isinstance(node, ast.Subscript):
        base = node.value
        bname = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if bname == "Optional":
            return _node_schema(args[0])
        if bname == "Union":
            return _union_schema(args)
        if bname == "Literal":
            values = [a.value for a in args if isinstance(a, ast.Constant)]
            enum_kind = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
                type(values[0]) if values else str, "string")
            return {"type": enum_kind, "enum": values}
        kind = _JSON_TYPES.get(bname)
        if kind == "array":
            items = args[0] if args and not (isinstance(args[0], ast.Constant)
                                             and args[0].value is Ellipsis) else None
            return {"type": "array", "items": _node_schema(items)} if items is not None else {
                "type": "array"}
        if kind:
            return {"type": kind}
        return {"type": "string"}
    if name in ("Any", "object"):
        return {}
    if name == "None" or (isinstance(node, ast.Constant) and node.value is None):
        return {"type": "null"}
    return {"type": _JSON_TYPES.get(name or "", "string")}


def _flatten_union(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flatten_union(node.left) + _flatten_union(node.right)
    return [node]


def _union_schema(members: list[ast.expr]) -> dict[str, Any]:
    schemas = [s for s in (_node_schema(m) for m in members) if s.get("type") != "null"]
    if not schemas:
        return {}
    if len(schemas) == 1:
        return schemas[0]
    return {"anyOf": schemas}


_SECTION_RE = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Returns?|Raises|Yields|"
                         r"Examples?|Notes?|Example usage)\s*:\s*$", re.I)
_ARG_LINE_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_SPHINX_RE = re.compile(r"^:param\s+(?:[\w\[\], |.]+\s+)?(\w+)\s*:\s*(.*)$")


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(description = first paragraph, {param: text}) from a Google- or Sphinx-style
    docstring."""
    lines = doc.strip("\n").splitlines()
    para: list[str] = []
    for ln in lines:
        if not ln.strip() or _SECTION_RE.match(ln.strip()) or ln.strip().startswith(":param"):
            break
        para.append(ln.strip())
    description = " ".join(para)
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    base_indent = None
    for ln in lines:
        stripped = ln.strip()
        m = _SPHINX_RE.match(stripped)
        if m:
            params[m.group(1)] = m.group(2).strip()
            current, in_args = m.group(1), False
            continue
        sec = _SECTION_RE.match(stripped)
        if sec:
            in_args = sec.group(1).lower() in ("args", "arguments", "parameters", "params",
                                               "keyword args")
            current, base_indent = None, None
            continue
        if not in_args:
            continue
        if not stripped:
            current = None
            continue
        indent = len(ln) - len(ln.lstrip())
        if base_indent is None:
            base_indent = indent
        m = _ARG_LINE_RE.match(stripped)
        if m and indent <= base_indent:
            current = m.group(1)
            params[current] = m.group(3).strip()
        elif current and indent > base_indent:
            params[current] = (params[current] + " " + stripped).strip()
        elif indent <= (base_indent or 0) and not m:
            in_args = False  # prose after the section
    return description, params


def tool_schemas(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """OpenAI/litellm function-calling schemas. Parameters with defaults are optional;
    ``*args``/``**kwargs`` are not exposed; a default is mentioned in the description."""
    out: list[dict[str, Any]] = []
    for t in tools:
        if not t.is_public:
            continue
        description, pdocs = _split_docstring(t.docstring)
        props: dict[str, Any] = {}
        required: list[str] = []
        for name, ann, default in t.params:
            if name.startswith("*"):
                continue
            schema = dict(_annotation_schema(ann))
            text = pdocs.get(name, "")
            if default is not None:
                text = (text + f" (default: {default})").strip()
            else:
                required.append(name)
            if text:
                schema["description"] = text
            props[name] = schema
        out.append({
            "type": "function",
            "function": {
                "name": t.name,
                "description": (description or t.name.replace("_", " "))[:1024],
                "parameters": {"type": "object", "properties": props, "required": required},
            },
        })
    return out


# ---------------------------------------------------------------------------- edits

_EDIT_RE = re.compile(
    r"<(?P<op>add|revise)\s+name\s*=\s*(?P<q>[\"'])(?P<name>[^\"'<>]*)(?P=q)\s*>"
    r"(?P<body>.*?)</(?P=op)\s*>"
    r"|<remove\s+name\s*=\s*(?P<rq>[\"'])(?P<rname>[^\"'<>]*)(?P=rq)\s*(?:/>|>.*?</remove\s*>)",
    re.S | re.I,
)
_TOOLBOX_RE = re.compile(r"<toolbox>(.*?)</toolbox>", re.S | re.I)
_FENCE_RE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.S)


def _clean_code(text: str) -> str:
    m = _FENCE_RE.match(text)
    if m:
        text = m.group(1)
    return textwrap.dedent(text).strip("\n").rstrip() + "\n"


def parse_edits(text: str) -> list[dict[str, str]]:
    """Edits from an optimizer's reply.

    - ``<toolbox>…</toolbox>`` (the last one wins; edit tags are then ignored) becomes a
      single ``{"op": "replace", "name": "*", "source": …}`` edit, which
      :func:`apply_edits` applies as "the new toolbox" and reports as per-tool notes.
    - Otherwise every ``<add name="x">code</add>``, ``<revise name="x">code</revise>``
      and ``<remove name="x"/>`` in order of appearance.

    Code may be wrapped in a Markdown fence. An empty list means the reply proposed no
    recognizable change; the caller decides whether that is an error.
    """
    boxes = _TOOLBOX_RE.findall(text or "")
    if boxes:
        return [{"op": REPLACE, "name": "*", "source": _clean_code(boxes[-1])}]
    edits: list[dict[str, str]] = []
    for m in _EDIT_RE.finditer(text or ""):
        if m.group("op"):
            edits.append({"op": m.group("op").lower(), "name": m.group("name").strip(),
                          "source": _clean_code(m.group("body"))})
        else:
            edits.append({"op": "remove", "name": m.group("rname").strip()})
    return edits


def _function_from_edit(op: str, name: str, code: str) -> tuple[Tool, list[str]]:
    """Validate one add/revise: parses, defines exactly ``name``; imports are allowed."""
    what = f"{op} '{name}'"
    tree = _parse_module(code, what)
    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    others = [n for n in tree.body if not isinstance(
        n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Import, ast.ImportFrom))]
    if len(funcs) != 1 or funcs[0].name != name or isinstance(funcs[0], ast.AsyncFunctionDef):
        found = ", ".join(f.name for f in funcs) or "none"
        raise MalformedOutputError(
            f"{what}: the code must define exactly one function named '{name}' (found: {found})")
    if others:
        raise MalformedOutputError(
            f"{what}: only imports and the function itself are allowed "
            f"(unexpected statement at line {others[0].lineno})")
    parsed = parse_toolbox_source(code)
    return parsed.functions[0], parsed.imports


def apply_edits(source: str, edits: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    """Apply edits and return (new canonical source, notes).

    ``add`` of an existing name revises it, ``revise`` of a missing name adds it, and
    ``remove`` of a missing name is ignored — each reported in the notes. Revised
    functions keep their place; added ones go to the end. Any invalid edit raises
    :class:`MalformedOutputError` and nothing is applied.
    """
    box = parse_toolbox_source(source)
    notes: list[str] = []
    for i, edit in enumerate(edits):
        if not isinstance(edit, dict):
            raise MalformedOutputError(f"edit {i + 1} is not a mapping")
        op = str(edit.get("op", "")).lower()
        name = str(edit.get("name", "")).strip()
        if op == REPLACE:
            new = parse_toolbox_source(str(edit.get("source", "")))
            if not new.tools:
                raise MalformedOutputError("the new toolbox defines no public tool")
            old_names = {t.name: t for t in box.functions}
            new_names = {t.name: t for t in new.functions}
            for n in new_names:
                if n not in old_names:
                    notes.append(f"added {n}")
                elif new_names[n].source != old_names[n].source:
                    notes.append(f"revised {n}")
            notes.extend(f"removed {n}" for n in old_names if n not in new_names)
            box = new
            continue
        if op not in ("add", "revise", "remove"):
            raise MalformedOutputError(f"edit {i + 1}: unknown op {op!r} (add, revise, remove)")
        if not name.isidentifier():
            raise MalformedOutputError(f"edit {i + 1}: {name!r} is not a valid function name")
        idx = box.index(name)
        if op == "remove":
            if idx < 0:
                notes.append(f"remove {name}: no such tool (ignored)")
            else:
                del box.items[idx]
                notes.append(f"removed {name}")
            continue
        tool, imports = _function_from_edit(op, name, str(edit.get("source", "")))
        for imp in imports:
            if imp not in box.imports:
                box.imports.append(imp)
        if idx >= 0:
            box.items[idx] = tool
            notes.append(f"revised {name}" if op == "revise"
                         else f"add {name}: already exists, revised instead")
        else:
            box.items.append(tool)
            notes.append(f"added {name}" if op == "add"
                         else f"revise {name}: no such tool, added instead")
    return box.render(), notes


# ---------------------------------------------------------------------------- merge


def _function_nodes(source: str) -> dict[str, ast.FunctionDef]:
    tree = _parse_module(source)
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _fingerprint(node: ast.FunctionDef) -> str | None:
    """Behavioural identity: arguments (without annotations), decorators and the body
    without its docstring. None for trivial stubs (``pass``/``...``), never merged."""
    body = node.body[1:] if node.body and _is_docstring(node.body[0]) else node.body
    if not body or all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(
            s.value, ast.Constant)) for s in body):
        return None
    args = copy.deepcopy(node.args)
    for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if a is not None:
            a.annotation = None
    return "|".join([ast.dump(args), *(ast.dump(d) for d in node.decorator_list),
                     *(ast.dump(s) for s in body)])


def _assigned_names(stmt_src: str) -> frozenset[str]:
    try:
        tree = ast.parse(stmt_src)
    except SyntaxError:
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        for t in getattr(node, "targets", []) + [getattr(node, "target", None)]:
            if t is not None:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return frozenset(names)


def _used_names(items: Iterable[Tool | str]) -> set[str]:
    used: set[str] = set()
    for it in items:
        text = it.source if isinstance(it, Tool) else it
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        used.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return used


def merge_toolboxes(toolboxes: Sequence[tuple[str, float]]) -> str:
    """Deterministic merge of (source, score) pairs — the non-LLM fallback.

    Toolboxes are visited best score first (ties keep input order). Per function name
    the best toolbox's version is kept; a public tool whose behaviour (see
    :func:`_fingerprint`) equals an already kept one under another name is dropped —
    if other kept code calls the dropped name, an alias ``dropped = kept`` is added so
    nothing breaks. Other top-level statements are kept unless they assign a name an
    earlier (better) toolbox already assigns. Private helpers are merged by name like
    tools (best version wins), which assumes same-named helpers are compatible.
    Raises MalformedOutputError if an input does not parse.
    """
    order = sorted(range(len(toolboxes)), key=lambda i: (-float(toolboxes[i][1]), i))
    header = ""
    imports: list[str] = []
    items: list[Tool | str] = []
    names: set[str] = set()
    prints: dict[str, str] = {}  # fingerprint -> kept tool name
    aliases: dict[str, str] = {}  # dropped name -> kept name
    assigned: set[str] = set()
    stmt_dumps: set[str] = set()
    for i in order:
        src = toolboxes[i][0]
        box = parse_toolbox_source(src)
        nodes = _function_nodes(src)
        header = header or box.header
        imports.extend(s for s in box.imports if s not in imports)
        for it in box.items:
            if isinstance(it, Tool):
                if it.name in names or it.name in aliases:
                    continue
                fp = _fingerprint(nodes[it.name]) if it.is_public else None
                if fp is not None and fp in prints:
                    aliases[it.name] = prints[fp]
                    continue
                if fp is not None:
                    prints[fp] = it.name
                names.add(it.name)
                items.append(it)
            else:
                try:
                    dump = ast.dump(ast.parse(it))
                except SyntaxError:
                    dump = it
                targets = _assigned_names(it)
                if dump in stmt_dumps or (targets and targets & assigned):
                    continue
                stmt_dumps.add(dump)
                assigned |= targets
                items.append(it)
    used = _used_names(items)
    for dropped, kept in aliases.items():
        if dropped in used and dropped not in names:
            items.append(f"{dropped} = {kept}  # merged: same behaviour as {kept}")
    return render_toolbox(items, imports, header=header)


def check_merged_toolbox(merged: str, toolboxes: Sequence[tuple[str, float]]) -> list[str]:
    """Problems with an LLM-written merge, compared with the deterministic merge: a
    syntax error, or tools the inputs had that the merge lost (a behavioural duplicate
    under another name counts as kept). An empty list means the merge passes."""
    try:
        merged_box = parse_toolbox_source(merged)
    except MalformedOutputError as e:
        return [str(e)]
    merged_nodes = _function_nodes(merged)
    merged_prints = {fp for fp in (_fingerprint(n) for n in merged_nodes.values()) if fp}
    merged_names = {t.name for t in merged_box.functions}
    expected = parse_toolbox_source(merge_toolboxes(toolboxes))
    expected_nodes = _function_nodes(expected.render())
    problems = []
    for t in expected.tools:
        if t.name in merged_names:
            continue
        fp = _fingerprint(expected_nodes[t.name])
        if fp is not None and fp in merged_prints:
            continue
        problems.append(f"the merge lost tool {t.name}")
    return problems


# ---------------------------------------------------------------------------- similarity

_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _words(identifier: str) -> list[str]:
    parts = [p for chunk in identifier.split("_") for p in _CAMEL_RE.findall(chunk)]
    out = [identifier]
    out.extend(p.lower() for p in parts if p.lower() != identifier)
    return out


def toolbox_text_for_similarity(source: str) -> str:
    """Names, docstrings and identifiers of a toolbox as plain text for TF-IDF; falls
    back to the raw text when the source does not parse (clustering must not fail)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    names: list[str] = []
    docs: list[str] = []
    mod_doc = ast.get_docstring(tree)
    if mod_doc:
        docs.append(mod_doc)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.extend(_words(node.name))
            doc = ast.get_docstring(node)
            if doc:
                docs.append(doc)
        elif isinstance(node, ast.Name):
            names.extend(_words(node.id))
        elif isinstance(node, ast.Attribute):
            names.extend(_words(node.attr))
        elif isinstance(node, ast.arg):
            names.extend(_words(node.arg))
        elif isinstance(node, ast.alias):
            names.extend(_words(node.name.split(".")[-1]))
    return " ".join(names) + "\n" + "\n".join(docs)
