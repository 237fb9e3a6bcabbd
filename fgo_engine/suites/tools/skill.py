"""How the simulated LLM plays the tools suite, and how it writes and merges toolboxes.

The agent side reads only the conversation. It parses the question, and (when
competent) calls the tools its task needs with the right arguments, one call per turn,
reading each result from the tool messages — results of real sandboxed execution, so a
broken tool gives a wrong answer. On each turn it replays its plan against the tool
results it already has, so no state is kept between calls.

* competent, every needed tool offered → the plan, with tools;
* competent although a tool is missing (a lucky episode) → it reads the file with
  ``read_file`` and works the step out itself; a file too long to read whole defeats it;
* not competent → reads the main file and guesses.

The optimizer side (:meth:`ToolsSkill.revise_toolbox`) adds the tool each suggestion
names, now and then in a buggy version; the merger side unions toolboxes with
:func:`fgo_engine.tools.toolbox.merge_toolboxes`, losing a tool now and then when it merges
many at once.
"""
from __future__ import annotations

import ast
import functools
import json
import random
import re
from collections.abc import Callable
from typing import Any

from fgo_engine.errors import MalformedOutputError
from fgo_engine.llm.sim.skills import BaseSkill, cue_covered
from fgo_engine.suites.tools.data import (
    TEMPLATES,
    WEEKDAYS,
    decimals_asked,
    fmt_number,
    fmt_value,
    parse_question,
    parse_table,
    ref_add_days,
    ref_aggregate,
    ref_convert,
    ref_days_between,
    ref_group_totals,
    ref_json_get,
    ref_lookup,
    ref_search,
    ref_weekday,
)
from fgo_engine.suites.tools.library import BUGGY, KNOWLEDGE, TOOL_NAME, TOOL_SOURCE
from fgo_engine.tools import toolbox
from fgo_engine.types import Knowledge

BUG_RATE = 0.08  # chance the optimizer writes a tool with a bug in it
MERGE_LOSS = 0.08  # per toolbox beyond two in one merge, chance each tool is lost
FILE_CAPS = {"tools.csv_aggregate", "tools.csv_group", "tools.row_lookup", "tools.text_search",
             "tools.json_query"}
TARGET_UNITS = {"kilograms": "kg", "centimetres": "cm", "metres": "m"}


class _Need(Exception):
    """The plan needs a tool call it has no result for yet."""

    def __init__(self, name: str, args: dict[str, Any]):
        super().__init__(name)
        self.name, self.arguments = name, args


class _Stuck(Exception):
    """The plan cannot go on (an error result, an unreadable file): guess."""


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _content(m: Any) -> str:
    c = _get(m, "content")
    if isinstance(c, list):
        return "\n".join(str(_get(p, "text") or "") for p in c)
    return c or ""


def tool_history(messages: list[Any]) -> list[tuple[str, dict[str, Any], str | None]]:
    """(tool name, arguments, result text or None) for every tool call so far, in order."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    results: dict[str, str] = {}
    for m in messages:
        role = _get(m, "role")
        if role == "assistant":
            for tc in _get(m, "tool_calls") or []:
                fn = _get(tc, "function") or {}
                raw = _get(fn, "arguments")
                try:
                    args = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
                except (TypeError, ValueError):
                    args = {}
                calls.append((str(_get(tc, "id") or ""), str(_get(fn, "name") or ""), args))
        elif role == "tool":
            results[str(_get(m, "tool_call_id") or "")] = _content(m)
    return [(name, args, results.get(cid)) for cid, name, args in calls]


def _decode(text: str) -> Any:
    text = text.split("\n[printed output]\n", 1)[0]
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Ctx:
    """Replays the plan against the tool results so far."""

    def __init__(self, history: list[tuple[str, dict[str, Any], str | None]], available: set[str]):
        self.history = history
        self.available = available
        self.i = 0
        self.reads: dict[str, str] = {}

    def call(self, name: str, args: dict[str, Any]) -> str:
        if self.i < len(self.history):
            hname, _, result = self.history[self.i]
            self.i += 1
            if hname != name or result is None:
                raise _Stuck(f"unexpected history at call {self.i}")
            return result
        raise _Need(name, args)

    def use(self, cap: str, **args: Any) -> Any:
        if cap in self.available:
            text = self.call(TOOL_NAME[cap], args)
            if text.startswith("Error:"):
                raise _Stuck(text)
            return _decode(text)
        return self.mental(cap, args)

    def read(self, path: str) -> str:
        if path not in self.reads:
            text = self.call("read_file", {"path": path})
            if text.startswith("Error:") or "[truncated:" in text or "[observation shortened" in text:
                raise _Stuck("cannot read the whole file")
            self.reads[path] = text
        return self.reads[path]

    def mental(self, cap: str, a: dict[str, Any]) -> Any:
        """Work a step out without the tool, from the file text read with read_file."""
        try:
            if cap in FILE_CAPS:
                text = self.read(a["path"])
                if cap == "tools.text_search":
                    return ref_search(text, a["pattern"])
                if cap == "tools.json_query":
                    return ref_json_get(text, a["key_path"])
                rows = parse_table(a["path"], text)
                if cap == "tools.csv_aggregate":
                    return ref_aggregate(rows, a["column"], a["op"], a.get("where_column"), a.get("where_value"))
                if cap == "tools.csv_group":
                    return ref_group_totals(rows, a["group_column"], a["value_column"])
                row = ref_lookup(rows, a["column"], a["value"])
                if row is None:
                    raise _Stuck("no such record")
                return row
            if cap == "tools.date_diff":
                return ref_days_between(a["start"], a["end"])
            if cap == "tools.date_add":
                return ref_add_days(a["date_text"], a["days"])
            if cap == "tools.weekday":
                return ref_weekday(a["date_text"])
            if cap == "tools.unit_convert":
                return ref_convert(a["value"], a["from_unit"], a["to_unit"])
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise _Stuck(str(exc)) from None
        raise _Stuck(f"no way to do {cap}")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise _Stuck(f"not a number: {v!r}") from None


def _field(row: Any, key: str) -> Any:
    if not isinstance(row, dict) or key not in row:
        raise _Stuck(f"no field {key!r}")
    return row[key]


def _matches(res: Any) -> list[dict[str, Any]]:
    if not isinstance(res, dict) or not isinstance(res.get("matches"), list) or not res["matches"]:
        raise _Stuck("no matching line")
    return res["matches"]


def solve(kind: str, p: dict[str, str], question: str, ctx: _Ctx) -> str:
    """The answer, computed step by step through ``ctx`` (raises _Need for the next call)."""
    solver = _SOLVERS.get(kind)
    if solver is None:
        raise _Stuck(f"unknown kind {kind}")
    return solver(kind, p, decimals_asked(question), ctx)


def _solve_agg(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    op = {"agg_sum": "sum", "agg_mean": "mean", "agg_count": "count", "agg_max": "max"}[kind]
    v = ctx.use("tools.csv_aggregate", path=p["file"], column=p.get("column", p["where_column"]), op=op,
                where_column=p["where_column"], where_value=p["where_value"])
    return fmt_number(_num(v), dec)


def _solve_agg_top(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    totals = ctx.use("tools.csv_group", path=p["file"], group_column=p["group_column"], value_column=p["column"])
    if not isinstance(totals, dict) or not totals:
        raise _Stuck("no totals")
    return max(totals, key=lambda k: _num(totals[k]))


def _solve_date_span(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    row = ctx.use("tools.row_lookup", path=p["file"], column="project", value=p["name"])
    return fmt_number(_num(ctx.use("tools.date_diff", start=_field(row, "start"), end=_field(row, "end"))), None)


def _solve_date_due(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    row = ctx.use("tools.row_lookup", path=p["file"], column="invoice", value=p["invoice"])
    days = int(_num(_field(row, "terms_days")))
    return str(ctx.use("tools.date_add", date_text=_field(row, "issued"), days=days))


def _solve_date_weekday(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    row = ctx.use("tools.row_lookup", path=p["file"], column="name", value=p["name"])
    return str(ctx.use("tools.weekday", date_text=_field(row, "date")))


def _solve_unit_temp(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    row = ctx.use("tools.row_lookup", path=p["file"], column="sensor", value=p["sensor"])
    c = ctx.use("tools.unit_convert", value=_num(_field(row, "temperature_f")), from_unit="F", to_unit="C")
    return fmt_number(_num(c), dec)


def _solve_unit_spec(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    res = ctx.use("tools.text_search", path=p["file"], pattern=f"Model {p['model']}:")
    line = str(_matches(res)[0].get("text", ""))
    m = re.search(rf"{re.escape(p['attribute'])} ([\d.]+) (\w+)", line)
    if not m:
        raise _Stuck("attribute not on the line")
    v = ctx.use("tools.unit_convert", value=float(m.group(1)), from_unit=m.group(2),
                to_unit=TARGET_UNITS.get(p["target"], p["target"]))
    return fmt_number(_num(v), dec)


def _solve_unit_route(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    miles = ctx.use("tools.csv_aggregate", path=p["file"], column="miles", op="sum", where_column="route",
                    where_value=p["route"])
    return fmt_number(_num(ctx.use("tools.unit_convert", value=_num(miles), from_unit="mi", to_unit="km")), dec)


def _solve_search_count(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    res = ctx.use("tools.text_search", path=p["file"], pattern=p["pattern"])
    if not isinstance(res, dict) or "count" not in res:
        raise _Stuck("no count")
    return fmt_number(_num(res["count"]), None)


def _solve_search_line(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    res = ctx.use("tools.text_search", path=p["file"], pattern=p["phrase"])
    return fmt_number(_num(_matches(res)[0].get("line")), None)


def _solve_search_json(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    return fmt_value(ctx.use("tools.json_query", path=p["file"], key_path=p["key"]))


def _solve_multi_weight(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    kg = ctx.use("tools.csv_aggregate", path=p["file"], column="weight_kg", op="sum", where_column="city",
                 where_value=p["city"])
    return fmt_number(_num(ctx.use("tools.unit_convert", value=_num(kg), from_unit="kg", to_unit="lb")), dec)


def _solve_multi_order(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    res = ctx.use("tools.text_search", path=p["log"], pattern=f"[ticket {p['ticket']}]")
    m = re.search(r"O-\d+", str(_matches(res)[0].get("text", "")))
    if not m:
        raise _Stuck("no order on the line")
    row = ctx.use("tools.row_lookup", path=p["table"], column="order_id", value=m.group(0))
    return fmt_number(_num(_field(row, "amount")), dec)


def _solve_multi_span(kind: str, p: dict[str, str], dec: int | None, ctx: _Ctx) -> str:
    hits = _matches(ctx.use("tools.text_search", path=p["file"], pattern=p["user"]))
    first, last = str(hits[0].get("text", ""))[:10], str(hits[-1].get("text", ""))[:10]
    return fmt_number(_num(ctx.use("tools.date_diff", start=first, end=last)), None)


_SOLVERS: dict[str, Callable[[str, dict[str, str], int | None, _Ctx], str]] = {
    "agg_sum": _solve_agg,
    "agg_mean": _solve_agg,
    "agg_count": _solve_agg,
    "agg_max": _solve_agg,
    "agg_top": _solve_agg_top,
    "date_span": _solve_date_span,
    "date_due": _solve_date_due,
    "date_weekday": _solve_date_weekday,
    "unit_temp": _solve_unit_temp,
    "unit_spec": _solve_unit_spec,
    "unit_route": _solve_unit_route,
    "search_count": _solve_search_count,
    "search_line": _solve_search_line,
    "search_json": _solve_search_json,
    "multi_weight": _solve_multi_weight,
    "multi_order": _solve_multi_order,
    "multi_span": _solve_multi_span,
}


def _main_file(p: dict[str, str]) -> str:
    return p.get("file") or p.get("log") or p.get("table") or ""


def guess(kind: str, seen: str, rng: random.Random) -> str:
    """What an agent that did not work it out answers, from what it has seen."""
    kind_type = TEMPLATES[kind][3]
    if rng.random() < 0.25:
        return "I could not determine this from the file. Answer: unknown"
    if kind_type == "weekday":
        return f"Answer: {rng.choice(WEEKDAYS)}"
    if kind_type == "date":
        dates = re.findall(r"\b\d{4}-\d{2}-\d{2}\b", seen)
        return f"Answer: {rng.choice(dates) if dates else '2024-01-01'}"
    if kind_type == "name":
        words = sorted(set(re.findall(r"\b[A-Z][a-z]{3,}\b", seen))) or ["Sales"]
        return f"Answer: {rng.choice(words)}"
    numbers = re.findall(r"(?<![\w-])\d+(?:\.\d+)?\b", seen)
    return f"Answer: {rng.choice(numbers) if numbers else rng.randrange(1, 500)}"


# -- toolbox inspection --------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _buggy_dumps() -> dict[str, str]:
    out = {}
    for cap, src in BUGGY.items():
        node = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef))
        out[cap] = ast.dump(node)
    return out


@functools.lru_cache(maxsize=1024)
def _function_dumps(source: str) -> dict[str, str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    return {n.name: ast.dump(n) for n in tree.body if isinstance(n, ast.FunctionDef)}


def has_known_bug(source: str, cap: str) -> bool:
    """True when the toolbox's version of the tool is the sim's buggy one: a reviewer
    reading the code (the evaluator sees the toolbox source) spots it."""
    return _function_dumps(source).get(TOOL_NAME[cap]) == _buggy_dumps()[cap]


def capability_named(suggestion: str) -> str | None:
    for cap, name in TOOL_NAME.items():
        if re.search(rf"\b{name}\s*\(", suggestion):
            return cap
    return None


class ToolsSkill(BaseSkill):
    name = "tools"

    def recognizes(self, task_text: str) -> bool:
        return parse_question(task_text) is not None

    def needs(self, task_text: str) -> list[Knowledge]:
        parsed = parse_question(task_text)
        if parsed is None:
            return []
        return [KNOWLEDGE[k] for k in TEMPLATES[parsed[0]][2]]

    def category(self, task_text: str) -> str | None:
        parsed = parse_question(task_text)
        return TEMPLATES[parsed[0]][0] if parsed is not None else None

    def space(self, fine: bool) -> list[Knowledge]:
        return list(KNOWLEDGE.values())  # one item per tool: no finer space (see README)

    def covered(self, module_text: str, item: Knowledge) -> bool:
        """The agent sees tool schemas (``"name": "…"`` inside ``<tools>``); the evaluator
        sees the toolbox source (``def …(``), where it also spots the sim's known bugs."""
        name = TOOL_NAME.get(item.key)
        if name is None:
            return cue_covered(module_text, item)
        if re.search(rf'"name":\s*"{re.escape(name)}"', module_text):
            return True
        if not re.search(rf"^def\s+{re.escape(name)}\s*\(", module_text, re.M):
            return False
        return not has_known_bug(module_text, item.key)

    def act(self, messages: list[dict[str, Any]], task_text: str, *, competent: bool,
            missing: list[Knowledge], rng: random.Random) -> str | dict[str, Any]:
        parsed = parse_question(task_text)
        if parsed is None:
            return "I do not understand the question. Answer: unknown"
        kind, params = parsed
        question = task_text.strip().split("\n", 1)[0]
        history = tool_history(messages)
        if competent:
            available = {k for k in TEMPLATES[kind][2]} - {k.key for k in missing}
            try:
                answer = solve(kind, params, question, _Ctx(history, available))
                return f"I used the tools to work this out.\nAnswer: {answer}"
            except _Need as need:
                return {"content": "", "tool_calls": [{"name": need.name, "arguments": need.arguments}]}
            except _Stuck:
                pass
        elif not history:  # flail: look at the main file, then guess
            return {"content": "Let me look at the file.",
                    "tool_calls": [{"name": "read_file", "arguments": {"path": _main_file(params)}}]}
        seen = "\n".join(r or "" for _, _, r in history)
        return guess(kind, seen, rng)

    # -- optimizer and merger ---------------------------------------------------------
    def revise_toolbox(self, current_source: str, suggestions: list[str], rng: random.Random) -> str:
        """Add (or rewrite) the tool each suggestion names; vague suggestions change nothing."""
        edits = []
        for cap in dict.fromkeys(c for c in map(capability_named, suggestions) if c):
            name = TOOL_NAME[cap]
            present = re.search(rf"^def\s+{name}\s*\(", current_source, re.M)
            if present and not has_known_bug(current_source, cap):
                continue
            source = BUGGY[cap] if rng.random() < BUG_RATE else TOOL_SOURCE[cap]
            edits.append({"op": "add", "name": name, "source": source})
        if not edits:
            return current_source
        try:
            new, _ = toolbox.apply_edits(current_source, edits)
        except MalformedOutputError:
            return current_source
        return new

    def merge_toolboxes(self, modules: list[tuple[str, float]], rng: random.Random) -> str:
        """Union by name (best score's version first); merging many at once loses tools."""
        good = []
        for src, score in modules:
            try:
                toolbox.parse_toolbox_source(src)
                good.append((src, score))
            except MalformedOutputError:
                continue
        if not good:
            return modules[0][0] if modules else ""
        merged = toolbox.merge_toolboxes(good)
        loss = min(0.5, MERGE_LOSS * max(0, len(modules) - 2))
        if loss > 0:
            names = [t.name for t in toolbox.parse_toolbox(merged)]
            drop = [n for n in names if rng.random() < loss][: max(0, len(names) - 1)]
            if drop:
                merged, _ = toolbox.apply_edits(merged, [{"op": "remove", "name": n} for n in drop])
        return merged
