"""The ``alfworld`` suite: the real ALFWorld text games, played with the household ReAct loop."""
from __future__ import annotations

import random
import re
from typing import Any

from fgo_engine.errors import ConfigError
from fgo_engine.suites.alfworld.games import TYPES, WHERE, Game, find_games, games_root, intros
from fgo_engine.suites.alfworld.worker import AlfworldEnv
from fgo_engine.suites.base import AgentLLM, SuiteBase, check_data_options
from fgo_engine.suites.household.generate import allocate
from fgo_engine.suites.household.suite import ACTION_GUIDE as HOUSEHOLD_GUIDE
from fgo_engine.suites.household.suite import INITIAL_INSTRUCTION, react_episode
from fgo_engine.suites.household.world import parse_action
from fgo_engine.types import Module, ModuleKind, Task, Trajectory

# ALFWorld's command grammar (json_2.1.1 games): objects are put down with "move … to …".
ACTION_GUIDE = HOUSEHOLD_GUIDE.replace("put <object> in/on <receptacle>", "move <object> to <receptacle>")

_MOVE_RE = re.compile(r"^move (.+?) to (.+)$")


def command(reply: str) -> str:
    """The game command for an agent reply: household-style parsing (``Action: …``, quotes,
    ``put X in/on Y`` → ``move X to Y``), else the reply's first line as typed."""
    first = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    raw = re.sub(r"^(?:>\s*|action\s*:\s*)", "", first.strip("*`\"'"), flags=re.IGNORECASE)
    raw = re.sub(r"[.!]+$", "", raw).strip().lower()
    if _MOVE_RE.match(raw):
        return raw
    action = parse_action(reply)
    if action is None:
        return raw
    if action.verb == "put":
        return f"move {action.obj} to {action.target}"
    return action.render()


class _GameEnv:
    """Adapts :class:`AlfworldEnv` to the ReAct loop: thoughts cost no game step."""

    def __init__(self, env: AlfworldEnv):
        self.env = env

    @property
    def won(self) -> bool:
        return self.env.won

    @property
    def done(self) -> bool:
        return self.env.done

    def step(self, text: str) -> str:
        cmd = command(text)
        if cmd.startswith(("think:", "thought:")):
            return "OK."
        return self.env.step(cmd)


class AlfworldSuite(SuiteBase):
    """Real ALFWorld games (TextWorld); the module is the agent's instruction."""

    name = "alfworld"
    module_kind: ModuleKind = "instruction"

    def __init__(self, seed: int = 0, *, data: str | None = None, n_train: int = 60, n_test: int = 134,
                 step_limit: int = 50, history_turns: int = 24, **unknown: Any):
        check_data_options("alfworld", WHERE, data, unknown, "data, n_train, n_test, step_limit, history_turns",
                           n_train=n_train, n_test=n_test, step_limit=step_limit)
        if step_limit < 1:
            raise ConfigError("alfworld: step_limit must be ≥ 1")
        assert data is not None  # check_data_options refuses a missing data=
        self.root = games_root(data)
        self.seed = seed
        self.n_train, self.n_test = n_train, n_test
        self.step_limit = step_limit
        self.history_turns = max(1, history_turns)
        self._games = {"train": self._pick("train", n_train), "test": self._pick("test", n_test)}
        self._tasks: dict[str, list[Task]] = {}

    def _pick(self, split: str, n: int) -> list[Game]:
        """``n`` games of a split, spread over the six types: evenly for training (the
        paper's 10 per type), in the split's own proportions for the test set."""
        if n == 0:
            return []
        games = find_games(self.root, split)
        if n > len(games):
            raise ConfigError(f"alfworld: {split} has {len(games)} games, fewer than n_{split} = {n}")
        by_type = {t: [g for g in games if g.task_type == t] for t in TYPES}
        if split == "train":
            weights = {t: 1.0 for t in TYPES if by_type[t]}
        else:
            weights = {t: float(len(by_type[t])) for t in TYPES if by_type[t]}
        quota = {t: 0 for t in weights}
        for t in allocate(n, weights):
            quota[t] += 1
        short = [t for t in quota if quota[t] > len(by_type[t])]
        if short:
            t = short[0]
            raise ConfigError(f"alfworld: {split} has {len(by_type[t])} {t} games, fewer than the "
                              f"{quota[t]} that n_{split} = {n} asks of each type")
        rng = random.Random(f"alfworld|{self.seed}|{split}")
        picked = [g for t in quota for g in rng.sample(by_type[t], quota[t])]
        return sorted(picked, key=lambda g: g.path) if n == len(games) else picked

    def games(self, split: str) -> list[Game]:
        """The games picked for ``train`` or ``test`` (no environment is started)."""
        return list(self._games[split])

    def _load(self, split: str) -> list[Task]:
        if split not in self._tasks:
            games = self._games[split]
            opening = intros(games)
            self._tasks[split] = [
                Task(id=g.id, input=opening[g.path], expected=_goal(opening[g.path]), category=g.category,
                     meta={"game": g.path, "task_type": g.task_type, "split": g.split})
                for g in games
            ]
        return list(self._tasks[split])

    turn_tokens = 60  # tokens one ReAct turn adds to the history, for the projection

    @property
    def calls_per_task(self) -> int:  # type: ignore[override]  # SuiteBase's default, here from the step limit
        return self.step_limit

    def agent_calls(self, task: Task) -> tuple[int, float]:
        """(at most, expected) agent calls of one episode, as for household (thinking turns cost
        no game step); no plan is known before playing, so the expected count is the step limit."""
        return 2 * self.step_limit + 3, float(self.step_limit)

    def train_tasks(self) -> list[Task]:
        return self._load("train")

    def test_tasks(self) -> list[Task]:
        return self._load("test")

    def initial_module(self) -> Module:
        return Module("instruction", INITIAL_INSTRUCTION)

    def describe(self) -> str:
        return ("The agent plays real ALFWorld text games: it reads a room description and a task, "
                "then sends one text action per turn (go to, open, take, move … to, clean, heat, cool, "
                "use, …) until the game reports the task done or the step limit runs out.")

    def system_prompt(self, module: Module) -> str:
        return module.text.rstrip() + "\n\n" + ACTION_GUIDE

    def window(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first two messages plus the last ``history_turns`` exchanges."""
        return messages[:2] + messages[2:][-2 * self.history_turns:]

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        env = AlfworldEnv(str(task.meta["game"]), step_limit=self.step_limit)
        try:
            first = env.reset()
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": self.system_prompt(module)},
                {"role": "user", "content": first},
            ]
            return react_episode(task.id, _GameEnv(env), messages, llm, window=self.window,
                                 step_limit=self.step_limit, render=command)
        finally:
            env.close()


def _goal(intro: str) -> str:
    """``Your task is to: …`` from an opening observation (the evaluator's expected outcome)."""
    m = re.search(r"Your task is to:\s*(.+)", intro)
    return m.group(1).strip() if m else intro.strip().splitlines()[-1]

