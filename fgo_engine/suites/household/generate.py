"""Seeded episode generation: rooms, plausible object placement, one goal per episode.

``generate_episode(env_seed, task_type)`` is a pure function, so a task can always be
rebuilt from its seed; tasks also carry the layout as JSON in case this code changes.
"""

from __future__ import annotations

import random

from fgo_engine.suites.household.world import APPLIANCE, Goal, Layout, goal_text, kind_of

# (kind, min count, max count, probability the room has it)
ROOMS: dict[str, list[tuple[str, int, int, float]]] = {
    "kitchen": [
        ("cabinet", 4, 10, 1.0),
        ("countertop", 1, 3, 1.0),
        ("drawer", 3, 6, 1.0),
        ("fridge", 1, 1, 1.0),
        ("microwave", 1, 1, 1.0),
        ("sinkbasin", 1, 1, 1.0),
        ("stoveburner", 2, 4, 1.0),
        ("garbagecan", 1, 1, 1.0),
        ("coffeemachine", 1, 1, 1.0),
        ("toaster", 1, 1, 0.6),
        ("diningtable", 1, 1, 0.6),
        ("shelf", 1, 3, 0.5),
    ],
    "bedroom": [
        ("bed", 1, 1, 1.0),
        ("desk", 1, 1, 0.7),
        ("sidetable", 1, 2, 1.0),
        ("dresser", 1, 1, 0.6),
        ("drawer", 5, 10, 1.0),
        ("shelf", 1, 4, 0.8),
        ("garbagecan", 1, 1, 1.0),
        ("laundryhamper", 1, 1, 0.5),
        ("cabinet", 1, 2, 0.3),
        ("safe", 1, 1, 0.3),
        ("armchair", 1, 1, 0.3),
    ],
    "livingroom": [
        ("sofa", 1, 1, 1.0),
        ("armchair", 1, 2, 1.0),
        ("coffeetable", 1, 1, 1.0),
        ("sidetable", 1, 2, 0.8),
        ("drawer", 4, 9, 1.0),
        ("shelf", 1, 4, 1.0),
        ("cabinet", 2, 4, 0.8),
        ("garbagecan", 1, 1, 1.0),
        ("dresser", 1, 1, 0.4),
        ("tvstand", 1, 1, 0.5),
        ("safe", 1, 1, 0.3),
        ("desk", 1, 1, 0.3),
    ],
}

# Objects usually kept out of sight: kind → (hint knowledge key, home receptacle kind).
HIDDEN: dict[str, tuple[str, str]] = {
    **{k: ("loc_food", "fridge") for k in ("apple", "egg", "potato", "lettuce", "tomato", "bread")},
    **{k: ("loc_dishes", "cabinet") for k in ("mug", "cup", "plate", "bowl", "pan")},
    **{k: ("loc_utensils", "drawer") for k in ("knife", "fork", "spoon", "spatula", "ladle")},
    **{k: ("loc_desk", "drawer") for k in ("keychain", "creditcard", "cd", "pen", "pencil")},
}
HOME_PROB = 0.9

# Where an object may lie in plain sight (for hidden kinds: when not at home).
PLACES: dict[str, tuple[str, ...]] = {
    **{
        k: ("countertop", "diningtable")
        for k in ("apple", "egg", "potato", "lettuce", "tomato", "bread")
    },
    "mug": ("countertop", "diningtable", "coffeemachine", "sinkbasin", "shelf"),
    "cup": ("countertop", "diningtable", "sinkbasin", "shelf"),
    "plate": ("countertop", "diningtable", "sinkbasin", "shelf"),
    "bowl": ("countertop", "diningtable", "sinkbasin", "shelf"),
    "pan": ("stoveburner", "countertop"),
    **{
        k: ("countertop", "diningtable", "sinkbasin")
        for k in ("knife", "fork", "spoon", "spatula", "ladle")
    },
    **{
        k: ("desk", "sidetable", "dresser", "shelf", "coffeetable")
        for k in ("keychain", "creditcard", "cd", "pen", "pencil")
    },
    "saltshaker": ("countertop", "diningtable", "shelf"),
    "peppershaker": ("countertop", "diningtable", "shelf"),
    "dishsponge": ("sinkbasin", "countertop"),
    "soapbottle": ("countertop", "sinkbasin", "shelf"),
    "winebottle": ("countertop", "diningtable", "shelf"),
    "kettle": ("stoveburner", "countertop"),
    "book": ("bed", "desk", "sidetable", "shelf", "dresser", "coffeetable", "sofa"),
    "alarmclock": ("desk", "sidetable", "dresser", "shelf"),
    "vase": ("shelf", "dresser", "coffeetable", "sidetable", "tvstand"),
    "cellphone": ("bed", "desk", "sidetable", "dresser", "sofa", "armchair"),
    "pillow": ("bed", "sofa", "armchair"),
    "laptop": ("bed", "desk", "sofa", "coffeetable"),
    "statue": ("shelf", "dresser", "coffeetable", "tvstand", "sidetable"),
    "remotecontrol": ("sofa", "armchair", "coffeetable", "tvstand", "sidetable"),
}
KITCHEN_OBJECTS = (
    "apple",
    "egg",
    "potato",
    "lettuce",
    "tomato",
    "bread",
    "mug",
    "cup",
    "plate",
    "bowl",
    "pan",
    "knife",
    "fork",
    "spoon",
    "spatula",
    "ladle",
    "saltshaker",
    "peppershaker",
    "dishsponge",
    "soapbottle",
    "winebottle",
    "kettle",
)
ROOM_OBJECTS = (
    "keychain",
    "creditcard",
    "cd",
    "pen",
    "pencil",
    "book",
    "alarmclock",
    "vase",
    "cellphone",
    "pillow",
    "laptop",
    "statue",
    "remotecontrol",
)

TYPE_OBJECTS: dict[str, tuple[str, ...]] = {
    "clean": (
        "apple",
        "lettuce",
        "tomato",
        "potato",
        "mug",
        "cup",
        "plate",
        "bowl",
        "pan",
        "knife",
        "fork",
        "spoon",
        "spatula",
        "ladle",
    ),
    "heat": ("apple", "egg", "potato", "tomato", "bread", "mug", "cup", "plate"),
    "cool": (
        "apple",
        "lettuce",
        "tomato",
        "potato",
        "bread",
        "mug",
        "cup",
        "plate",
        "pan",
        "bowl",
        "winebottle",
    ),
    "look": (
        "keychain",
        "creditcard",
        "cd",
        "pen",
        "pencil",
        "book",
        "alarmclock",
        "vase",
        "cellphone",
        "statue",
    ),
}
KITCHEN_DESTS = ("countertop", "diningtable", "cabinet", "shelf", "garbagecan")
ROOM_DESTS = (
    "desk",
    "sidetable",
    "dresser",
    "shelf",
    "bed",
    "coffeetable",
    "sofa",
    "armchair",
    "drawer",
    "cabinet",
    "safe",
    "garbagecan",
    "tvstand",
)
SPECIAL_DESTS: dict[str, tuple[str, ...]] = {
    "mug": ("coffeemachine", "microwave", "fridge", "sinkbasin"),
    "cup": ("coffeemachine", "microwave", "fridge", "sinkbasin"),
    "plate": ("microwave", "fridge", "sinkbasin"),
    "bowl": ("fridge", "sinkbasin", "microwave"),
    "pan": ("stoveburner", "fridge", "sinkbasin"),
    "kettle": ("stoveburner",),
    **{k: ("fridge", "microwave") for k in ("apple", "egg", "potato", "tomato", "bread")},
    "lettuce": ("fridge",),
    **{k: ("drawer", "sinkbasin") for k in ("knife", "fork", "spoon", "spatula", "ladle")},
    "dishsponge": ("sinkbasin", "drawer"),
    "pillow": ("bed", "sofa", "armchair"),
    "laptop": ("bed", "desk", "sofa", "coffeetable"),
}


def _build_room(rng: random.Random, room: str) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {}
    for kind, lo, hi, p in ROOMS[room]:
        if rng.random() < p:
            by_kind[kind] = [f"{kind} {i}" for i in range(1, rng.randint(lo, hi) + 1)]
    return by_kind


def _spot(
    rng: random.Random, kind: str, by_kind: dict[str, list[str]], avoid: str | None
) -> str | None:
    """A receptacle instance for one object of ``kind``, never of kind ``avoid``."""
    home = HIDDEN.get(kind, (None, None))[1]
    if home and home != avoid and home in by_kind and rng.random() < HOME_PROB:
        return rng.choice(by_kind[home])
    options = [k for k in PLACES[kind] if k in by_kind and k != avoid]
    if not options:
        if home and home != avoid and home in by_kind:
            return rng.choice(by_kind[home])
        return None
    return rng.choice(by_kind[rng.choice(options)])


def _dest_options(task_type: str, obj: str, by_kind: dict[str, list[str]], room: str) -> list[str]:
    if obj in ("pillow", "laptop"):
        base: tuple[str, ...] = SPECIAL_DESTS[obj]
    else:
        base = (KITCHEN_DESTS if room == "kitchen" else ROOM_DESTS) + SPECIAL_DESTS.get(obj, ())
    avoid = APPLIANCE.get(task_type)
    out = []
    for k in base:
        if k in by_kind and k != avoid and k not in out:
            out.append(k)
    return out


def _try_episode(rng: random.Random, task_type: str) -> tuple[Layout, Goal] | None:
    if task_type in APPLIANCE:
        room = "kitchen"
    elif task_type == "look":
        room = rng.choice(("bedroom", "livingroom"))
    else:
        room = rng.choice(("kitchen", "bedroom", "livingroom"))
    by_kind = _build_room(rng, room)
    pool = KITCHEN_OBJECTS if room == "kitchen" else ROOM_OBJECTS
    allowed = [o for o in TYPE_OBJECTS.get(task_type, pool) if o in pool]
    obj = rng.choice(allowed)
    dest: str | None = None
    if task_type != "look":
        options = _dest_options(task_type, obj, by_kind, room)
        if not options:
            return None
        dest = rng.choice(options)
    contents: dict[str, list[str]] = {r: [] for rs in by_kind.values() for r in rs}
    # targets
    n_targets = (
        (2 if rng.random() < 0.7 else 3)
        if task_type == "pick_two"
        else (1 if rng.random() < 0.75 else 2)
    )
    for i in range(n_targets):
        spot = _spot(rng, obj, by_kind, dest)
        if spot is None:
            return None
        contents[spot].append(f"{obj} {i + 1}")
    # distractors: other kinds only, so the target's count stays exact
    counts: dict[str, int] = {}
    others = [o for o in pool if o != obj and any(k in by_kind for k in PLACES[o])]
    for _ in range(rng.randint(10, 16) if room == "kitchen" else rng.randint(8, 12)):
        kind = rng.choice(others)
        spot = _spot(rng, kind, by_kind, None)
        if spot is None:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        contents[spot].append(f"{kind} {counts[kind]}")
    # lamp
    lamp = lamp_at = None
    if room != "kitchen":
        stands = [r for k in ("desk", "sidetable", "dresser") for r in by_kind.get(k, [])]
        if stands and rng.random() < 0.75:
            lamp, lamp_at = "desklamp 1", rng.choice(stands)
            contents[lamp_at].append(lamp)
        else:
            lamp = lamp_at = "floorlamp 1"
            by_kind["floorlamp"] = [lamp]
    if task_type == "look" and lamp is None:
        return None
    for objs in contents.values():
        rng.shuffle(objs)
    kinds = list(by_kind)
    rng.shuffle(kinds)
    receptacles = [r for k in kinds for r in by_kind[k]]
    layout = Layout(
        room=room,
        receptacles=receptacles,
        contents={r: contents.get(r, []) for r in receptacles if kind_of(r) != "floorlamp"},
        lamp=lamp,
        lamp_at=lamp_at,
    )
    lamp_kind = kind_of(lamp) if lamp else None
    text = goal_text(task_type, obj, dest, lamp_kind, rng.randrange(2))
    return layout, Goal(
        task_type, obj, dest=dest, lamp=lamp_kind if task_type == "look" else None, text=text
    )


def generate_episode(env_seed: int, task_type: str) -> tuple[Layout, Goal]:
    """The layout and goal of one episode; deterministic in ``(env_seed, task_type)``."""
    rng = random.Random(env_seed)
    for _ in range(100):
        got = _try_episode(rng, task_type)
        if got is not None:
            return got
    raise RuntimeError(
        f"could not generate a {task_type} episode from seed {env_seed}"
    )  # pragma: no cover


def allocate(n: int, weights: dict[str, float]) -> list[str]:
    """Split ``n`` tasks over types in proportion to ``weights`` (largest remainder)."""
    total = sum(weights.values())
    raw = {t: n * w / total for t, w in weights.items()}
    counts = {t: int(v) for t, v in raw.items()}
    rest = sorted(weights, key=lambda t: (-(raw[t] - counts[t]), list(weights).index(t)))
    for t in rest[: n - sum(counts.values())]:
        counts[t] += 1
    return [t for t in weights for _ in range(counts[t])]


__all__ = ["HIDDEN", "allocate", "generate_episode"]
