"""The tools of the tools suite, as Python source text.

These strings are what the simulated optimizer writes into a toolbox (through
:func:`fgo_engine.tools.toolbox.apply_edits`) and what the sandbox runs; they are never
imported or executed in the app's process. Each tool is self-contained (it resolves
its own path and imports what it needs), so it can be added, revised or removed alone.

``BUGGY`` holds a plausible wrong version of each tool: the simulated optimizer writes
one now and then, and the engine's adopt-if-not-worse step has to catch it.
"""
from __future__ import annotations

from fgo_engine.types import Knowledge

INITIAL_TOOLBOX = '''"""Tools for answering questions about the task's files (in ./files, also $TASK_FILES)."""
import os


def list_files() -> list:
    """List the names of the files available for this task."""
    return sorted(os.listdir(os.environ.get("TASK_FILES", "files")))


def read_file(path: str) -> str:
    """Return the whole text of one task file.

    Args:
        path: the file name, e.g. 'sales.csv'.
    """
    full = os.path.join(os.environ.get("TASK_FILES", "files"), os.path.basename(path))
    with open(full, encoding="utf-8") as f:
        return f.read()
'''

_READ_TABLE = '''    full = os.path.join(os.environ.get("TASK_FILES", "files"), os.path.basename(path))
    with open(full, encoding="utf-8", newline="") as f:
        text = f.read()
    if full.endswith(".json"):
        rows = [r for r in json.loads(text) if isinstance(r, dict)]
    else:
        delim = "\\t" if full.endswith(".tsv") or "\\t" in text.split("\\n", 1)[0] else ","
        rows = list(csv.DictReader(io.StringIO(text), delimiter=delim))
'''

AGGREGATE_CSV = '''import csv
import io
import json
import os


def aggregate_csv(path: str, column: str, op: str = "sum", where_column: str | None = None,
                  where_value: str | None = None) -> float:
    """Sum, mean, count, min or max of one column of a CSV/TSV file or a JSON list of records.

    Args:
        path: the file name, e.g. 'sales.csv'.
        column: the column to aggregate (ignored for count).
        op: one of sum, mean, count, min, max.
        where_column: if given, only rows whose where_column equals where_value are used.
        where_value: the value to match, compared as text.
    """
''' + _READ_TABLE + '''    if where_column:
        rows = [r for r in rows if str(r.get(where_column, "")).strip() == str(where_value).strip()]
    if op == "count":
        return len(rows)
    values = [float(r[column]) for r in rows if str(r.get(column, "")).strip() != ""]
    if not values:
        raise ValueError(f"no values in column {column!r} for these rows")
    if op == "sum":
        return round(sum(values), 6)
    if op == "mean":
        return round(sum(values) / len(values), 6)
    if op == "min":
        return min(values)
    if op == "max":
        return max(values)
    raise ValueError(f"unknown op {op!r}; use sum, mean, count, min or max")
'''

GROUP_TOTALS = '''import csv
import io
import json
import os


def group_totals(path: str, group_column: str, value_column: str) -> dict:
    """Total of value_column for each distinct value of group_column, largest first.

    Args:
        path: the file name, e.g. 'expenses.csv'.
        group_column: the column to group by.
        value_column: the numeric column to add up.
    """
''' + _READ_TABLE + '''    totals = {}
    for r in rows:
        key = str(r[group_column]).strip()
        totals[key] = totals.get(key, 0.0) + float(r[value_column])
    return {k: round(v, 6) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
'''

LOOKUP_RECORD = '''import csv
import io
import json
import os


def lookup_record(path: str, column: str, value: str) -> dict:
    """The first record of a CSV/TSV file or JSON list whose column equals value.

    Args:
        path: the file name, e.g. 'projects.tsv'.
        column: the column to match.
        value: the value to look for, compared as text.
    """
''' + _READ_TABLE + '''    for r in rows:
        if str(r.get(column, "")).strip() == str(value).strip():
            return r
    raise LookupError(f"no record with {column} = {value!r}")
'''

DAYS_BETWEEN = '''from datetime import date


def days_between(start: str, end: str) -> int:
    """Number of days from start to end (ISO dates YYYY-MM-DD; a time part is ignored).

    Args:
        start: the earlier date.
        end: the later date.
    """
    return (date.fromisoformat(str(end).strip()[:10]) - date.fromisoformat(str(start).strip()[:10])).days
'''

ADD_DAYS = '''from datetime import date, timedelta


def add_days(date_text: str, days: int) -> str:
    """The ISO date (YYYY-MM-DD) that is a number of days after a date.

    Args:
        date_text: an ISO date, YYYY-MM-DD.
        days: how many days to add (negative to go back).
    """
    return (date.fromisoformat(str(date_text).strip()[:10]) + timedelta(days=int(days))).isoformat()
'''

WEEKDAY_OF = '''from datetime import date


def weekday_of(date_text: str) -> str:
    """The English name of the day of the week of an ISO date (YYYY-MM-DD).

    Args:
        date_text: an ISO date.
    """
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    return names[date.fromisoformat(str(date_text).strip()[:10]).weekday()]
'''

CONVERT_UNITS = '''def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length, weight, volume or temperature between units.

    Args:
        value: the number to convert.
        from_unit: one of km, m, cm, mm, mi, yd, ft, in, kg, g, lb, oz, l, ml, gal, C, F, K.
        to_unit: the unit to convert to (same dimension).
    """
    factors = {
        "m": ("length", 1.0), "km": ("length", 1000.0), "cm": ("length", 0.01),
        "mm": ("length", 0.001), "mi": ("length", 1609.344), "yd": ("length", 0.9144),
        "ft": ("length", 0.3048), "in": ("length", 0.0254),
        "kg": ("mass", 1.0), "g": ("mass", 0.001), "lb": ("mass", 0.45359237),
        "oz": ("mass", 0.028349523125),
        "l": ("volume", 1.0), "ml": ("volume", 0.001), "gal": ("volume", 3.785411784),
    }
    aliases = {"kilometres": "km", "kilometers": "km", "miles": "mi", "mile": "mi", "metres": "m",
               "meters": "m", "feet": "ft", "foot": "ft", "inches": "in", "inch": "in",
               "kilograms": "kg", "kilogram": "kg", "pounds": "lb", "pound": "lb", "lbs": "lb",
               "grams": "g", "litres": "l", "liters": "l", "gallons": "gal", "celsius": "C",
               "fahrenheit": "F", "kelvin": "K", "centimetres": "cm", "centimeters": "cm"}
    f = aliases.get(str(from_unit).strip().lower(), str(from_unit).strip())
    t = aliases.get(str(to_unit).strip().lower(), str(to_unit).strip())
    v = float(value)
    if f.upper() in ("C", "F", "K") and t.upper() in ("C", "F", "K"):
        f, t = f.upper(), t.upper()
        c = v if f == "C" else (v - 32) * 5 / 9 if f == "F" else v - 273.15
        out = c if t == "C" else c * 9 / 5 + 32 if t == "F" else c + 273.15
        return round(out, 6)
    if f.lower() not in factors or t.lower() not in factors:
        raise ValueError(f"unknown unit {from_unit!r} or {to_unit!r}")
    (df, ff), (dt, ft) = factors[f.lower()], factors[t.lower()]
    if df != dt:
        raise ValueError(f"cannot convert {df} to {dt}")
    return round(v * ff / ft, 6)
'''

SEARCH_TEXT = '''import os


def search_text(path: str, pattern: str, ignore_case: bool = False, max_results: int = 20) -> dict:
    """Lines of a text file that contain a plain-text pattern (not a regex).

    Returns {"count": number of matching lines, "matches": [{"line": n, "text": ...}]} with
    line numbers counted from 1 and at most max_results matches listed.

    Args:
        path: the file name, e.g. 'server.log'.
        pattern: the text to look for.
        ignore_case: match regardless of case.
        max_results: how many matching lines to list.
    """
    full = os.path.join(os.environ.get("TASK_FILES", "files"), os.path.basename(path))
    with open(full, encoding="utf-8") as f:
        lines = f.read().splitlines()
    needle = pattern.lower() if ignore_case else pattern
    matches = []
    count = 0
    for number, line in enumerate(lines, 1):
        hay = line.lower() if ignore_case else line
        if needle in hay:
            count += 1
            if len(matches) < int(max_results):
                matches.append({"line": number, "text": line[:200]})
    return {"count": count, "matches": matches}
'''

JSON_GET = '''import json
import os


def json_get(path: str, key_path: str):
    """The value at a dotted key path in a JSON file, e.g. 'database.replica.port'
    (list items by index: 'features.regions.0').

    Args:
        path: the file name, e.g. 'config.json'.
        key_path: keys separated by dots.
    """
    full = os.path.join(os.environ.get("TASK_FILES", "files"), os.path.basename(path))
    with open(full, encoding="utf-8") as f:
        value = json.load(f)
    for part in key_path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value
'''

# capability key -> (tool name, working source, knowledge sentence)
CAPABILITIES: dict[str, tuple[str, str, str]] = {
    "tools.csv_aggregate": (
        "aggregate_csv", AGGREGATE_CSV,
        "Add a tool aggregate_csv(path, column, op='sum', where_column=None, where_value=None) that "
        "returns the sum, mean, count, min or max of a column of a CSV/TSV file or JSON list, "
        "optionally only over the rows where where_column equals where_value."),
    "tools.csv_group": (
        "group_totals", GROUP_TOTALS,
        "Add a tool group_totals(path, group_column, value_column) that adds up value_column for "
        "each distinct value of group_column in a CSV/TSV file and returns the totals."),
    "tools.row_lookup": (
        "lookup_record", LOOKUP_RECORD,
        "Add a tool lookup_record(path, column, value) that returns the first record of a CSV/TSV "
        "file or JSON list whose column equals value."),
    "tools.date_diff": (
        "days_between", DAYS_BETWEEN,
        "Add a tool days_between(start, end) that returns the number of days from one ISO date "
        "(YYYY-MM-DD) to another."),
    "tools.date_add": (
        "add_days", ADD_DAYS,
        "Add a tool add_days(date_text, days) that returns the ISO date (YYYY-MM-DD) a number of "
        "days after a date."),
    "tools.weekday": (
        "weekday_of", WEEKDAY_OF,
        "Add a tool weekday_of(date_text) that returns the English name of the day of the week "
        "of an ISO date."),
    "tools.unit_convert": (
        "convert_units", CONVERT_UNITS,
        "Add a tool convert_units(value, from_unit, to_unit) that converts lengths, weights, "
        "volumes and temperatures (km, mi, m, ft, cm, in, kg, lb, g, oz, l, gal, C, F, K)."),
    "tools.text_search": (
        "search_text", SEARCH_TEXT,
        "Add a tool search_text(path, pattern) that returns how many lines of a text file "
        "contain a plain-text pattern, with the matching lines and their line numbers (from 1)."),
    "tools.json_query": (
        "json_get", JSON_GET,
        "Add a tool json_get(path, key_path) that returns the value at a dotted key path such as "
        "'database.replica.port' in a JSON file."),
}

TOOL_NAME: dict[str, str] = {k: v[0] for k, v in CAPABILITIES.items()}
TOOL_SOURCE: dict[str, str] = {k: v[1] for k, v in CAPABILITIES.items()}
KNOWLEDGE: dict[str, Knowledge] = {
    k: Knowledge(k, (name,), text) for k, (name, _, text) in CAPABILITIES.items()
}


def _bug(key: str, old: str, new: str) -> str:
    src = TOOL_SOURCE[key]
    if old not in src:
        raise AssertionError(f"bug template for {key} does not apply")
    return src.replace(old, new, 1)


# Plausible mistakes: a filter forgotten, an off-by-one, an inverted factor, …
BUGGY: dict[str, str] = {
    "tools.csv_aggregate": _bug("tools.csv_aggregate", "    if where_column:\n        rows = [r for r in rows",
                                "    if where_column and op == 'count':\n        rows = [r for r in rows"),
    "tools.csv_group": _bug("tools.csv_group", "totals.get(key, 0.0) + float(r[value_column])",
                            "float(r[value_column])"),
    "tools.row_lookup": _bug("tools.row_lookup", "    for r in rows:\n        if",
                             "    for r in rows[1:]:\n        if"),
    "tools.date_diff": _bug("tools.date_diff", ").days\n", ").days + 1\n"),
    "tools.date_add": _bug("tools.date_add", "timedelta(days=int(days))", "timedelta(days=int(days) - 1)"),
    "tools.weekday": _bug("tools.weekday", '["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", '
                                           '"Saturday", "Sunday"]',
                          '["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]'),
    "tools.unit_convert": _bug("tools.unit_convert", "return round(v * ff / ft, 6)", "return round(v * ft / ff, 6)"),
    "tools.text_search": _bug("tools.text_search", "enumerate(lines, 1)", "enumerate(lines)"),
    "tools.json_query": _bug("tools.json_query", 'key_path.split(".")', 'key_path.split("/")'),
}
