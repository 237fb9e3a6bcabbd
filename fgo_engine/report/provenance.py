"""Rule provenance ("blame"): for every guidance line (or tool) of a module, where it came from.

A module's history is in its rows: an optimizer step (subset, epoch, the critiques it
saw) wrote it from its parent, a merge node from its children, an operator edit from the
merger's proposal, a roll back kept a child whole. Walking those rows back from a module
gives each rule's story, newest first: kept / rewritten by merge n2, added at s1 epoch 1
because of these critiques, edited by the operator at n1 … and the rules that were
dropped on the way.

Instructions are split into lines; toolboxes into tools (by name). Reads go through the
store's ``get`` / ``rows`` / ``query`` only (a read-side query module can absorb them).
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from fgo_engine.persistence import queries as q
from fgo_engine.types import epoch_label

REWRITE_RATIO = 0.6  # two lines this similar are one rule rewritten, not one dropped and one added
CRITIQUE_OVERLAP = 0.5  # share of a rule's words a critique's suggestion must share to "ask for it"
STOPWORDS = frozenset("the and for with from that this are was were you your its his her their than then "
                      "when what which into onto only always never each every all any use using".split())
# what critiques say of any gap; not evidence that a critique asked for one rule
GENERIC_WORDS = ("agent model task tasks like need needs needed guidance add rule rules instruction seems know what "
                 "about should went wrong step depends reach expected result lacked knowledge missing")
MAX_DEPTH = 200


# -- units: the rules of a module ----------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    key: str  # what identifies the rule across versions (normalized line, or a tool's name)
    text: str  # what to show (the line, or the tool's signature)
    body: str  # what must be equal for "kept" (the line, or the tool's source)


def _norm(line: str) -> str:
    s = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line)
    return " ".join(s.lower().split())


def units(kind: str, text: str) -> list[Unit]:
    """The rules of a module: non-empty lines of an instruction, tools of a toolbox."""
    if kind == "toolbox":
        try:
            from fgo_engine.tools.toolbox import canonical_source, parse_toolbox

            return [Unit(t.name, f"{t.name}{t.signature}" if t.signature.startswith("(") else t.signature,
                         canonical_source(t.source)) for t in parse_toolbox(text)]
        except Exception:  # an unparsable toolbox: fall back to its lines
            pass
    out, seen = [], set()
    for line in (text or "").splitlines():
        key = _norm(line)
        if key and key not in seen:
            seen.add(key)
            out.append(Unit(key, line.strip(), key))
    return out


def _similar(a: Unit, b: Unit) -> float:
    if a.key == b.key:
        return 1.0
    return difflib.SequenceMatcher(None, a.key, b.key, autojunk=False).ratio()


@dataclass
class RuleDiff:
    """Rules of ``new`` against ``old``: kept as they were, rewritten (old → new), added, dropped."""

    kept: list[Unit] = field(default_factory=list)
    rewritten: list[tuple[Unit, Unit]] = field(default_factory=list)
    added: list[Unit] = field(default_factory=list)
    dropped: list[Unit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.rewritten or self.added or self.dropped)


def rule_diff(kind: str, old: str, new: str) -> RuleDiff:
    old_u, new_u = units(kind, old), units(kind, new)
    by_key = {u.key: u for u in old_u}
    d = RuleDiff()
    rest_new: list[Unit] = []
    used: set[str] = set()
    for u in new_u:
        o = by_key.get(u.key)
        if o is not None and o.body == u.body:
            d.kept.append(u)
            used.add(o.key)
        elif o is not None:  # same tool name, new source
            d.rewritten.append((o, u))
            used.add(o.key)
        else:
            rest_new.append(u)
    free = [o for o in old_u if o.key not in used]
    for u in rest_new:
        best = max(free, key=lambda o: _similar(o, u), default=None) if kind != "toolbox" else None
        if best is not None and _similar(best, u) >= REWRITE_RATIO:
            d.rewritten.append((best, u))
            free.remove(best)
        else:
            d.added.append(u)
    d.dropped = free
    return d


def latest_change(kind: str, old: str | None, new: str | None, limit: int = 3) -> list[str]:
    """'+ added rule …', '~ rewrote …', '− dropped …' lines (for a subset panel)."""
    if not new:
        return []
    d = rule_diff(kind, old or "", new)
    what = "tool" if kind == "toolbox" else "rule"
    lines = [f"+ added {what} {u.text}" for u in d.added]
    lines += [f"~ rewrote {what} {n.text}" for _, n in d.rewritten]
    lines += [f"− dropped {what} {u.text}" for u in d.dropped]
    return lines[:limit]


# -- provenance ----------------------------------------------------------------------------
@dataclass
class Step:
    """One event in a rule's history."""

    action: str  # initial | added | rewritten | kept | edited-in | edited | rolled-back-to
    where: str  # "the optimizer step after s1 epoch 0", "merge n2", "operator edit at n1", "starting module"
    module_id: str
    subset_id: int | None = None
    epoch: int | None = None
    node_id: str | None = None
    before: str | None = None  # the rule's text before a rewrite
    critiques: list[dict[str, Any]] = field(default_factory=list)  # task_id, suggestion, failure


ACTION_TEXT = {
    "initial": "in the starting module", "added": "added at {where}", "rewritten": "rewritten at {where}",
    "kept": "kept by {where}", "kept-whole": "kept whole by the {where}",
    "adopted-whole": "adopted as it is at {where} (every child was this module: no merge call)",
    "edited-in": "added by the operator at {node}", "edited": "rewritten by the operator at {node}",
}


def step_text(s: Step) -> str:
    text = ACTION_TEXT.get(s.action, "{action} at {where}").format(where=s.where, node=s.node_id, action=s.action)
    if s.action in ("added", "rewritten") and s.where.startswith("the optimizer"):
        text += f" (asked for by {len(s.critiques)} critique{'s' if len(s.critiques) != 1 else ''})" \
            if s.critiques else " (no critique of that step names it)"
    return text


@dataclass
class RuleBlame:
    text: str
    history: list[Step] = field(default_factory=list)  # newest first

    @property
    def origin(self) -> Step | None:
        """Where the rule first appeared (the oldest step)."""
        return self.history[-1] if self.history else None

    def summary(self) -> str:
        """Oldest first: where it came from, then what each merge, edit or roll back did with it."""
        return " · ".join(step_text(s) for s in reversed(self.history)) or "unknown"


@dataclass
class Dropped:
    text: str
    where: str  # "merge n2", "the optimizer step after s1 epoch 1", "operator edit at n1"
    module_id: str  # the module that lost it
    from_module: str  # the module it was in


@dataclass
class Blame:
    module_id: str
    kind: str
    rules: list[RuleBlame]
    dropped: list[Dropped] = field(default_factory=list)

    def for_text(self, text: str) -> RuleBlame | None:
        key = _norm(text)
        return next((r for r in self.rules if _norm(r.text) == key or r.text == text), None)

    def to_dict(self) -> dict[str, Any]:
        return {"module_id": self.module_id, "kind": self.kind,
                "rules": [{"text": r.text, "summary": r.summary(), "history": [asdict(s) for s in r.history]}
                          for r in self.rules],
                "dropped": [asdict(d) for d in self.dropped]}


class _Rows:
    """The rows provenance needs, read once per blame."""

    def __init__(self, store: Any):
        self.store = store
        self.modules: dict[str, dict | None] = {}
        self.nodes = {r["id"]: r for r in q.merge_nodes(store)}
        self.subsets = {r["id"]: r for r in q.subsets(store)}
        self.reviews: dict[str, list[dict]] = {}
        for r in q.reviews(store):
            self.reviews.setdefault(r["node_id"], []).append(r)
        self._crit: dict[tuple, list[dict]] = {}

    def module(self, mid: str | None) -> dict | None:
        if not mid:
            return None
        if mid not in self.modules:
            self.modules[mid] = q.module(self.store, mid)
        return self.modules[mid]

    def child_module_id(self, child: str) -> str | None:
        if child.startswith("s") and child[1:].isdigit():
            row = self.subsets.get(int(child[1:]))
            return row["best_module_id"] if row else None
        row = self.nodes.get(child)
        return row.get("module_id") if row else None

    def critiques(self, parent_id: str | None, subset_id: int | None, epoch: int | None) -> list[dict]:
        key = (parent_id, subset_id, epoch)
        if key not in self._crit:
            self._crit[key] = q.failed_critiques_of(self.store, parent_id, epoch, subset_id)
        return self._crit[key]


def _stem(w: str) -> str:
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


GENERIC = frozenset(map(_stem, GENERIC_WORDS.split()))


def _words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if len(w) > 2 and w not in STOPWORDS}


def _asked_for(rule: str, critiques: list[dict], known: str = "") -> list[dict[str, Any]]:
    """The critiques that ask for ``rule``: either the critique shares at least half of the
    rule's words (it quotes or nearly quotes it), or at least half of what is particular to
    the critique — its words less those most of the step's critiques share ("the agent",
    "add guidance") — is in the rule (a paraphrase that names the same objects), or the rule
    holds what every critique of the step asks for: the words they all use that the module
    they critiqued (``known``) does not have yet ("heat", "microwave" in all four critiques)."""
    rw = _words(rule)
    if not rw:
        return []
    words = [_words(c.get("suggestion") or "") | _words(c.get("failure") or "") | _words(c.get("pattern") or "")
             for c in critiques]
    df: dict[str, int] = {}
    for cw in words:
        for w in cw:
            df[w] = df.get(w, 0) + 1
    # what most critiques share is boilerplate for telling one critique's request from another's;
    # but the words every critique uses and the module lacks are the step's one request
    known_w = _words(known)
    every = {w for w, n in df.items() if n == len(words)} - GENERIC - known_w  # not the domain's words
    common = {w for w, n in df.items() if len(words) >= 3 and n > len(words) / 2} | GENERIC
    asked = every & rw
    unanimous = len(words) >= 2 and bool(every) and len(asked) >= min(2, len(every)) \
        and len(asked) / len(every) >= CRITIQUE_OVERLAP
    out = []
    for c, cw in zip(critiques, words):
        own = cw - common
        quotes = len(rw & cw) / len(rw) >= CRITIQUE_OVERLAP
        names = bool(own) and len(own & rw) >= min(2, len(own)) and len(own & rw) / len(own) >= CRITIQUE_OVERLAP
        if quotes or names or unanimous:
            out.append({"task_id": c["task_id"], "suggestion": c.get("suggestion") or "",
                        "failure": c.get("failure") or ""})
    return out


def _where(m: dict) -> str:
    if m["origin"] == "optimize":  # written from the critiques of the pass before the one it first ran in
        return f"the optimizer step after {epoch_label(m.get('subset_id'), (m.get('epoch') or 1) - 1)}"
    if m["origin"] == "merge":
        return f"merge {m.get('node_id')}"
    if m["origin"] == "edit":
        return f"operator edit at {m.get('node_id')}"
    return "starting module"


def blame(store: Any, module_id: str) -> Blame | None:
    """Every rule of ``module_id`` with its history, and what was dropped on the way to it."""
    rows = _Rows(store)
    m = rows.module(module_id)
    if m is None:
        return None
    kind = m["kind"]
    dropped: list[Dropped] = []
    seen_drops: set[tuple[str, str]] = set()
    rules = []
    for u in units(kind, m["text"]):
        rules.append(RuleBlame(u.text, _trace(rows, m, u, kind, dropped, seen_drops, 0)))
    _collect_drops(rows, m, kind, dropped, seen_drops, 0)
    # a roll back keeps a child's module whole: say so on every rule
    for nid, node in rows.nodes.items():
        kids = {rows.child_module_id(c) for c in node.get("child_ids_json") or []}
        if node.get("module_id") == module_id and module_id in kids:
            step = (Step("adopted-whole", nid, module_id, node_id=nid) if kids == {module_id}
                    else Step("kept-whole", f"roll back at {nid}", module_id, node_id=nid))
            for r in rules:
                r.history.insert(0, step)
    return Blame(module_id, kind, rules, dropped)


def _trace(rows: _Rows, m: dict, u: Unit, kind: str, dropped: list, seen: set, depth: int) -> list[Step]:
    """The history of unit ``u`` as it is in module ``m``, newest first."""
    if depth > MAX_DEPTH:
        return []
    origin = m["origin"]
    if origin == "merge":
        return _trace_merge(rows, m, u, kind, dropped, seen, depth)
    parent = rows.module(m.get("parent_id"))
    if origin == "initial" or parent is None:
        return [Step("initial", "starting module", m["id"])]
    prev = previous_unit(kind, parent["text"], m["text"], u)
    base = {"module_id": m["id"], "subset_id": m.get("subset_id"), "epoch": m.get("epoch"),
            "node_id": m.get("node_id")}
    if prev is not None and prev.body == u.body:
        return _trace(rows, parent, prev, kind, dropped, seen, depth + 1)
    if origin == "edit":
        if prev is not None:
            return [Step("edited", _where(m), before=prev.text, **base)] + \
                _trace(rows, parent, prev, kind, dropped, seen, depth + 1)
        return [Step("edited-in", _where(m), **base)]
    crits = _asked_for(u.text if kind != "toolbox" else u.key.replace("_", " "),
                       rows.critiques(parent["id"], m.get("subset_id"), (m.get("epoch") or 1) - 1), parent["text"])
    if prev is not None:
        return [Step("rewritten", _where(m), before=prev.text, critiques=crits, **base)] + \
            _trace(rows, parent, prev, kind, dropped, seen, depth + 1)
    return [Step("added", _where(m), critiques=crits, **base)]


def _trace_merge(rows: _Rows, m: dict, u: Unit, kind: str, dropped: list, seen: set, depth: int) -> list[Step]:
    nid = m.get("node_id")
    node = rows.nodes.get(nid or "") or {}
    base = {"module_id": m["id"], "node_id": nid}
    best: tuple[float, dict, Unit] | None = None
    for child in node.get("child_ids_json") or []:
        cm = rows.module(rows.child_module_id(child))
        if cm is None:
            continue
        hit = previous_unit(kind, cm["text"], m["text"], u)
        if hit is not None:
            score = 1.0 if hit.body == u.body else _similar(hit, u)
            if best is None or score > best[0]:
                best = (score, cm, hit)
    if best is None:
        return [Step("added", _where(m), **base)]
    score, cm, hit = best
    action = "kept" if hit.body == u.body else "rewritten"
    step = Step(action, _where(m), before=None if action == "kept" else hit.text, **base)
    return [step] + _trace(rows, cm, hit, kind, dropped, seen, depth + 1)


def previous_unit(kind: str, old: str, new: str, u: Unit) -> Unit | None:
    """What rule ``u`` of ``new`` was in ``old``: itself when kept, the old line it rewrote,
    or None when it is new. A line is the rewrite of an old one only if that old one is gone:
    "- For cool tasks, … fridge" added beside an unchanged "- For heat tasks, …" is added,
    not a rewrite of the heat rule (the two are alike only in their template)."""
    d = rule_diff(kind, old, new)
    for k in d.kept:
        if k.key == u.key:
            return k
    for o, n in d.rewritten:
        if n.key == u.key:
            return o
    return None


def find_unit(candidates: list[Unit], u: Unit, kind: str) -> Unit | None:
    """The same rule in another version: same key, else (instructions) the most similar line."""
    for c in candidates:
        if c.key == u.key:
            return c
    if kind == "toolbox":
        return None
    best = max(candidates, key=lambda c: _similar(c, u), default=None)
    return best if best is not None and _similar(best, u) >= REWRITE_RATIO else None


def _collect_drops(rows: _Rows, m: dict, kind: str, dropped: list, seen: set, depth: int) -> None:
    """Rules that an ancestor had and a later version lost (merges, optimizer steps, edits)."""
    if depth > MAX_DEPTH or m is None:
        return
    if m["origin"] == "merge":
        node = rows.nodes.get(m.get("node_id") or "") or {}
        for child in node.get("child_ids_json") or []:
            cm = rows.module(rows.child_module_id(child))
            if cm is None:
                continue
            for u in rule_diff(kind, cm["text"], m["text"]).dropped:
                if (u.key, m["id"]) not in seen:
                    seen.add((u.key, m["id"]))
                    dropped.append(Dropped(u.text, f"{_where(m)} (from {child})", m["id"], cm["id"]))
            _collect_drops(rows, cm, kind, dropped, seen, depth + 1)
        return
    parent = rows.module(m.get("parent_id"))
    if parent is None or m["origin"] == "initial":
        return
    for u in rule_diff(kind, parent["text"], m["text"]).dropped:
        if (u.key, m["id"]) not in seen:
            seen.add((u.key, m["id"]))
            dropped.append(Dropped(u.text, _where(m), m["id"], parent["id"]))
    _collect_drops(rows, parent, kind, dropped, seen, depth + 1)


# -- export --------------------------------------------------------------------------------
def to_json(b: Blame) -> str:
    return json.dumps(b.to_dict(), indent=2, ensure_ascii=False)


def to_markdown(b: Blame) -> str:
    what = "tool" if b.kind == "toolbox" else "rule"
    out = [f"# Provenance of {b.module_id}", "", f"Each {what} with where it came from (newest step first).", ""]
    for r in b.rules:
        out.append(f"- `{r.text}` — {r.summary()}")
        for s in r.history:
            line = f"  - {step_text(s)} ({s.module_id})"
            if s.before:
                line += f"; before: `{s.before}`"
            out.append(line)
            for c in s.critiques[:3]:
                out.append(f"    - asked for by the critique of {c['task_id']}: {c['suggestion']}")
    if b.dropped:
        out += ["", f"## Dropped on the way ({len(b.dropped)})", ""]
        out += [f"- `{d.text}` — dropped by {d.where} ({d.from_module} → {d.module_id})" for d in b.dropped]
    return "\n".join(out) + "\n"
