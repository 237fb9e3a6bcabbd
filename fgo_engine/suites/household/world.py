"""The household world: layouts, goals, the action parser and the environment's rules.

Text follows ALFWorld's plain English so an agent prompted for ALFWorld feels at home.
Everything here is pure and deterministic; generation lives in ``generate.py``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TASK_TYPES = ("pick", "clean", "heat", "cool", "look", "pick_two")
OPENABLE = frozenset({"fridge", "microwave", "cabinet", "drawer", "safe"})
LAMPS = frozenset({"desklamp", "floorlamp"})
APPLIANCE = {"clean": "sinkbasin", "heat": "microwave", "cool": "fridge"}
INTRO = "You are in the middle of a room. Looking quickly around you, you see "
GOAL_PREFIX = "Your task is to: "
NOTHING = "Nothing happens."

GOAL_TEMPLATES: dict[str, tuple[str, str]] = {
    "pick": ("put a {o} in {d}.", "put some {o} on {d}."),
    "clean": ("put a clean {o} in {d}.", "clean some {o} and put it in {d}."),
    "heat": ("put a hot {o} in {d}.", "heat some {o} and put it in {d}."),
    "cool": ("put a cool {o} in {d}.", "cool some {o} and put it in {d}."),
    "look": ("look at {o} under the {l}.", "examine the {o} with the {l}."),
    "pick_two": ("put two {o} in {d}.", "find two {o} and put them in {d}."),
}

_GOAL_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:put|find) two (\w+) (?:and put them )?(?:in|on) (\w+)"), "pick_two"),
    (re.compile(r"^put a (clean|hot|cool) (\w+) (?:in|on) (\w+)"), "state"),
    (re.compile(r"^(clean|heat|cool) some (\w+) and put it (?:in|on) (\w+)"), "verb"),
    (re.compile(r"^(?:look at|examine the) (\w+) (?:under|with) the (\w+)"), "look"),
    (re.compile(r"^put (?:a|some) (\w+) (?:in|on) (\w+)"), "pick"),
]
_STATE_TYPE = {"clean": "clean", "hot": "heat", "cool": "cool"}


def kind_of(name: str) -> str:
    """``"cabinet 3"`` → ``"cabinet"``."""
    head, _, tail = name.rpartition(" ")
    return head if head and tail.isdigit() else name


def join_items(names: list[str]) -> str:
    """ALFWorld's listing: ``a egg 1, a mug 2, and a cup 1`` (or ``nothing``)."""
    if not names:
        return "nothing"
    items = [f"a {n}" for n in names]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def split_items(text: str) -> list[str]:
    """Inverse of :func:`join_items`."""
    text = text.strip().rstrip(".").strip()
    if not text or text == "nothing":
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        part = part.removeprefix("and ")
        part = part.removeprefix("a ")
        if part:
            out.append(part.strip())
    return out


# -- goals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    type: str
    obj: str
    dest: str | None = None  # receptacle kind; any numbered one of that kind counts
    lamp: str | None = None  # lamp kind for look tasks
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "obj": self.obj,
            "dest": self.dest,
            "lamp": self.lamp,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Goal:
        return cls(
            type=d["type"],
            obj=d["obj"],
            dest=d.get("dest"),
            lamp=d.get("lamp"),
            text=d.get("text", ""),
        )


def goal_text(
    task_type: str, obj: str, dest: str | None, lamp: str | None, variant: int = 0
) -> str:
    tpl = GOAL_TEMPLATES[task_type][variant % 2]
    return tpl.format(o=obj, d=dest or "", l=lamp or "")


def parse_goal(text: str) -> Goal | None:
    """Read the ``Your task is to: …`` line of a task text."""
    idx = text.find(GOAL_PREFIX.strip())
    if idx < 0:
        return None
    line = text[idx + len(GOAL_PREFIX.strip()) :].strip().splitlines()[0].strip().lower()
    for pattern, how in _GOAL_PATTERNS:
        m = pattern.match(line)
        if not m:
            continue
        if how == "pick_two":
            return Goal("pick_two", m.group(1), dest=m.group(2), text=line)
        if how == "state":
            return Goal(_STATE_TYPE[m.group(1)], m.group(2), dest=m.group(3), text=line)
        if how == "verb":
            return Goal(m.group(1), m.group(2), dest=m.group(3), text=line)
        if how == "look":
            return Goal("look", m.group(1), lamp=m.group(2), text=line)
        return Goal("pick", m.group(1), dest=m.group(2), text=line)
    return None


def parse_listing(text: str) -> list[str]:
    """The receptacles of the opening ``Looking quickly around you, you see …`` line."""
    idx = text.find(INTRO)
    if idx < 0:
        return []
    rest = text[idx + len(INTRO) :]
    end = rest.find(".")
    return split_items(rest[: end if end >= 0 else len(rest)])


# -- actions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    # go, open, close, take, put, clean, heat, cool, use, examine, inventory, look, think
    verb: str
    obj: str = ""
    target: str = ""

    def render(self) -> str:
        v = self.verb
        if v in ("inventory", "look"):
            return v
        if v == "think":
            return f"think: {self.obj}"
        if v == "go":
            return f"go to {self.target}"
        if v in ("open", "close", "use", "examine"):
            return f"{v} {self.target}"
        if v == "take":
            return f"take {self.obj} from {self.target}"
        if v == "put":
            return f"put {self.obj} in/on {self.target}"
        return f"{v} {self.obj} with {self.target}"


_ARTICLE = re.compile(r"^(?:the|a|an|some)\s+")
_ACTION_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^go to (.+)$"), "go"),
    (re.compile(r"^(open|close|use|examine) (.+)$"), "single"),
    (re.compile(r"^take (.+?) from (.+)$"), "take"),
    (re.compile(r"^put (.+?) (?:in/on|in|on|into|onto|inside) (.+)$"), "put"),
    (re.compile(r"^(clean|heat|cool) (.+?) (?:with|using|in) (.+)$"), "process"),
]


def _clean_name(s: str) -> str:
    s = s.strip().strip("'\"`").strip()
    return _ARTICLE.sub("", s).strip()


def parse_action(text: str) -> Action | None:
    """Tolerant parse of one agent reply: ``Action: go to fridge 1``, quotes, ``> take …``,
    a trailing period, ``think: …`` (→ a thought). ``None`` when no action is recognised."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return None
    line = next((ln for ln in lines if re.match(r"^\W*action\s*:", ln, re.IGNORECASE)), lines[0])
    line = line.strip().strip("*`\"'").strip()
    line = re.sub(r"^>\s*", "", line)
    line = re.sub(r"^action\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("*`\"'").strip()
    m = re.match(r"^(think|thought)\s*:\s*(.*)$", line, re.IGNORECASE | re.DOTALL)
    if m:
        return Action("think", obj=m.group(2).strip())
    line = re.sub(r"[.!]+$", "", line).strip().strip("\"'`").strip()
    line = re.sub(r"\s+", " ", line).lower()
    if line in ("inventory", "look", "look around", "i"):
        return Action("look" if line.startswith("look") else "inventory")
    for pattern, how in _ACTION_PATTERNS:
        m = pattern.match(line)
        if not m:
            continue
        if how == "go":
            return Action("go", target=_clean_name(m.group(1)))
        if how == "single":
            return Action(m.group(1), target=_clean_name(m.group(2)))
        if how in ("take", "put"):
            return Action(how, obj=_clean_name(m.group(1)), target=_clean_name(m.group(2)))
        return Action(m.group(1), obj=_clean_name(m.group(2)), target=_clean_name(m.group(3)))
    return None


# -- layouts ------------------------------------------------------------------------------
@dataclass
class Layout:
    """Everything needed to rebuild an episode's starting state; JSON-friendly."""

    room: str
    receptacles: list[str]  # in listing order; a floorlamp stands in the list as a place
    contents: dict[str, list[str]]  # receptacle → object names (a desklamp sits among them)
    lamp: str | None = None
    lamp_at: str | None = None  # the receptacle holding the desklamp, or the floorlamp itself

    def to_dict(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "receptacles": list(self.receptacles),
            "contents": {k: list(v) for k, v in self.contents.items()},
            "lamp": self.lamp,
            "lamp_at": self.lamp_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Layout:
        return cls(
            room=d["room"],
            receptacles=list(d["receptacles"]),
            contents={k: list(v) for k, v in d["contents"].items()},
            lamp=d.get("lamp"),
            lamp_at=d.get("lamp_at"),
        )

    def intro(self, goal: Goal) -> str:
        return f"{INTRO}{join_items(self.receptacles)}.\n\n{GOAL_PREFIX}{goal.text}"


# -- the environment ----------------------------------------------------------------------
@dataclass
class _State:
    contents: dict[str, list[str]]
    opened: set[str] = field(default_factory=set)
    loc: str | None = None
    holding: str | None = None
    flags: dict[str, set[str]] = field(default_factory=dict)
    lamp_on: bool = False


class HouseholdEnv:
    """One episode. ``step`` takes raw agent text and returns the observation."""

    def __init__(self, layout: Layout, goal: Goal, *, step_limit: int = 30):
        self.layout = layout
        self.goal = goal
        self.step_limit = step_limit
        self.reset()

    # lifecycle
    def reset(self) -> str:
        self.state = _State(contents=copy.deepcopy(self.layout.contents))
        self.steps = 0
        self.won = False
        self.done = False
        return self.layout.intro(self.goal)

    def step(self, text: str) -> str:
        action = parse_action(text)
        if action is not None and action.verb == "think":
            return "OK."
        if self.done:
            return NOTHING
        obs = self._apply(action) if action is not None else NOTHING
        self.steps += 1
        if self._goal_met():
            self.won = True
            self.done = True
        elif self.steps >= self.step_limit:
            self.done = True
        return obs

    # helpers
    def _rec(self, name: str) -> str | None:
        recs = self.layout.receptacles
        if name in recs:
            return name
        if name and not name[-1].isdigit():
            same = [r for r in recs if kind_of(r) == name]
            if len(same) == 1:
                return same[0]
        return None

    @staticmethod
    def _pick(name: str, pool: list[str]) -> str | None:
        if name in pool:
            return name
        if name and not name[-1].isdigit():
            return next((o for o in pool if kind_of(o) == name), None)
        return None

    def _is_container(self, rec: str) -> bool:
        return kind_of(rec) in OPENABLE

    def _visible(self, rec: str) -> bool:
        return not self._is_container(rec) or rec in self.state.opened

    def describe(self, rec: str) -> str:
        if kind_of(rec) in LAMPS:
            return f"The {rec} is {'on' if self.state.lamp_on else 'off'}."
        items = join_items(self.state.contents.get(rec, []))
        if self._is_container(rec):
            if rec not in self.state.opened:
                return f"The {rec} is closed."
            return f"The {rec} is open. In it, you see {items}."
        return f"On the {rec}, you see {items}."

    def _apply(self, a: Action) -> str:
        """One action on the world: its verb's handler, or "Nothing happens." for an unknown verb."""
        if a.verb in APPLIANCE:
            return self._do_appliance(a)
        handler = _VERBS.get(a.verb)
        return handler(self, a) if handler else NOTHING

    def _do_inventory(self, a: Action) -> str:
        st = self.state
        return (
            f"You are carrying: {join_items([st.holding])}."
            if st.holding
            else "You are not carrying anything."
        )

    def _do_look(self, a: Action) -> str:
        st = self.state
        if st.loc is None:
            return f"{INTRO}{join_items(self.layout.receptacles)}."
        return f"You are facing the {st.loc}. Next to it, you see nothing."

    def _do_go(self, a: Action) -> str:
        st = self.state
        rec = self._rec(a.target)
        if rec is None or rec == st.loc:
            return NOTHING
        st.loc = rec
        return f"You arrive at {rec}. {self.describe(rec)}"

    def _do_open_close(self, a: Action) -> str:
        st = self.state
        v = a.verb
        rec = self._rec(a.target)
        if rec is None or rec != st.loc or not self._is_container(rec):
            return NOTHING
        if v == "open":
            if rec in st.opened:
                return NOTHING
            st.opened.add(rec)
            return f"You open the {rec}. {self.describe(rec)}"
        if rec not in st.opened:
            return NOTHING
        st.opened.discard(rec)
        return f"You close the {rec}."

    def _do_examine(self, a: Action) -> str:
        st = self.state
        rec = self._rec(a.target)
        if rec is not None and rec == st.loc:
            return self.describe(rec)
        here = st.contents.get(st.loc, []) if st.loc and self._visible(st.loc) else []
        obj = self._pick(a.target, ([st.holding] if st.holding else []) + here)
        if obj is None:
            return NOTHING
        return f"There's nothing special about {obj}."

    def _do_take(self, a: Action) -> str:
        st = self.state
        rec = self._rec(a.target)
        if rec is None or rec != st.loc or st.holding or not self._visible(rec):
            return NOTHING
        pool = [o for o in st.contents.get(rec, []) if kind_of(o) not in LAMPS]
        obj = self._pick(a.obj, pool)
        if obj is None:
            return NOTHING
        st.contents[rec].remove(obj)
        st.holding = obj
        return f"You pick up the {obj} from the {rec}."

    def _do_put(self, a: Action) -> str:
        st = self.state
        rec = self._rec(a.target)
        if (
            rec is None
            or rec != st.loc
            or not st.holding
            or kind_of(rec) in LAMPS
            or not self._visible(rec)
        ):
            return NOTHING
        obj = self._pick(a.obj, [st.holding])
        if obj is None:
            return NOTHING
        st.contents.setdefault(rec, []).append(obj)
        st.holding = None
        return f"You put the {obj} in/on the {rec}."

    def _do_appliance(self, a: Action) -> str:
        st = self.state
        v = a.verb
        rec = self._rec(a.target)
        if rec is None or rec != st.loc or kind_of(rec) != APPLIANCE[v] or not st.holding:
            return NOTHING
        obj = self._pick(a.obj, [st.holding])
        if obj is None:
            return NOTHING
        flags = st.flags.setdefault(obj, set())
        if v == "clean":
            flags.add("clean")
        elif v == "heat":
            flags.discard("cool")
            flags.add("hot")
        else:
            flags.discard("hot")
            flags.add("cool")
        return f"You {v} the {obj} using the {rec}."

    def _do_use(self, a: Action) -> str:
        st = self.state
        lamp = self.layout.lamp
        if lamp is None or st.loc is None or st.loc != self.layout.lamp_at:
            return NOTHING
        if a.target not in (lamp, kind_of(lamp)):
            return NOTHING
        st.lamp_on = True
        return f"You turn on the {lamp}."

    def _goal_met(self) -> bool:
        g, st = self.goal, self.state
        if g.type == "look":
            return bool(
                st.lamp_on
                and st.holding
                and kind_of(st.holding) == g.obj
                and st.loc == self.layout.lamp_at
            )
        need_flag = {"clean": "clean", "heat": "hot", "cool": "cool"}.get(g.type)
        good = 0
        for rec, objs in st.contents.items():
            if kind_of(rec) != g.dest:
                continue
            for o in objs:
                if kind_of(o) == g.obj and (
                    need_flag is None or need_flag in st.flags.get(o, set())
                ):
                    good += 1
        return good >= (2 if g.type == "pick_two" else 1)


# -- ground truth --------------------------------------------------------------------------
def oracle_plan(layout: Layout, goal: Goal) -> list[str]:
    """A shortest-ish correct action sequence from the ground truth (for tests and demos)."""
    plan: list[str] = []
    loc: str | None = None
    opened: set[str] = set()

    def go(rec: str) -> None:
        nonlocal loc
        if loc != rec:
            plan.append(f"go to {rec}")
            loc = rec

    def open_(rec: str) -> None:
        if kind_of(rec) in OPENABLE and rec not in opened:
            plan.append(f"open {rec}")
            opened.add(rec)

    need = 2 if goal.type == "pick_two" else 1
    targets = [
        (o, r)
        for r in layout.receptacles
        for o in layout.contents.get(r, [])
        if kind_of(o) == goal.obj and (goal.dest is None or kind_of(r) != goal.dest)
    ][:need]
    dest = next((r for r in layout.receptacles if kind_of(r) == goal.dest), None)
    for obj, rec in targets:
        go(rec)
        open_(rec)
        plan.append(f"take {obj} from {rec}")
        if goal.type in APPLIANCE:
            app = next(r for r in layout.receptacles if kind_of(r) == APPLIANCE[goal.type])
            go(app)
            plan.append(f"{goal.type} {obj} with {app}")
        if goal.type == "look":
            assert layout.lamp_at is not None and layout.lamp is not None
            go(layout.lamp_at)
            plan.append(f"use {layout.lamp}")
            return plan
        assert dest is not None
        go(dest)
        open_(dest)
        plan.append(f"put {obj} in/on {dest}")
    return plan


_VERBS: dict[str, Callable[[HouseholdEnv, Action], str]] = {
    "inventory": HouseholdEnv._do_inventory,
    "look": HouseholdEnv._do_look,
    "go": HouseholdEnv._do_go,
    "open": HouseholdEnv._do_open_close,
    "close": HouseholdEnv._do_open_close,
    "examine": HouseholdEnv._do_examine,
    "take": HouseholdEnv._do_take,
    "put": HouseholdEnv._do_put,
    "use": HouseholdEnv._do_use,
}
