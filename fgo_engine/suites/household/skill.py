"""How the simulated LLM plays the household suite.

The skill reads only the conversation: the room listing and goal of the first user
message, the system prompt, and the observations so far. It never rebuilds the
environment. A competent agent searches sensibly and does each step right; an agent
missing a piece of knowledge makes the mistake that gap implies.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from fgo_engine.llm.sim.skills import BaseSkill, cue_covered
from fgo_engine.suites.household.generate import HIDDEN
from fgo_engine.suites.household.world import (
    APPLIANCE,
    GOAL_PREFIX,
    INTRO,
    LAMPS,
    NOTHING,
    OPENABLE,
    Goal,
    kind_of,
    parse_action,
    parse_goal,
    parse_listing,
    split_items,
)
from fgo_engine.types import Knowledge

KNOWLEDGE: dict[str, Knowledge] = {
    k.key: k
    for k in (
        Knowledge(
            "rule_pick",
            ("put", "named"),
            "Find the object the task names, take it and put it in or on a receptacle of "
            "exactly the named type; any numbered one of that type counts.",
        ),
        Knowledge(
            "rule_clean",
            ("clean", "sinkbasin"),
            "For clean tasks, take the object to a sinkbasin and use "
            "'clean <object> with sinkbasin <n>' before putting it in place.",
            scope="clean",
            general="Before putting an object in place, take it to a sinkbasin and use "
            "'clean <object> with sinkbasin <n>'.",
        ),
        Knowledge(
            "rule_heat",
            ("heat", "microwave"),
            "For heat tasks, take the object to a microwave and use 'heat <object> with microwave <n>' "
            "before putting it in place.",
            scope="heat",
            general="Before putting an object in place, take it to a microwave and use "
            "'heat <object> with microwave <n>'.",
        ),
        Knowledge(
            "rule_cool",
            ("cool", "fridge"),
            "For cool tasks, take the object to a fridge and use 'cool <object> with fridge <n>' "
            "before putting it in place.",
            scope="cool",
            general="Before putting an object in place, take it to a fridge and use "
            "'cool <object> with fridge <n>'.",
        ),
        Knowledge(
            "rule_look",
            ("lamp", "holding"),
            "For look tasks, take the object first, then go to the desklamp or "
            "floorlamp and 'use' the lamp while holding the object.",
            scope="look",
            general="Always take the object first, then go to a desklamp or floorlamp and 'use' the "
            "lamp while holding it.",
        ),
        Knowledge(
            "rule_two",
            ("two", "one at a time"),
            "For two-object tasks: you can carry only one at a time, so place the first "
            "one, then find the second and place it there too.",
            scope="pick_two",
            general="Objects come in twos and you can carry only one at a time: place the first "
            "one, then find the second and place it there too.",
        ),
        Knowledge(
            "rule_open",
            ("open", "before", "put"),
            "A closed receptacle such as a fridge, microwave, cabinet, drawer or safe must be "
            "opened with 'open <receptacle>' before you can put anything in it.",
        ),
        Knowledge(
            "loc_food",
            ("egg", "fridge"),
            "Eggs, lettuce, tomatoes, potatoes, apples and bread are usually kept in the fridge; "
            "open the fridge and look there first.",
        ),
        Knowledge(
            "loc_dishes",
            ("plate", "cabinet"),
            "Mugs, cups, plates, bowls and pans are usually stored in closed cabinets; open the "
            "cabinets and look there first.",
        ),
        Knowledge(
            "loc_utensils",
            ("spoon", "drawer"),
            "Knives, forks, spoons, spatulas and ladles are usually kept in kitchen drawers; "
            "open the drawers and look there first.",
        ),
        Knowledge(
            "loc_desk",
            ("keychain", "drawer"),
            "Keychains, credit cards, CDs, pens and pencils are usually kept in drawers; open the "
            "drawers and look there first.",
        ),
    )
}
TYPE_RULE = {
    "pick": "rule_pick",
    "clean": "rule_clean",
    "heat": "rule_heat",
    "cool": "rule_cool",
    "look": "rule_look",
    "pick_two": "rule_two",
}
HINT_HOME = {
    "loc_food": "fridge",
    "loc_dishes": "cabinet",
    "loc_utensils": "drawer",
    "loc_desk": "drawer",
}

# Receptacle kinds an agent plausibly mixes up with the one the goal names.
CONFUSE: dict[str, tuple[str, ...]] = {
    "countertop": ("diningtable", "shelf", "stoveburner"),
    "diningtable": ("countertop", "shelf"),
    "cabinet": ("drawer", "shelf", "countertop"),
    "drawer": ("cabinet", "shelf", "dresser"),
    "shelf": ("cabinet", "countertop", "desk", "dresser"),
    "fridge": ("cabinet", "countertop"),
    "microwave": ("stoveburner", "countertop"),
    "sinkbasin": ("countertop",),
    "garbagecan": ("countertop", "sidetable", "shelf"),
    "coffeemachine": ("countertop",),
    "stoveburner": ("countertop",),
    "desk": ("sidetable", "dresser", "shelf"),
    "sidetable": ("desk", "dresser", "coffeetable"),
    "dresser": ("sidetable", "desk", "shelf"),
    "bed": ("sofa", "armchair", "sidetable"),
    "sofa": ("armchair", "bed"),
    "armchair": ("sofa", "bed"),
    "coffeetable": ("sidetable", "diningtable", "shelf"),
    "safe": ("drawer", "cabinet"),
    "tvstand": ("coffeetable", "sidetable"),
}
WRONG_APPLIANCE = {
    "heat": ("stoveburner", "toaster"),
    "clean": ("countertop", "diningtable"),
    "cool": ("sinkbasin", "countertop"),
}


def task_knowledge(goal: Goal) -> list[Knowledge]:
    keys = [TYPE_RULE[goal.type]]
    hint = hint_key(goal)
    if hint:
        keys.append(hint)
    if goal.dest in OPENABLE:
        keys.append("rule_open")
    return [KNOWLEDGE[k] for k in keys]


def hint_key(goal: Goal) -> str | None:
    if goal.obj in HIDDEN and HIDDEN[goal.obj][1] != goal.dest:
        return HIDDEN[goal.obj][0]
    return None


# -- what the agent has seen --------------------------------------------------------------
_ARRIVE = re.compile(r"^You arrive at (.+?)\. (.*)$", re.DOTALL)
_OPENED = re.compile(r"^You open the (.+?)\. (.*)$", re.DOTALL)
_CLOSED_DESC = re.compile(r"^The (.+?) is closed\.")
_IN_DESC = re.compile(r"^The (.+?) is open\. In it, you see (.*)$", re.DOTALL)
_ON_DESC = re.compile(r"^On the (.+?), you see (.*)$", re.DOTALL)
_TAKE = re.compile(r"^You pick up the (.+?) from the (.+?)\.$")
_PUT = re.compile(r"^You put the (.+?) in/on the (.+?)\.$")
_PROCESS = re.compile(r"^You (clean|heat|cool) the (.+?) using the (.+?)\.$")
_USE = re.compile(r"^You turn on the (.+?)\.$")
_EXAMINE = re.compile(r"^There's nothing special about (.+?)\.$")


@dataclass
class Seen:
    loc: str | None = None
    contents: dict[str, list[str]] = field(default_factory=dict)
    closed: dict[str, bool] = field(default_factory=dict)
    visited: set[str] = field(default_factory=set)
    holding: str | None = None
    processed: set[str] = field(default_factory=set)
    puts: list[tuple[str, str]] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    lamp: str | None = None
    lamp_at: str | None = None
    lamp_used: bool = False
    examined: set[str] = field(default_factory=set)

    def _describe(self, rec: str, desc: str) -> None:
        desc = desc.strip()
        if _CLOSED_DESC.match(desc):
            self.closed[rec] = True
            return
        m = _IN_DESC.match(desc) or _ON_DESC.match(desc)
        if m:
            self.closed[rec] = False
            items = split_items(m.group(2))
            self.contents[rec] = items
            for it in items:
                if kind_of(it) in LAMPS:
                    self.lamp, self.lamp_at = it, rec

    def note(self, action_text: str, obs: str) -> None:
        action = parse_action(action_text)
        obs = obs.strip()
        if action is None or action.verb == "think":
            return
        if obs == NOTHING:
            self.failed.add(action.render())
            return
        if m := _ARRIVE.match(obs):
            self.loc = m.group(1)
            self.visited.add(self.loc)
            self._describe(self.loc, m.group(2))
        elif m := _OPENED.match(obs):
            self._describe(m.group(1), m.group(2))
        elif obs.startswith("You close the "):
            self.closed[obs[len("You close the ") :].rstrip(".")] = True
        elif m := _TAKE.match(obs):
            self.holding = m.group(1)
            items = self.contents.get(m.group(2), [])
            if m.group(1) in items:
                items.remove(m.group(1))
        elif m := _PUT.match(obs):
            self.holding = None
            self.contents.setdefault(m.group(2), []).append(m.group(1))
            self.puts.append((m.group(1), m.group(2)))
        elif m := _PROCESS.match(obs):
            self.processed.add(m.group(2))
        elif _USE.match(obs):
            self.lamp_used = True
        elif m := _EXAMINE.match(obs):
            self.examined.add(m.group(1))


def read_history(messages: list[dict[str, Any]]) -> Seen:
    """Replay the visible conversation (after the first user message) into what was seen."""
    seen = Seen()
    start = next((i for i, m in enumerate(messages) if m.get("role") == "user"), len(messages))
    pending: str | None = None
    for m in messages[start + 1 :]:
        content = m.get("content") or ""
        if not isinstance(content, str):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        if m.get("role") == "assistant":
            pending = content
        elif m.get("role") == "user" and pending is not None:
            seen.note(pending, content)
            pending = None
    return seen


# -- how this agent thinks ----------------------------------------------------------------
@dataclass
class Mind:
    know_type: bool = True
    know_hint: bool = True
    know_open: bool = True
    aim: str | None = None  # receptacle kind it will put the object in
    variant: bool = False  # which form a type mistake takes


def _confused(dest: str | None, kinds: list[str]) -> str | None:
    if dest is None:
        return None
    for k in CONFUSE.get(dest, ()):
        if k in kinds:
            return k
    return next(
        (k for k in kinds if k != dest and k not in LAMPS and k not in APPLIANCE.values()), dest
    )


def make_mind(
    goal: Goal,
    kinds: list[str],
    system: str,
    *,
    competent: bool,
    missing: list[Knowledge],
    rng: random.Random,
) -> Mind:
    r_slip, r_variant = rng.random(), rng.random()  # always drawn, in this order
    keys = {k.key.split(":")[0] for k in missing}  # a fine-grained item stands for its base item
    hint = hint_key(goal)
    mind = Mind(aim=goal.dest, variant=r_variant < 0.5)
    if competent:
        mind.know_hint = hint is None or hint not in keys or cue_covered(system, KNOWLEDGE[hint])
        return mind
    dest_slip = False
    if keys:
        mind.know_type = TYPE_RULE[goal.type] not in keys
        mind.know_hint = hint not in keys
        mind.know_open = "rule_open" not in keys
    elif r_slip < 0.5 or goal.type == "look":
        mind.know_type = False  # a slip: forgets the task type's procedure
    else:
        dest_slip = True  # a slip: puts it on a look-alike receptacle
    if goal.type == "pick" and not mind.know_type:
        dest_slip = True
    if dest_slip:
        mind.aim = _confused(goal.dest, kinds)
    return mind


def _first(listing: list[str], kind: str | None) -> str | None:
    return next((r for r in listing if kind_of(r) == kind), None)


def _search_order(goal: Goal, listing: list[str], mind: Mind) -> list[str]:
    places = [r for r in listing if kind_of(r) not in LAMPS and kind_of(r) != mind.aim]
    hint = hint_key(goal) if mind.know_hint else None
    surfaces = [r for r in places if kind_of(r) not in OPENABLE]
    closed = [r for r in places if kind_of(r) in OPENABLE]
    # with no hint: what is in plain sight first, then every closed place in listed order
    first = [r for r in places if hint and kind_of(r) == HINT_HOME[hint]]
    return first + [r for r in surfaces + closed if r not in first]


def _lamp_order(listing: list[str]) -> list[str]:
    lamps = [r for r in listing if kind_of(r) in LAMPS]
    stands = [r for r in listing if kind_of(r) in ("desk", "sidetable", "dresser")]
    rest = [r for r in listing if kind_of(r) not in OPENABLE and r not in lamps + stands]
    return lamps + stands + rest


def _go_or(seen: Seen, rec: str, action: str) -> str:
    return action if seen.loc == rec else f"go to {rec}"


def _explore(seen: Seen, order: list[str]) -> str | None:
    """Next step of a search through ``order``: go to the next unseen place, open it if closed."""
    for rec in order:
        if rec not in seen.visited:
            return f"go to {rec}"
        if seen.closed.get(rec):
            if f"open {rec}" in seen.failed:
                continue
            return _go_or(seen, rec, f"open {rec}")
    return None


def _use_lamp(seen: Seen, listing: list[str]) -> str:
    lamp_at = seen.lamp_at or next((r for r in listing if kind_of(r) in LAMPS), None)
    if lamp_at is not None:
        lamp = seen.lamp or lamp_at
        return _go_or(seen, lamp_at, f"use {lamp}")
    return _explore(seen, _lamp_order(listing)) or "look"


def _fetch(goal: Goal, listing: list[str], seen: Seen, mind: Mind) -> str:
    """Not holding anything: take a target object that was seen, else keep searching."""
    known = [
        (o, r)
        for r in listing
        for o in seen.contents.get(r, [])
        if kind_of(o) == goal.obj
        and kind_of(r) != mind.aim
        and f"take {o} from {r}" not in seen.failed
    ]
    here = [(o, r) for o, r in known if r == seen.loc]
    if here or known:
        obj, rec = (here or known)[0]
        return _go_or(seen, rec, f"take {obj} from {rec}")
    return _explore(seen, _search_order(goal, listing, mind)) or "look"


def decide(goal: Goal, listing: list[str], seen: Seen, mind: Mind) -> str:
    held = seen.holding
    if goal.type == "look" and not mind.know_type:
        return _look_without_the_rule(goal, listing, seen, mind)
    need = 2 if goal.type == "pick_two" and mind.know_type else 1
    placed = [o for o, r in seen.puts if kind_of(o) == goal.obj and kind_of(r) == mind.aim]
    if goal.type != "look" and len(placed) >= need:
        return "look"  # believes the task is finished
    if held is None:
        return _fetch(goal, listing, seen, mind)
    if kind_of(held) != goal.obj:
        return f"put {held} in/on {seen.loc}" if seen.loc else "look"
    if goal.type in APPLIANCE and held not in seen.processed:
        step = _process(goal.type, held, listing, seen, mind)
        if step is not None:
            return step
    if goal.type == "look":
        return _use_lamp(seen, listing)
    return _place(held, listing, seen, mind)


def _look_without_the_rule(goal: Goal, listing: list[str], seen: Seen, mind: Mind) -> str:
    held = seen.holding
    if mind.variant:  # goes to the lamp first, empty-handed, and believes it is done
        return "look" if seen.lamp_used else _use_lamp(seen, listing)
    if held:  # takes the object and only examines it
        return "look" if held in seen.examined else f"examine {held}"
    return _fetch(goal, listing, seen, mind)


def _process(verb: str, held: str, listing: list[str], seen: Seen, mind: Mind) -> str | None:
    """Clean, heat or cool the held object; None when the agent skips the processing step."""
    if mind.know_type:
        app = _first(listing, APPLIANCE[verb])
        if app is not None:
            return _go_or(seen, app, f"{verb} {held} with {app}")
    elif mind.variant:
        wrong = next((r for k in WRONG_APPLIANCE[verb] if (r := _first(listing, k))), None)
        if wrong is not None and f"{verb} {held} with {wrong}" not in seen.failed:
            return _go_or(seen, wrong, f"{verb} {held} with {wrong}")
    return None


def _place(held: str, listing: list[str], seen: Seen, mind: Mind) -> str:
    for rec in (r for r in listing if kind_of(r) == mind.aim):
        put = f"put {held} in/on {rec}"
        if put in seen.failed:
            continue
        if seen.loc != rec:
            return f"go to {rec}"
        if seen.closed.get(rec) and mind.know_open and f"open {rec}" not in seen.failed:
            return f"open {rec}"
        return put
    return "look"


SCOPE_LABELS = {"clean": "clean tasks", "heat": "heat tasks", "cool": "cool tasks", "look": "look tasks",
                "pick_two": "two-object tasks"}


def _where(obj: str, home: str) -> Knowledge:
    hint = HIDDEN[obj][0]
    return Knowledge(f"{hint}:{obj}", (f"'{obj}'", home),
                     f"A '{obj}' is usually kept in a {home}: open the {home}s and look there first.")


def _open(kind: str) -> Knowledge:
    return Knowledge(f"rule_open:{kind}", (f"a closed {kind}", "before"),
                     f"A closed {kind} must be opened with 'open {kind} <n>' before you can put anything in it.")


# The fine-grained space (the knowledge-space mechanism): one location item per object
# kind, one opening item per receptacle kind, the six task-type rules.
FINE: dict[str, Knowledge] = {
    k.key: k for k in (
        *(KNOWLEDGE[TYPE_RULE[t]] for t in TYPE_RULE),
        *(_where(obj, home) for obj, (_, home) in HIDDEN.items()),
        *(_open(kind) for kind in sorted(OPENABLE)),
    )
}


class HouseholdSkill(BaseSkill):
    """The simulated LLM's competence on household tasks."""

    name = "household"

    def category(self, task_text: str) -> str | None:
        goal = parse_goal(task_text)
        return goal.type if goal is not None else None

    def scope_labels(self) -> dict[str, str]:
        return SCOPE_LABELS

    def space(self, fine: bool) -> list[Knowledge]:
        return list((FINE if fine else KNOWLEDGE).values())

    def refine(self, task_text: str, items: list[Knowledge]) -> list[Knowledge]:
        goal = parse_goal(task_text)
        if goal is None:
            return items
        out = []
        for k in items:
            if k.key == "rule_open" and goal.dest:
                out.append(FINE[f"rule_open:{goal.dest}"])
            elif k.key in HINT_HOME:
                out.append(FINE[f"{k.key}:{goal.obj}"])
            else:
                out.append(k)
        return out

    def recognizes(self, task_text: str) -> bool:
        return INTRO in task_text and GOAL_PREFIX.strip() in task_text

    def needs(self, task_text: str) -> list[Knowledge]:
        goal = parse_goal(task_text)
        return task_knowledge(goal) if goal is not None else []

    def act(
        self,
        messages: list[dict[str, Any]],
        task_text: str,
        *,
        competent: bool,
        missing: list[Knowledge],
        rng: random.Random,
    ) -> str:
        first_user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
        text = task_text if self.recognizes(task_text) else str(first_user)
        goal = parse_goal(text)
        listing = parse_listing(text)
        if goal is None or not listing:
            return "look"
        system = "\n".join(
            str(m.get("content") or "") for m in messages if m.get("role") == "system"
        )
        kinds = list(dict.fromkeys(kind_of(r) for r in listing))
        mind = make_mind(goal, kinds, system, competent=competent, missing=missing, rng=rng)
        return decide(goal, listing, read_history(messages), mind)
