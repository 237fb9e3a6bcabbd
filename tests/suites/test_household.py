"""The household suite: generation, environment rules, the ReAct loop and the sim skill."""

from __future__ import annotations

import collections
import json
import random

import pytest

from fgo_engine.llm.sim.skills import cue_covered, find_skill
from fgo_engine.suites.base import Suite, load_suite
from fgo_engine.suites.household import (
    ACTION_GUIDE,
    INITIAL_INSTRUCTION,
    KNOWLEDGE,
    TASK_TYPES,
    HouseholdEnv,
    HouseholdSkill,
    HouseholdSuite,
    env_from_task,
    oracle_plan,
    parse_action,
    parse_goal,
)
from fgo_engine.suites.household.skill import TYPE_RULE
from fgo_engine.suites.household.world import Action, kind_of
from fgo_engine.types import Completion, Module, Task

NOTHING = "Nothing happens."


@pytest.fixture(scope="module")
def suite() -> HouseholdSuite:
    return HouseholdSuite(seed=0)


@pytest.fixture(scope="module")
def train(suite: HouseholdSuite) -> list[Task]:
    return suite.train_tasks()


def first_of(tasks: list[Task], task_type: str) -> Task:
    return next(t for t in tasks if t.category == task_type)


def play(task: Task, actions: list[str], step_limit: int = 30) -> tuple[HouseholdEnv, list[str]]:
    env = env_from_task(task, step_limit=step_limit)
    env.reset()
    return env, [env.step(a) for a in actions]


def full_module() -> Module:
    rules = "\n".join(f"- {k.text}" for k in KNOWLEDGE.values())
    return Module("instruction", INITIAL_INSTRUCTION + "\n" + rules)


# -- generation ---------------------------------------------------------------------------
def test_generation_is_deterministic_in_the_seed():
    a, b, c = HouseholdSuite(seed=3), HouseholdSuite(seed=3), HouseholdSuite(seed=4)
    assert [(t.id, t.input, t.expected, t.category) for t in a.train_tasks()] == [
        (t.id, t.input, t.expected, t.category) for t in b.train_tasks()
    ]
    assert [t.meta for t in a.test_tasks()] == [t.meta for t in b.test_tasks()]
    assert [t.input for t in a.train_tasks()] != [t.input for t in c.train_tasks()]
    assert not {t.input for t in a.train_tasks()} & {t.input for t in a.test_tasks()}


def test_counts_categories_and_sizes(suite: HouseholdSuite, train: list[Task]):
    test = suite.test_tasks()
    assert len(train) == 60 and len(test) == 134
    assert collections.Counter(t.category for t in train) == {t: 10 for t in TASK_TYPES}
    assert {t.category for t in test} == set(TASK_TYPES)
    assert collections.Counter(t.category for t in test) == {
        "pick": 24,
        "clean": 31,
        "heat": 23,
        "cool": 21,
        "look": 18,
        "pick_two": 17,
    }
    assert len({t.id for t in train + test}) == 194
    small = load_suite("household", seed=1, n_train=12, n_test=7)
    assert isinstance(small, HouseholdSuite) and isinstance(small, Suite)
    assert collections.Counter(t.category for t in small.train_tasks()) == {
        t: 2 for t in TASK_TYPES
    }
    assert len(small.test_tasks()) == 7


def test_task_text_and_goal_line(train: list[Task]):
    for t in train:
        assert t.input.startswith(
            "You are in the middle of a room. Looking quickly around you, you see a "
        )
        goal_line = t.input.splitlines()[-1]
        assert goal_line == f"Your task is to: {t.expected}"
        goal = parse_goal(t.input)
        assert goal is not None and goal.type == t.category


def test_task_rebuilds_its_environment_from_a_stored_row(train: list[Task]):
    for t in train[:12]:
        row = {
            "id": t.id,
            "input": t.input,
            "expected": t.expected,
            "category": t.category,
            "meta": json.dumps(t.meta),
        }
        again = Task(
            id=row["id"],
            input=row["input"],
            expected=row["expected"],
            category=row["category"],
            meta=json.loads(row["meta"]),
        )
        assert env_from_task(again).reset() == t.input
        assert oracle_plan(again) == oracle_plan(t)
        seed_only = Task(
            t.id,
            t.input,
            t.expected,
            t.category,
            meta={"env_seed": t.meta["env_seed"], "task_type": t.category},
        )
        assert env_from_task(seed_only).reset() == t.input


# -- environment ----------------------------------------------------------------------------
@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_oracle_plan_wins_every_task_of_each_type(
    suite: HouseholdSuite, train: list[Task], task_type: str
):
    tasks = [t for t in train + suite.test_tasks() if t.category == task_type]
    for t in tasks:
        plan = oracle_plan(t)
        env, obs = play(t, plan)
        assert env.won, (t.id, plan, obs)
        assert NOTHING not in obs
        env2, _ = play(t, plan[:-1])
        assert not env2.won  # the goal is reached by the last action, not before


def _without(plan: list[str], prefix: str) -> list[str]:
    return [a for a in plan if not a.startswith(prefix)]


@pytest.mark.parametrize("task_type", ["clean", "heat", "cool"])
def test_skipping_the_processing_step_or_using_the_wrong_appliance_fails(
    train: list[Task], task_type: str
):
    t = first_of(train, task_type)
    plan = oracle_plan(t)
    env, _ = play(t, _without(plan, f"{task_type} "))
    assert not env.won
    wrong = {"clean": "countertop 1", "heat": "stoveburner 1", "cool": "sinkbasin 1"}[task_type]
    swapped = []
    for a in plan:
        if a.startswith(f"{task_type} "):
            obj = a.split(" with ")[0].split(" ", 1)[1]
            swapped += [f"go to {wrong}", f"{task_type} {obj} with {wrong}"]
        else:
            swapped.append(a)
    env, obs = play(t, swapped)
    assert NOTHING in obs and not env.won


@pytest.mark.parametrize("task_type", ["pick", "clean", "pick_two"])
def test_wrong_destination_fails(train: list[Task], task_type: str):
    t = first_of(train, task_type)
    env = env_from_task(t)
    dest = env.goal.dest
    other = next(
        r
        for r in env.layout.receptacles
        if kind_of(r) not in (dest, "fridge", "microwave", "cabinet", "drawer", "safe", "floorlamp")
    )
    real = _first_dest(env)
    plan = []
    for a in oracle_plan(t):
        if a == f"open {real}":
            continue
        if a == f"go to {real}" or a.endswith(f" in/on {real}"):
            a = a[: -len(real)] + other
        plan.append(a)
    env, obs = play(t, plan)
    assert not env.won
    assert any(o.startswith("You put the ") and o.endswith(f"in/on the {other}.") for o in obs)


def _first_dest(env: HouseholdEnv) -> str:
    return next(r for r in env.layout.receptacles if kind_of(r) == env.goal.dest)


def test_look_needs_the_object_in_hand(train: list[Task]):
    t = first_of(train, "look")
    env = env_from_task(t)
    plan = oracle_plan(t)
    lamp_only = [f"go to {env.layout.lamp_at}", f"use {env.layout.lamp}"]
    env, obs = play(t, lamp_only)
    assert obs[-1] == f"You turn on the {env.layout.lamp}." and not env.won
    env, _ = play(t, plan)
    assert env.won


def test_pick_two_needs_two_objects(train: list[Task]):
    t = first_of(train, "pick_two")
    plan = oracle_plan(t)
    first_put = next(i for i, a in enumerate(plan) if a.startswith("put "))
    env, _ = play(t, plan[: first_put + 1])
    assert not env.won
    env, _ = play(t, plan)
    assert env.won


def test_step_limit_ends_the_episode(train: list[Task]):
    t = first_of(train, "pick")
    env, _obs = play(t, ["look"] * 5, step_limit=5)
    assert env.done and not env.won and env.steps == 5
    assert env.step(oracle_plan(t)[0]) == NOTHING  # nothing moves after the end
    env, _ = play(t, ["inventory"] * 4 + oracle_plan(t), step_limit=6)
    assert env.done and not env.won


def test_closed_receptacles_hide_their_contents_and_block_take_and_put(train: list[Task]):
    t = next(
        t
        for t in train
        if t.meta["goal"]["obj"] in ("egg", "apple", "potato", "tomato", "lettuce", "bread")
        and any(t.meta["goal"]["obj"] in o for o in t.meta["layout"]["contents"]["fridge 1"])
    )
    env = env_from_task(t)
    env.reset()
    obj = next(o for o in env.layout.contents["fridge 1"] if kind_of(o) == env.goal.obj)
    assert env.step("go to fridge 1") == "You arrive at fridge 1. The fridge 1 is closed."
    assert env.step(f"take {obj} from fridge 1") == NOTHING
    opened = env.step("open fridge 1")
    assert (
        opened.startswith("You open the fridge 1. The fridge 1 is open. In it, you see ")
        and obj in opened
    )
    assert env.step(f"take {obj} from fridge 1") == f"You pick up the {obj} from the fridge 1."
    assert env.step("inventory") == f"You are carrying: a {obj}."
    assert env.step(f"take {obj} from fridge 1") == NOTHING  # hands are full


# -- parser -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "go to fridge 1",
        "Action: go to fridge 1",
        "  go   to   fridge 1.  ",
        '"go to fridge 1"',
        "> go to fridge 1",
        "GO TO Fridge 1",
        "Think: the egg is cold\nAction: go to fridge 1",
        "`go to the fridge 1`",
    ],
)
def test_parser_tolerates_common_variants(text: str):
    assert parse_action(text) == Action("go", target="fridge 1")


def test_parser_reads_every_action_form():
    assert parse_action("take egg 1 from fridge 1") == Action("take", "egg 1", "fridge 1")
    assert parse_action("put egg 1 in/on countertop 2") == Action("put", "egg 1", "countertop 2")
    assert parse_action("put the egg 1 on countertop 2.") == Action("put", "egg 1", "countertop 2")
    assert parse_action("heat egg 1 with microwave 1") == Action("heat", "egg 1", "microwave 1")
    assert parse_action("use desklamp 1") == Action("use", target="desklamp 1")
    assert parse_action("inventory") == Action("inventory")
    assert parse_action("think: first find the egg").verb == "think"
    assert parse_action("I will now fly to the moon") is None
    assert parse_action("") is None


def test_invalid_actions_and_thoughts(train: list[Task]):
    env = env_from_task(train[0])
    env.reset()
    assert env.step("dance wildly") == NOTHING and env.steps == 1
    assert env.step("go to spaceship 1") == NOTHING and env.steps == 2
    assert env.step("think: where could it be?") == "OK." and env.steps == 2


# -- run_agent ----------------------------------------------------------------------------
def replay(actions: list[str], calls: list[int] | None = None):
    it = iter(actions)

    def llm(messages, *, tools=None):
        if calls is not None:
            calls.append(len(messages))
        return Completion(text=f"Action: {next(it, 'look')}")

    return llm


def test_run_agent_with_the_oracle_succeeds(suite: HouseholdSuite, train: list[Task]):
    for task_type in TASK_TYPES:
        t = first_of(train, task_type)
        traj = suite.run_agent(
            t, suite.initial_module(), replay(["think: let me plan"] + oracle_plan(t))
        )
        assert traj.success and traj.score == 1.0 and traj.answer == "done" and traj.error is None
        kinds = [s.kind for s in traj.steps]
        assert kinds == ["action", "observation"] * (len(kinds) // 2)
        assert traj.steps[1].text == "OK."


def test_run_agent_with_garbage_fails_cleanly(suite: HouseholdSuite, train: list[Task]):
    calls: list[int] = []

    def garbage(messages, *, tools=None):
        calls.append(len(messages))
        return Completion(text="Sure! I'd love to help with your household.")

    traj = suite.run_agent(train[0], suite.initial_module(), garbage)
    assert not traj.success and traj.score == 0.0 and traj.answer == "not done"
    assert traj.error and "step limit" in traj.error
    assert len(calls) == 30
    assert max(calls) <= 2 + 2 * suite.history_turns  # the conversation stays bounded
    assert all(s.text == NOTHING for s in traj.steps if s.kind == "observation")


def test_run_agent_stops_after_three_empty_replies(suite: HouseholdSuite, train: list[Task]):
    calls: list[int] = []

    def empty(messages, *, tools=None):
        calls.append(1)
        return Completion(text="   ")

    traj = suite.run_agent(train[0], suite.initial_module(), empty)
    assert len(calls) == 3 and not traj.success and "empty" in (traj.error or "")


def test_system_prompt_holds_module_and_grammar(suite: HouseholdSuite, train: list[Task]):
    seen: list[list[dict]] = []

    def spy(messages, *, tools=None):
        seen.append(messages)
        return Completion(text="look")

    suite.run_agent(train[0], Module("instruction", "Be brisk.\n- a rule"), spy)
    first = seen[0]
    assert first[0]["role"] == "system" and first[0]["content"].startswith("Be brisk.\n- a rule")
    assert "exactly one action" in first[0]["content"]
    assert first[1] == {"role": "user", "content": train[0].input}
    assert seen[-1][:2] == first[:2]  # the task stays in view when the history is trimmed


# -- the simulated-LLM skill --------------------------------------------------------------
def test_knowledge_items_are_well_formed():
    assert 10 <= len(KNOWLEDGE) <= 14
    for item in KNOWLEDGE.values():
        assert all(w == w.lower() and w in item.text.lower() for w in item.cue), item.key
        others = [o.key for o in KNOWLEDGE.values() if o is not item and cue_covered(item.text, o)]
        assert not others, (item.key, others)
        assert not cue_covered(ACTION_GUIDE, item), item.key  # the fixed grammar teaches nothing
    covered = [k for k in KNOWLEDGE.values() if cue_covered(INITIAL_INSTRUCTION, k)]
    assert len(covered) <= 2
    assert INITIAL_INSTRUCTION.splitlines()[0] and not INITIAL_INSTRUCTION.startswith("- ")
    assert Module("instruction", INITIAL_INSTRUCTION).rule_lines()


def test_skill_recognizes_and_needs(train: list[Task]):
    skill = HouseholdSkill()
    assert find_skill(train[0].input).name == "household"
    assert not skill.recognizes("Extract the transport reference from this invoice.")
    for t in train:
        keys = [k.key for k in skill.needs(t.input)]
        assert keys[0] == TYPE_RULE[t.category]
        goal = t.meta["goal"]
        if goal["obj"] == "egg" and goal["dest"] != "fridge":
            assert "loc_food" in keys
        if goal["dest"] in ("fridge", "cabinet", "drawer", "safe", "microwave"):
            assert "rule_open" in keys
    assert skill.needs(train[0].input) == skill.needs(train[0].input)


def drive(
    suite: HouseholdSuite, task: Task, module: Module, *, competent: bool, missing, seed: int = 0
):
    """Play one episode the way run_agent does, calling the skill as the LLM."""
    skill = HouseholdSkill()
    env = env_from_task(task, step_limit=suite.step_limit)
    env.reset()
    messages = [
        {"role": "system", "content": suite.system_prompt(module)},
        {"role": "user", "content": task.input},
    ]
    actions = []
    while not env.done:
        reply = skill.act(
            suite.window(messages),
            task.input,
            competent=competent,
            missing=missing,
            rng=random.Random(f"{seed}|{task.id}"),
        )
        actions.append(reply)
        obs = env.step(reply)
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": obs}]
    return env, actions, messages


def test_competent_skill_wins_most_tasks(suite: HouseholdSuite, train: list[Task]):
    wins = [drive(suite, t, full_module(), competent=True, missing=[])[0].won for t in train]
    assert sum(wins) / len(wins) >= 0.9


def test_skill_missing_the_type_rule_wins_clearly_fewer(suite: HouseholdSuite, train: list[Task]):
    wins = 0
    for t in train:
        missing = [KNOWLEDGE[TYPE_RULE[t.category]]]
        env, _actions, messages = drive(
            suite, t, suite.initial_module(), competent=False, missing=missing
        )
        wins += env.won
        observations = [m["content"] for m in messages[2:] if m["role"] == "user"]
        if t.category in ("clean", "heat", "cool"):  # the processing step never succeeds
            assert not any(o.startswith(f"You {t.category} the ") for o in observations)
        if t.category == "pick_two":  # stops after one object
            assert sum(o.startswith("You put the ") for o in observations) == 1
    assert wins / len(train) < 0.3


def test_location_hint_steers_the_search(suite: HouseholdSuite, train: list[Task]):
    t = next(
        t
        for t in train
        if any(k.key == "loc_food" for k in HouseholdSkill().needs(t.input))
        and any(
            kind_of(o) == t.meta["goal"]["obj"] for o in t.meta["layout"]["contents"]["fridge 1"]
        )
        and t.meta["layout"]["receptacles"][0] != "fridge 1"
    )
    module = full_module()
    _, informed, _ = drive(suite, t, module, competent=True, missing=[])
    assert informed[0] == "go to fridge 1"
    _, naive, _ = drive(suite, t, module, competent=False, missing=[KNOWLEDGE["loc_food"]])
    assert naive[0] != "go to fridge 1"
    assert len(naive) > len(informed)


def test_act_is_deterministic_given_messages_and_rng(suite: HouseholdSuite, train: list[Task]):
    skill = HouseholdSkill()
    t = first_of(train, "heat")
    _, _, messages = drive(suite, t, suite.initial_module(), competent=False, missing=[])
    for cut in (2, 6, 10):
        a = skill.act(messages[:cut], t.input, competent=False, missing=[], rng=random.Random(5))
        b = skill.act(messages[:cut], t.input, competent=False, missing=[], rng=random.Random(5))
        assert a == b and parse_action(a) is not None
