"""Task templates, deterministic file generation and reference answers for the tools suite.

Every task is a (kind, task_seed) pair: :func:`generate` rebuilds the question, the
files and the expected answer from those two values alone, so a task stored as a row
(``Task.meta``) can have its files re-created in another process.

The ``ref_*`` functions are the in-process reference operations. The generator uses
them on the *generated file text* to compute expected answers, and the simulated LLM
uses them for "mental arithmetic" when it reads a file itself instead of calling a
tool. Tool code the agent runs is separate (see :mod:`.library`) and runs sandboxed.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

GENERATOR_VERSION = 1
FILES_MARKER = "Files (in the files/ folder):"
REPLY_HINT = 'When you are done, reply with the final answer as "Answer: <value>".'

CATEGORIES = ("aggregate", "dates", "units", "search", "multistep")

# kind -> (category, question template, capability keys the task needs, answer type)
# Answer types: number | date | weekday | name | value.
TEMPLATES: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "agg_sum": ("aggregate",
                "In {file}, what is the total '{column}' of the rows whose '{where_column}' is "
                "'{where_value}'? Round to 2 decimals.",
                ("tools.csv_aggregate",), "number"),
    "agg_mean": ("aggregate",
                 "In {file}, what is the average '{column}' of the rows whose '{where_column}' is "
                 "'{where_value}'? Round to 2 decimals.",
                 ("tools.csv_aggregate",), "number"),
    "agg_count": ("aggregate",
                  "In {file}, how many rows have '{where_column}' equal to '{where_value}'?",
                  ("tools.csv_aggregate",), "number"),
    "agg_max": ("aggregate",
                "In {file}, what is the largest '{column}' among the rows whose '{where_column}' is "
                "'{where_value}'?",
                ("tools.csv_aggregate",), "number"),
    "agg_top": ("aggregate",
                "In {file}, which '{group_column}' has the highest total '{column}'?",
                ("tools.csv_group",), "name"),
    "date_span": ("dates",
                  "In {file}, how many days are there from the 'start' date to the 'end' date of "
                  "project '{name}'?",
                  ("tools.row_lookup", "tools.date_diff"), "number"),
    "date_due": ("dates",
                 "In {file}, invoice '{invoice}' is due 'terms_days' days after its 'issued' date. "
                 "On what date is it due? Answer as YYYY-MM-DD.",
                 ("tools.row_lookup", "tools.date_add"), "date"),
    "date_weekday": ("dates",
                     "In {file}, on which day of the week is the event '{name}' held?",
                     ("tools.row_lookup", "tools.weekday"), "weekday"),
    "unit_temp": ("units",
                  "In {file}, sensor '{sensor}' reports its 'temperature_f' in degrees Fahrenheit. "
                  "What is that temperature in degrees Celsius? Round to 1 decimal.",
                  ("tools.row_lookup", "tools.unit_convert"), "number"),
    "unit_spec": ("units",
                  "According to {file}, what is the {attribute} of model '{model}' in {target}? "
                  "Round to 2 decimals.",
                  ("tools.text_search", "tools.unit_convert"), "number"),
    "unit_route": ("units",
                   "{file} lists leg distances in miles. What is the total distance of route "
                   "'{route}' in kilometres? Round to 1 decimal.",
                   ("tools.csv_aggregate", "tools.unit_convert"), "number"),
    "search_count": ("search",
                     "How many lines of {file} contain the text '{pattern}'?",
                     ("tools.text_search",), "number"),
    "search_line": ("search",
                    "On which line of {file} (counting from 1) does the phrase '{phrase}' first "
                    "appear?",
                    ("tools.text_search",), "number"),
    "search_json": ("search",
                    "In {file}, what is the value of the setting '{key}'?",
                    ("tools.json_query",), "value"),
    "multi_weight": ("multistep",
                     "{file} records weights in kilograms. What is the total weight of the "
                     "shipments to '{city}' in pounds? Round to 1 decimal.",
                     ("tools.csv_aggregate", "tools.unit_convert"), "number"),
    "multi_order": ("multistep",
                    "In {log}, the line about ticket '{ticket}' names an order ID. What is the "
                    "'amount' of that order in {table}? Round to 2 decimals.",
                    ("tools.text_search", "tools.row_lookup"), "number"),
    "multi_span": ("multistep",
                   "How many days passed between the first and the last line of {file} that "
                   "mention '{user}'?",
                   ("tools.text_search", "tools.date_diff"), "number"),
}

KINDS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    c: tuple(k for k, v in TEMPLATES.items() if v[0] == c) for c in CATEGORIES
}

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    out = []
    for i, part in enumerate(parts):
        out.append(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)")
    return re.compile("".join(out))


QUESTION_RES: dict[str, re.Pattern[str]] = {k: _template_regex(v[1]) for k, v in TEMPLATES.items()}


def parse_question(task_text: str) -> tuple[str, dict[str, str]] | None:
    """(kind, params) of a task text whose first line is one of the questions."""
    if FILES_MARKER not in task_text:
        return None
    first = task_text.strip().split("\n", 1)[0].strip()
    for kind, rx in QUESTION_RES.items():
        m = rx.fullmatch(first)
        if m:
            return kind, m.groupdict()
    return None




# ------------------------------------------------------------------ reference operations


def parse_table(name: str, text: str) -> list[dict[str, Any]]:
    """Records of a CSV / TSV file or a JSON list of objects."""
    if name.endswith(".json"):
        data = json.loads(text)
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
    delim = "\t" if name.endswith(".tsv") or "\t" in text.split("\n", 1)[0] else ","
    return list(csv.DictReader(io.StringIO(text), delimiter=delim))


def _eq(a: Any, b: Any) -> bool:
    return str(a).strip() == str(b).strip()


def ref_aggregate(rows: list[dict[str, Any]], column: str, op: str = "sum",
                  where_column: str | None = None, where_value: Any = None) -> float | int:
    if where_column:
        rows = [r for r in rows if _eq(r.get(where_column, ""), where_value)]
    if op == "count":
        return len(rows)
    values = [float(r[column]) for r in rows if str(r.get(column, "")).strip() != ""]
    if not values:
        raise ValueError(f"no values in column {column!r}")
    if op == "sum":
        return sum(values)
    if op == "mean":
        return sum(values) / len(values)
    if op == "min":
        return min(values)
    if op == "max":
        return max(values)
    raise ValueError(f"unknown op {op!r}")


def ref_group_totals(rows: list[dict[str, Any]], group_column: str, value_column: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for r in rows:
        g = str(r[group_column]).strip()
        totals[g] = totals.get(g, 0.0) + float(r[value_column])
    return totals


def ref_lookup(rows: list[dict[str, Any]], column: str, value: Any) -> dict[str, Any] | None:
    for r in rows:
        if _eq(r.get(column, ""), value):
            return r
    return None


def _day(s: Any) -> date:
    return date.fromisoformat(str(s).strip()[:10])


def ref_days_between(start: Any, end: Any) -> int:
    return (_day(end) - _day(start)).days


def ref_add_days(d: Any, days: Any) -> str:
    return (_day(d) + timedelta(days=int(days))).isoformat()


def ref_weekday(d: Any) -> str:
    return WEEKDAYS[_day(d).weekday()]


# factor to the base unit of each dimension (m, kg, l); temperatures are special
UNIT_FACTORS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0), "km": ("length", 1000.0), "cm": ("length", 0.01), "mm": ("length", 0.001),
    "mi": ("length", 1609.344), "ft": ("length", 0.3048), "in": ("length", 0.0254),
    "yd": ("length", 0.9144),
    "kg": ("mass", 1.0), "g": ("mass", 0.001), "lb": ("mass", 0.45359237), "oz": ("mass", 0.028349523125),
    "l": ("volume", 1.0), "ml": ("volume", 0.001), "gal": ("volume", 3.785411784),
}


def ref_convert(value: Any, from_unit: str, to_unit: str) -> float:
    v, f, t = float(value), from_unit.strip(), to_unit.strip()
    temps = {"C", "F", "K"}
    if f in temps or t in temps:
        c = v if f == "C" else (v - 32) * 5 / 9 if f == "F" else v - 273.15
        return c if t == "C" else c * 9 / 5 + 32 if t == "F" else c + 273.15
    (df, ff), (dt, ft) = UNIT_FACTORS[f.lower()], UNIT_FACTORS[t.lower()]
    if df != dt:
        raise ValueError(f"cannot convert {f} to {t}")
    return v * ff / ft


def ref_search(text: str, pattern: str, limit: int = 20) -> dict[str, Any]:
    matches = [{"line": i, "text": line} for i, line in enumerate(text.splitlines(), 1) if pattern in line]
    return {"count": len(matches), "matches": matches[:limit]}


def ref_json_get(text: str, key_path: str) -> Any:
    value: Any = json.loads(text)
    for part in key_path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def fmt_number(v: float, decimals: int | None) -> str:
    if decimals is None:
        return str(int(round(v))) if abs(v - round(v)) < 1e-9 else repr(float(v))
    return f"{v:.{decimals}f}"


def fmt_value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def decimals_asked(question: str) -> int | None:
    m = re.search(r"Round to (\d+) decimals?", question)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------ generation


@dataclass
class Generated:
    kind: str
    question: str
    files: dict[str, str]
    expected: str
    scorer: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return TEMPLATES[self.kind][0]


def _csv(header: list[str], rows: list[list[Any]], delim: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _money(rng: random.Random, lo: float, hi: float) -> float:
    return round(rng.uniform(lo, hi), 2)


def _date(rng: random.Random, start: date, span_days: int) -> date:
    return start + timedelta(days=rng.randrange(span_days))


REGIONS = ("North", "South", "East", "West", "Central")
PRODUCTS = ("Widget", "Gadget", "Sprocket", "Gizmo", "Bracket", "Valve")
DEPARTMENTS = ("Marketing", "Engineering", "Sales", "Support", "Finance", "Legal")
EXPENSE_TYPES = ("travel", "software", "hardware", "training", "catering")
WAREHOUSES = ("A", "B", "C", "D")
ITEMS = ("bolts", "nuts", "washers", "hinges", "cables", "fuses", "gaskets", "springs", "clamps",
         "rivets", "brackets", "filters")
CITIES = ("Oslo", "Lyon", "Porto", "Graz", "Turin", "Ghent", "Cork", "Brno", "Malmo", "Bergen")
CARRIERS = ("NordFreight", "RapidRoad", "BlueLine")
PROJECTS = ("Falcon", "Juniper", "Atlas", "Beacon", "Cobalt", "Delta", "Ember", "Fjord", "Granite",
            "Harbor", "Iris", "Kestrel", "Lumen", "Meridian")
PEOPLE = ("Ana Ruiz", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Femi Adeyemi",
          "Greta Lind", "Hugo Brandt", "Ines Costa", "Jun Sato")
CUSTOMERS = ("Acme Ltd", "Birch & Co", "Cedar Systems", "Dune Retail", "Elm Foods", "Fir Logistics",
             "Grove Media", "Hazel Labs")
SERVICES = ("auth", "billing", "search", "storage", "api", "mailer")
LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
MESSAGES = ("request completed", "cache miss", "retrying upstream call", "slow query",
            "token refreshed", "payment declined", "session expired", "quota exceeded",
            "connection reset", "config reloaded")
EVENTS = ("Quarterly review", "Board meeting", "Team offsite", "Product launch", "Budget planning",
          "Security audit", "Hackathon", "Customer summit", "Hiring day", "Design sprint",
          "Town hall", "Vendor fair", "Code freeze", "Release party")
ROOMS = ("Aurora", "Boreal", "Cirrus", "Dune", "Estuary")
LOCATIONS = ("lobby", "server room", "warehouse", "roof", "lab", "office 2", "office 3", "garage")
PHRASES = ("vendor contract", "server migration", "hiring freeze", "office move",
           "customer churn", "release schedule", "travel policy", "pricing update")
FILLER = ("We reviewed last week's action items.", "Numbers are in line with the forecast.",
          "The team agreed to follow up by email.", "No blockers were reported.",
          "Minutes will be shared on the wiki.", "A decision is expected next month.",
          "Two new people joined the team.", "The dashboard now updates hourly.",
          "Feedback from the pilot was positive.", "We need more data before deciding.",
          "The budget owner will confirm.", "Action items were assigned.")
SPEAKERS = ("Ana", "Ben", "Chloe", "Dev", "Eva", "Femi", "Greta", "Hugo")
SPEC_ATTRS = {  # attribute -> (unit in the file, target unit, target unit name, value range)
    "max load": ("lb", "kg", "kilograms", (80, 900)),
    "width": ("in", "cm", "centimetres", (8, 60)),
    "cable length": ("ft", "m", "metres", (3, 40)),
}


def _readme(rng: random.Random, about: str) -> str:
    return (f"Export of {about}.\nGenerated by the reporting job; values as of the export date.\n"
            f"Contact: data-team@example.com (ticket queue {rng.randrange(100, 999)}).\n")


def _sales(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    rows = []
    start = date(2023, 1, 1)
    for i in range(rng.randrange(40, 70)):
        units = rng.randrange(1, 40)
        price = _money(rng, 2, 90)
        rows.append([f"S{1000 + i}", _date(rng, start, 365).isoformat(), rng.choice(REGIONS),
                     rng.choice(PRODUCTS), units, f"{price:.2f}", f"{units * price:.2f}"])
    text = _csv(["order_id", "date", "region", "product", "units", "unit_price", "revenue"], rows)
    return text, parse_table("sales.csv", text)


def _inventory(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    rows = []
    for i in range(rng.randrange(25, 45)):
        rows.append([f"K-{100 + i}", rng.choice(ITEMS), rng.choice(WAREHOUSES), rng.randrange(0, 500),
                     rng.randrange(10, 80), f"{_money(rng, 0.1, 12):.2f}"])
    text = _csv(["sku", "item", "warehouse", "stock", "reorder_level", "unit_cost"], rows, "\t")
    return text, parse_table("inventory.tsv", text)


def _nonempty_value(rng: random.Random, rows: list[dict[str, Any]], column: str) -> str:
    return str(rng.choice(rows)[column])


def gen_agg(kind: str, rng: random.Random) -> Generated:
    use_inventory = kind in ("agg_max",) or (kind in ("agg_mean", "agg_count") and rng.random() < 0.5)
    if use_inventory:
        fname = "inventory.tsv"
        text, rows = _inventory(rng)
        column = rng.choice(("stock", "unit_cost")) if kind != "agg_max" else "stock"
        where_column = rng.choice(("warehouse", "item"))
        extra = {"sales.csv": _sales(rng)[0]} if rng.random() < 0.5 else {}
    else:
        fname = "sales.csv"
        text, rows = _sales(rng)
        column = rng.choice(("revenue", "units")) if kind == "agg_sum" else rng.choice(("unit_price", "units"))
        where_column = rng.choice(("region", "product"))
        extra = {"inventory.tsv": _inventory(rng)[0]} if rng.random() < 0.5 else {}
    where_value = _nonempty_value(rng, rows, where_column)
    op = {"agg_sum": "sum", "agg_mean": "mean", "agg_count": "count", "agg_max": "max"}[kind]
    value = ref_aggregate(rows, column, op, where_column, where_value)
    params = {"file": fname, "column": column, "where_column": where_column, "where_value": where_value}
    if op in ("count", "max"):
        expected, scorer = fmt_number(value, None), {"name": "numeric", "tol": 1e-6}
    else:
        expected, scorer = fmt_number(value, 2), {"name": "numeric", "tol": 0.011}
    files = {fname: text, "README.txt": _readme(rng, "sales and stock data"), **extra}
    return _make(kind, params, files, expected, scorer)


def gen_agg_top(rng: random.Random) -> Generated:
    while True:
        rows = []
        start = date(2024, 1, 1)
        for _ in range(rng.randrange(35, 60)):
            rows.append([_date(rng, start, 180).isoformat(), rng.choice(DEPARTMENTS),
                         rng.choice(EXPENSE_TYPES), f"{_money(rng, 20, 2500):.2f}"])
        text = _csv(["date", "department", "category", "amount"], rows)
        totals = ref_group_totals(parse_table("expenses.csv", text), "department", "amount")
        ranked = sorted(totals.values(), reverse=True)
        if len(ranked) < 2 or ranked[0] - ranked[1] > 1.0:  # a clear winner
            break
    best = max(totals, key=lambda k: totals[k])
    params = {"file": "expenses.csv", "group_column": "department", "column": "amount"}
    files = {"expenses.csv": text, "README.txt": _readme(rng, "department expenses")}
    return _make("agg_top", params, files, best, {"name": "normalized"})


def gen_date_span(rng: random.Random) -> Generated:
    names = rng.sample(PROJECTS, rng.randrange(8, len(PROJECTS)))
    rows = []
    for n in names:
        s = _date(rng, date(2022, 1, 1), 900)
        e = s + timedelta(days=rng.randrange(20, 400))
        rows.append([n, rng.choice(PEOPLE), s.isoformat(), e.isoformat(), rng.randrange(10, 500) * 1000])
    text = _csv(["project", "owner", "start", "end", "budget"], rows, "\t")
    name = rng.choice(names)
    row = ref_lookup(parse_table("projects.tsv", text), "project", name)
    assert row is not None
    expected = str(ref_days_between(row["start"], row["end"]))
    files = {"projects.tsv": text, "README.txt": _readme(rng, "the project portfolio")}
    return _make("date_span", {"file": "projects.tsv", "name": name}, files, expected,
                 {"name": "numeric", "tol": 1e-6})


def gen_date_due(rng: random.Random) -> Generated:
    numbers = rng.sample(range(1000, 9999), rng.randrange(15, 30))
    rows = []
    for n in numbers:
        rows.append([f"INV-{n}", rng.choice(CUSTOMERS), _date(rng, date(2023, 6, 1), 500).isoformat(),
                     rng.choice((14, 30, 45, 60, 90)), f"{_money(rng, 50, 9000):.2f}"])
    text = _csv(["invoice", "customer", "issued", "terms_days", "amount"], rows)
    invoice = f"INV-{rng.choice(numbers)}"
    row = ref_lookup(parse_table("invoices.csv", text), "invoice", invoice)
    assert row is not None
    expected = ref_add_days(row["issued"], row["terms_days"])
    files = {"invoices.csv": text, "README.txt": _readme(rng, "open invoices")}
    return _make("date_due", {"file": "invoices.csv", "invoice": invoice}, files, expected,
                 {"name": "normalized"})


def gen_date_weekday(rng: random.Random) -> Generated:
    names = rng.sample(EVENTS, rng.randrange(8, len(EVENTS)))
    events = [{"name": n, "date": _date(rng, date(2024, 1, 1), 700).isoformat(), "room": rng.choice(ROOMS),
               "organizer": rng.choice(PEOPLE)} for n in names]
    text = json.dumps(events, indent=2) + "\n"
    name = rng.choice(names)
    row = ref_lookup(parse_table("events.json", text), "name", name)
    assert row is not None
    files = {"events.json": text, "README.txt": _readme(rng, "the events calendar")}
    return _make("date_weekday", {"file": "events.json", "name": name}, files, ref_weekday(row["date"]),
                 {"name": "normalized"})


def gen_unit_temp(rng: random.Random) -> Generated:
    ids = rng.sample(range(10, 99), rng.randrange(10, 22))
    recs = [{"sensor": f"S-{i}", "location": rng.choice(LOCATIONS),
             "temperature_f": round(rng.uniform(14, 104), 1), "humidity_pct": rng.randrange(15, 90)}
            for i in ids]
    text = json.dumps(recs, indent=2) + "\n"
    sensor = f"S-{rng.choice(ids)}"
    row = ref_lookup(parse_table("readings.json", text), "sensor", sensor)
    assert row is not None
    expected = fmt_number(ref_convert(row["temperature_f"], "F", "C"), 1)
    files = {"readings.json": text, "README.txt": _readme(rng, "sensor readings")}
    return _make("unit_temp", {"file": "readings.json", "sensor": sensor}, files, expected,
                 {"name": "numeric", "tol": 0.051})


def gen_unit_spec(rng: random.Random) -> Generated:
    models = [f"{rng.choice('KLMPRTVX')}{rng.choice('ABCDEFGH')}-{n}"
              for n in rng.sample(range(100, 999), rng.randrange(8, 15))]
    models = list(dict.fromkeys(models))
    lines = ["Product specifications (imperial units)", ""]
    values: dict[str, dict[str, float]] = {}
    for m in models:
        vals = {}
        for attr, (_, _, _, (lo, hi)) in SPEC_ATTRS.items():
            vals[attr] = round(rng.uniform(lo, hi), 1 if attr != "max load" else 0)
        values[m] = vals
        lines.append(f"Model {m}: max load {vals['max load']:g} lb; width {vals['width']:g} in; "
                     f"cable length {vals['cable length']:g} ft; colour {rng.choice(('grey', 'black', 'white'))}")
    lines += ["", "All values are nominal. Contact support for metric data sheets."]
    text = "\n".join(lines) + "\n"
    model = rng.choice(models)
    attribute = rng.choice(tuple(SPEC_ATTRS))
    src, dst, target, _ = SPEC_ATTRS[attribute]
    line = ref_search(text, f"Model {model}:")["matches"][0]["text"]
    value = float(re.search(rf"{attribute} ([\d.]+) {src}\b", line).group(1))  # type: ignore[union-attr]
    expected = fmt_number(ref_convert(value, src, dst), 2)
    files = {"specs.txt": text, "README.txt": _readme(rng, "product data")}
    return _make("unit_spec", {"file": "specs.txt", "attribute": attribute, "model": model, "target": target},
                 files, expected, {"name": "numeric", "tol": 0.011})


def gen_unit_route(rng: random.Random) -> Generated:
    routes = [f"R{n}" for n in rng.sample(range(1, 40), rng.randrange(5, 10))]
    rows = []
    for r in routes:
        stops = rng.sample(CITIES, rng.randrange(3, 7))
        for leg, (a, b) in enumerate(zip(stops, stops[1:]), 1):
            rows.append([r, leg, a, b, f"{rng.uniform(20, 400):.1f}"])
    text = _csv(["route", "leg", "origin", "destination", "miles"], rows)
    route = rng.choice(routes)
    miles = ref_aggregate(parse_table("routes.csv", text), "miles", "sum", "route", route)
    expected = fmt_number(ref_convert(miles, "mi", "km"), 1)
    files = {"routes.csv": text, "README.txt": _readme(rng, "delivery routes")}
    return _make("unit_route", {"file": "routes.csv", "route": route}, files, expected,
                 {"name": "numeric", "tol": 0.051})


def _server_log(rng: random.Random, focus_user: str | None = None, focus_times: int = 0) -> str:
    users = [f"u{n}" for n in rng.sample(range(1000, 9999), 30)]
    if focus_user:
        users = [u for u in users if u != focus_user]
    n = rng.randrange(110, 170)
    start = date(2024, 2, 1)
    stamps = sorted(rng.randrange(0, 90 * 86400) for _ in range(n + focus_times))
    focus_at = set(rng.sample(range(len(stamps)), focus_times)) if focus_times else set()
    lines = []
    for i, s in enumerate(stamps):
        d = start + timedelta(seconds=s)
        when = f"{d.isoformat()} {s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
        user = focus_user if i in focus_at else rng.choice(users)
        lines.append(f"{when} {rng.choice(LEVELS)} [{rng.choice(SERVICES)}] {rng.choice(MESSAGES)} "
                     f"for user {user}")
    return "\n".join(lines) + "\n"


def gen_search_count(rng: random.Random) -> Generated:
    text = _server_log(rng)
    pattern = f"{rng.choice(('ERROR', 'WARN'))} [{rng.choice(SERVICES)}]"
    expected = str(ref_search(text, pattern)["count"])
    files = {"server.log": text, "README.txt": _readme(rng, "application logs")}
    return _make("search_count", {"file": "server.log", "pattern": pattern}, files, expected,
                 {"name": "numeric", "tol": 1e-6})


def gen_search_line(rng: random.Random) -> Generated:
    phrase = rng.choice(PHRASES)
    n = rng.randrange(40, 80)
    lines = [f"Meeting notes, week {rng.randrange(1, 52)}", ""]
    for _ in range(n):
        lines.append(f"{rng.choice(SPEAKERS)}: {rng.choice(FILLER)}")
    for other in rng.sample([p for p in PHRASES if p != phrase], 3):
        i = rng.randrange(2, len(lines))
        lines[i] = f"{rng.choice(SPEAKERS)}: We discussed the {other} again."
    hits = rng.sample(range(8, len(lines)), rng.randrange(1, 4))
    for i in hits:
        lines[i] = f"{rng.choice(SPEAKERS)}: Update on the {phrase}; owners to report next time."
    text = "\n".join(lines) + "\n"
    expected = str(ref_search(text, phrase)["matches"][0]["line"])
    files = {"notes.txt": text, "README.txt": _readme(rng, "team meeting notes")}
    return _make("search_line", {"file": "notes.txt", "phrase": phrase}, files, expected,
                 {"name": "numeric", "tol": 1e-6})


def gen_search_json(rng: random.Random) -> Generated:
    def host(kind: str) -> str:
        return f"{kind}-{rng.randrange(1, 9)}.{rng.choice(('internal', 'corp', 'lan'))}"

    cfg = {
        "service": {"name": rng.choice(("orders", "ledger", "catalog")), "version":
                    f"{rng.randrange(1, 4)}.{rng.randrange(0, 12)}.{rng.randrange(0, 20)}",
                    "debug": rng.random() < 0.3},
        "database": {
            "primary": {"host": host("db"), "port": rng.choice((5432, 5433, 3306)),
                        "pool_size": rng.randrange(5, 50)},
            "replica": {"host": host("replica"), "port": rng.choice((5432, 5434, 3307)),
                        "pool_size": rng.randrange(5, 50)},
        },
        "cache": {"backend": rng.choice(("redis", "memcached")), "ttl_seconds": rng.choice((60, 300, 900, 3600)),
                  "max_items": rng.randrange(1000, 100000)},
        "features": {"beta_search": rng.random() < 0.5, "max_upload_mb": rng.choice((10, 25, 50, 100)),
                     "regions": rng.sample(REGIONS, 3)},
        "logging": {"level": rng.choice(("info", "debug", "warning")), "retention_days": rng.choice((7, 14, 30, 90))},
    }
    leaves: list[str] = []

    def walk(obj: Any, prefix: str) -> None:
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                walk(v, path)
            elif isinstance(v, list):
                leaves.append(f"{path}.{rng.randrange(len(v))}")
            else:
                leaves.append(path)

    walk(cfg, "")
    text = json.dumps(cfg, indent=2) + "\n"
    key = rng.choice(leaves)
    expected = fmt_value(ref_json_get(text, key))
    files = {"config.json": text, "README.txt": _readme(rng, "service configuration")}
    return _make("search_json", {"file": "config.json", "key": key}, files, expected, {"name": "normalized"})


def gen_multi_weight(rng: random.Random) -> Generated:
    rows = []
    for i in range(rng.randrange(30, 60)):
        rows.append([f"SH-{5000 + i}", rng.choice(CITIES), rng.choice(CARRIERS), f"{rng.uniform(0.5, 480):.2f}",
                     _date(rng, date(2024, 3, 1), 120).isoformat()])
    text = _csv(["shipment_id", "city", "carrier", "weight_kg", "shipped_on"], rows)
    table = parse_table("shipments.csv", text)
    city = _nonempty_value(rng, table, "city")
    kg = ref_aggregate(table, "weight_kg", "sum", "city", city)
    expected = fmt_number(ref_convert(kg, "kg", "lb"), 1)
    files = {"shipments.csv": text, "README.txt": _readme(rng, "outbound shipments")}
    return _make("multi_weight", {"file": "shipments.csv", "city": city}, files, expected,
                 {"name": "numeric", "tol": 0.051})


def gen_multi_order(rng: random.Random) -> Generated:
    ids = rng.sample(range(1000, 9999), rng.randrange(25, 45))
    orders = [[f"O-{i}", rng.choice(CUSTOMERS), f"{_money(rng, 10, 3000):.2f}",
               rng.choice(("paid", "shipped", "refunded", "open"))] for i in ids]
    table = _csv(["order_id", "customer", "amount", "status"], orders)
    tickets = [f"T-{n}" for n in rng.sample(range(100, 999), rng.randrange(12, 24))]
    issues = ("refund requested", "wrong item delivered", "parcel damaged", "invoice address wrong",
              "delivery late", "duplicate charge")
    lines = []
    for _k, t in enumerate(tickets):
        d = _date(rng, date(2024, 5, 1), 60)
        lines.append((d, f"{d.isoformat()} {rng.randrange(8, 18):02d}:{rng.randrange(60):02d} [ticket {t}] "
                         f"{rng.choice(issues)} for order O-{rng.choice(ids)}"))
        if rng.random() < 0.4:
            d2 = d + timedelta(days=rng.randrange(0, 5))
            lines.append((d2, f"{d2.isoformat()} {rng.randrange(8, 18):02d}:{rng.randrange(60):02d} "
                              f"agent {rng.choice(SPEAKERS)} replied to the customer"))
    lines.sort(key=lambda p: p[0])
    log = "\n".join(t for _, t in lines) + "\n"
    ticket = rng.choice(tickets)
    line = ref_search(log, f"[ticket {ticket}]")["matches"][0]["text"]
    order = re.search(r"O-\d+", line).group(0)  # type: ignore[union-attr]
    row = ref_lookup(parse_table("orders.csv", table), "order_id", order)
    assert row is not None
    expected = fmt_number(float(row["amount"]), 2)
    files = {"support.log": log, "orders.csv": table, "README.txt": _readme(rng, "support tickets and orders")}
    return _make("multi_order", {"log": "support.log", "ticket": ticket, "table": "orders.csv"}, files,
                 expected, {"name": "numeric", "tol": 0.011})


def gen_multi_span(rng: random.Random) -> Generated:
    user = f"user u{rng.randrange(1000, 9999)}"
    text = _server_log(rng, user.split()[1], rng.randrange(2, 7))
    hits = ref_search(text, user)["matches"]
    expected = str(ref_days_between(hits[0]["text"][:10], hits[-1]["text"][:10]))
    files = {"server.log": text, "README.txt": _readme(rng, "application logs")}
    return _make("multi_span", {"file": "server.log", "user": user}, files, expected,
                 {"name": "numeric", "tol": 1e-6})


def _make(kind: str, params: dict[str, str], files: dict[str, str], expected: str,
          scorer: dict[str, Any]) -> Generated:
    question = TEMPLATES[kind][1].format(**params)
    return Generated(kind, question, dict(sorted(files.items())), expected, scorer, params)


_GENERATORS: dict[str, Callable[[random.Random], Generated]] = {
    "agg_sum": functools.partial(gen_agg, "agg_sum"),
    "agg_mean": functools.partial(gen_agg, "agg_mean"),
    "agg_count": functools.partial(gen_agg, "agg_count"),
    "agg_max": functools.partial(gen_agg, "agg_max"),
    "agg_top": gen_agg_top,
    "date_span": gen_date_span,
    "date_due": gen_date_due,
    "date_weekday": gen_date_weekday,
    "unit_temp": gen_unit_temp,
    "unit_spec": gen_unit_spec,
    "unit_route": gen_unit_route,
    "search_count": gen_search_count,
    "search_line": gen_search_line,
    "search_json": gen_search_json,
    "multi_weight": gen_multi_weight,
    "multi_order": gen_multi_order,
    "multi_span": gen_multi_span,
}
assert set(_GENERATORS) == set(TEMPLATES)


@functools.lru_cache(maxsize=256)
def generate(kind: str, task_seed: int) -> Generated:
    """The task of this kind and seed: question, files, expected answer (deterministic)."""
    if kind not in _GENERATORS:
        raise KeyError(kind)
    return _GENERATORS[kind](random.Random(f"tools|v{GENERATOR_VERSION}|{kind}|{task_seed}"))


def task_input(g: Generated) -> str:
    return f"{g.question}\n\n{FILES_MARKER} {', '.join(g.files)}\n{REPLY_HINT}"
