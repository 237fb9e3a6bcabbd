"""The ``household`` suite: ALFWorld-like tasks and a ReAct loop over the environment."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from fgo_engine.errors import ConfigError
from fgo_engine.suites.base import AgentLLM, SuiteBase
from fgo_engine.suites.household.generate import allocate, generate_episode
from fgo_engine.suites.household.world import (
    TASK_TYPES,
    Goal,
    HouseholdEnv,
    Layout,
    parse_action,
)
from fgo_engine.suites.household.world import (
    oracle_plan as _plan_from_layout,
)
from fgo_engine.types import Module, ModuleKind, Step, Task, Trajectory

# ALFWorld's unseen split (134 games) by type; the test split keeps these proportions.
ALFWORLD_UNSEEN = {"pick": 24, "clean": 31, "heat": 23, "cool": 21, "look": 18, "pick_two": 17}

ACTION_GUIDE = """\
You act in the household one step at a time. The actions are:
  go to <receptacle>
  open <receptacle> | close <receptacle>
  take <object> from <receptacle>
  put <object> in/on <receptacle>
  clean <object> with <receptacle>
  heat <object> with <receptacle>
  cool <object> with <receptacle>
  use <lamp>
  examine <something> | inventory | look
  think: <your reasoning>
Give objects and receptacles with their number, as in 'apple 1' or 'cabinet 2'.
Reply with exactly one action and nothing else."""

INITIAL_INSTRUCTION = """\
You are an agent in a text-based household; reach the goal in as few actions as you can.
- Read the goal to see which object you need and where it must end up.
- Visit receptacles to search for the object and take it when you see it.
- Put the object in or on the named receptacle to finish."""


def env_from_task(task: Task, *, step_limit: int = 30) -> HouseholdEnv:
    """Rebuild a task's environment from the task alone (its stored layout, else its seed)."""
    meta = task.meta or {}
    if "layout" in meta and "goal" in meta:
        layout, goal = Layout.from_dict(meta["layout"]), Goal.from_dict(meta["goal"])
    elif "env_seed" in meta:
        layout, goal = generate_episode(int(meta["env_seed"]), meta.get("task_type", task.category))
    else:
        raise ConfigError(
            f"household task {task.id!r} has neither a layout nor an env_seed in meta"
        )
    return HouseholdEnv(layout, goal, step_limit=step_limit)


def oracle_plan(task: Task) -> list[str]:
    """A correct action sequence computed from the task's ground truth."""
    env = env_from_task(task)
    return _plan_from_layout(env.layout, env.goal)


def make_task(task_id: str, env_seed: int, task_type: str) -> Task:
    layout, goal = generate_episode(env_seed, task_type)
    return Task(
        id=task_id,
        input=layout.intro(goal),
        expected=goal.text,
        category=task_type,
        meta={
            "env_seed": env_seed,
            "task_type": task_type,
            "goal": goal.to_dict(),
            "layout": layout.to_dict(),
        },
    )


class HouseholdSuite(SuiteBase):
    """ALFWorld-like household tasks; the module is the agent's instruction."""

    name = "household"
    module_kind: ModuleKind = "instruction"

    def __init__(
        self,
        seed: int = 0,
        *,
        n_train: int = 60,
        n_test: int = 134,
        step_limit: int = 30,
        history_turns: int = 24,
        **unknown: Any,
    ):
        if unknown:
            raise ConfigError(
                f"household: unknown option {sorted(unknown)[0]!r}; "
                "options are n_train, n_test, step_limit, history_turns"
            )
        if n_train < 0 or n_test < 0:
            raise ConfigError("household: n_train and n_test must be ≥ 0")
        if step_limit < 1:
            raise ConfigError("household: step_limit must be ≥ 1")
        self.seed = seed
        self.n_train = n_train
        self.n_test = n_test
        self.step_limit = step_limit
        self.history_turns = max(1, history_turns)
        self._cache: dict[str, list[Task]] = {}

    # projection hooks (fgo_engine.method.projection)
    turn_tokens = 60  # tokens one ReAct turn adds to the history: the action and the observation

    def agent_calls(self, task: Task) -> tuple[int, float]:
        """(at most, expected) agent calls of one episode: the turn limit of ``run_agent``, and the
        mean of a solved episode (the oracle plan) and one that runs out of steps."""
        plan = len(oracle_plan(task))
        return 2 * self.step_limit + 3, (min(plan, self.step_limit) + self.step_limit) / 2

    # tasks
    def _tasks(self, split: str, n: int, weights: dict[str, float]) -> list[Task]:
        if split not in self._cache:
            types = allocate(n, weights)
            random.Random(f"household|{self.seed}|{split}|order").shuffle(types)
            tasks = []
            for i, t in enumerate(types):
                env_seed = random.Random(f"household|{self.seed}|{split}|{i}").getrandbits(32)
                tasks.append(make_task(f"household-{split}-{i:03d}", env_seed, t))
            self._cache[split] = tasks
        return list(self._cache[split])

    def train_tasks(self) -> list[Task]:
        return self._tasks("train", self.n_train, {t: 1.0 for t in TASK_TYPES})

    def test_tasks(self) -> list[Task]:
        return self._tasks("test", self.n_test, {t: float(w) for t, w in ALFWORLD_UNSEEN.items()})

    @property
    def calls_per_task(self) -> int:  # type: ignore[override]  # SuiteBase's default, here from the step limit
        """At most one agent call per action (a ReAct episode), for the projected call count."""
        return self.step_limit

    # module
    def initial_module(self) -> Module:
        return Module("instruction", INITIAL_INSTRUCTION)

    def describe(self) -> str:
        return (
            "The agent acts in an ALFWorld-like text household: it reads a room description and a "
            "goal, then sends one text action per turn (go to, open, take, put, clean, heat, cool, "
            "use, …) until the environment reports the goal reached or the step limit runs out."
        )

    # running
    def system_prompt(self, module: Module) -> str:
        return module.text.rstrip() + "\n\n" + ACTION_GUIDE

    def window(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first two messages plus the last ``history_turns`` exchanges."""
        return messages[:2] + messages[2:][-2 * self.history_turns :]

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        env = env_from_task(task, step_limit=self.step_limit)
        env.reset()
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.system_prompt(module)},
            {"role": "user", "content": task.input},
        ]
        return react_episode(task.id, env, messages, llm, window=self.window, step_limit=self.step_limit,
                             render=_render_action)


def _render_action(reply: str) -> str:
    action = parse_action(reply)
    return action.render() if action is not None else reply


class ReactEnv(Protocol):
    """What the ReAct loop needs of an environment (the household's, or real ALFWorld's)."""

    @property
    def won(self) -> bool: ...

    @property
    def done(self) -> bool: ...

    def step(self, text: str) -> str: ...


def react_episode(
    task_id: str,
    env: ReactEnv,
    messages: list[dict[str, Any]],
    llm: AgentLLM,
    *,
    window: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    step_limit: int,
    render: Callable[[str], str],
) -> Trajectory:
    """The ReAct loop: one action per reply until the environment reports the goal reached,
    its step limit, or three empty replies. ``messages`` starts as [system, first user]."""
    steps: list[Step] = []
    empties = 0
    error: str | None = None
    max_turns = 2 * step_limit + 3
    for _ in range(max_turns):
        reply = (llm(window(messages)).text or "").strip()
        if not reply:
            empties += 1
            steps.append(Step("note", "empty reply"))
            if empties >= 3:
                error = "the agent returned an empty reply 3 times"
                break
            continue
        obs = env.step(reply)
        steps.append(Step("action", render(reply)))
        steps.append(Step("observation", obs))
        messages.append({"role": "assistant", "content": reply})
        messages.append({"role": "user", "content": obs})
        if env.won:
            break
        if env.done:
            error = f"step limit reached ({step_limit} actions)"
            break
    else:
        error = f"turn limit reached ({max_turns} replies)"
    success = env.won
    return Trajectory(
        task_id=task_id,
        steps=steps,
        answer="done" if success else "not done",
        success=success,
        score=1.0 if success else 0.0,
        error=None if success else error,
    )
