"""A lighthouse keeper's duties: an example FGO Studio suite in a plugin package.

Each task asks what the keeper does in one situation (fog, storm, a ship in distress, ...);
the right answer is a duty a good instruction states. The agent answers in one call.

Two parts, both registered when FGO Studio loads the ``fgo.suites`` entry point:

- ``LighthouseSuite``: the suite protocol (``fgo_engine.suites.base.Suite``);
- ``LighthouseSkill``: how the simulated LLM (``fgo-sim/...``) reads these tasks, so that the
  suite runs offline, in tests and demos. A suite meant for real models only needs no skill.
"""
from __future__ import annotations

import random

from fgo_engine.llm.sim.skills import BaseSkill, register_skill
from fgo_engine.suites.base import SuiteBase
from fgo_engine.types import Knowledge, Module, Step, Task, Trajectory

MARK = "LIGHTHOUSE-DUTY"
# situation -> (the cue words a rule must hold, the rule, the expected answer)
DUTIES = {
    "fog": (("fog", "horn"), "In fog, sound the horn every two minutes.", "sound the horn"),
    "storm": (("storm", "shutters"), "In a storm, close the lamp-room shutters on the lee side.", "close the shutters"),
    "distress": (("distress", "coastguard"), "When a ship signals distress, call the coastguard first.",
                 "call the coastguard"),
    "dusk": (("dusk", "lamp"), "At dusk, light the lamp before the sun is down.", "light the lamp"),
    "dawn": (("dawn", "log"), "At dawn, write the night's events in the log.", "write the log"),
    "ice": (("ice", "gallery"), "When there is ice, salt the gallery before going out.", "salt the gallery"),
}
KNOWLEDGE = {k: Knowledge(f"lighthouse/{k}", cue, text) for k, (cue, text, _) in DUTIES.items()}


class LighthouseSuite(SuiteBase):
    """The suite protocol: ``name``, ``module_kind``, tasks, a starting module, ``describe`` and
    ``run_agent``. ``SuiteBase`` gives the optional hooks their defaults (``calls_per_task``,
    ``validate_module``, ``similarity_text``, ``set_log``)."""

    name = "lighthouse"
    module_kind = "instruction"

    def __init__(self, seed: int = 0, n_train: int = 18, n_test: int = 12):
        rng = random.Random(f"lighthouse/{seed}")
        kinds = list(DUTIES)
        self._train = [self._task(f"l{i}", kinds[i % len(kinds)], rng) for i in range(n_train)]
        self._test = [self._task(f"lt{i}", kinds[i % len(kinds)], rng) for i in range(n_test)]

    @staticmethod
    def _task(task_id: str, kind: str, rng: random.Random) -> Task:
        night = rng.randrange(1, 366)
        return Task(task_id, f"{MARK} night {night}, situation={kind}: what does the keeper do now?",
                    DUTIES[kind][2], category=kind)

    def train_tasks(self) -> list[Task]:
        return list(self._train)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def initial_module(self) -> Module:
        return Module("instruction", "You are a lighthouse keeper. Say what you do.\n- Answer in a few words.")

    def describe(self) -> str:
        return "The agent is a lighthouse keeper who says, in one reply, what it does in a situation."

    def run_agent(self, task: Task, module: Module, llm) -> Trajectory:
        reply = llm([{"role": "system", "content": module.text},
                     {"role": "user", "content": f"{task.input}\nEnd with: Answer: <what you do>"}])
        answer = (reply.text or "").split("Answer:")[-1].strip().rstrip(".").lower()
        ok = answer == task.expected
        return Trajectory(task.id, [Step("answer", reply.text or "")], answer, ok, 1.0 if ok else 0.0)


class LighthouseSkill(BaseSkill):
    """What the simulated LLM needs: which tasks are ours, what knowledge each needs, how the
    agent answers when its instruction covers that knowledge (and when it does not)."""

    name = "lighthouse"

    def recognizes(self, task_text: str) -> bool:
        return MARK in task_text

    def category(self, task_text: str) -> str | None:
        return task_text.split("situation=")[1].split(":")[0] if "situation=" in task_text else None

    def needs(self, task_text: str) -> list[Knowledge]:
        kind = self.category(task_text)
        return [KNOWLEDGE[kind]] if kind in KNOWLEDGE else []

    def space(self, fine: bool) -> list[Knowledge]:
        return list(KNOWLEDGE.values())

    def act(self, messages, task_text, *, competent, missing, rng):
        kind = self.category(task_text) or ""
        return f"Answer: {DUTIES[kind][2] if competent and kind in DUTIES else 'wait and watch'}"


register_skill(LighthouseSkill())
