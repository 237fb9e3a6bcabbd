"""A tiny suite for fast engine tests: each task needs one rule of its category."""
from __future__ import annotations

import random

from fgo_engine.llm.sim.skills import BaseSkill, register_skill
from fgo_engine.suites.base import SuiteBase, register_suite
from fgo_engine.types import Knowledge, Module, Step, Task, Trajectory

GENERAL = {
    "colour": (("colour", "glorp"), "A glorp always has the colour teal."),
    "size": (("size", "glorp"), "The size of a glorp is measured in spans."),
    "food": (("eats", "glorp"), "A glorp eats only moss."),
    "home": (("lives", "glorp"), "A glorp lives under bridges."),
    "age": (("age", "glorp"), "A glorp's age is counted in winters."),
    "sound": (("sound", "glorp"), "A glorp makes the sound 'vrum'."),
}
# Each rule holds for its own category: stated generally it misleads the others (when the
# profile's ``conflict`` is on); its canonical text carries the scope.
CATEGORIES = {
    c: Knowledge(f"toy/{c}", cue, f"For {c} questions, {text[0].lower()}{text[1:]}", scope=c, general=text)
    for c, (cue, text) in GENERAL.items()
}
ANSWERS = {"colour": "teal", "size": "spans", "food": "moss", "home": "bridges", "age": "winters", "sound": "vrum"}
MARK = "TOY-QUESTION"


class ToySuite(SuiteBase):
    name = "toy"
    module_kind = "instruction"
    calls_per_task = 1

    def __init__(self, seed: int = 0, n_train: int = 24, n_test: int = 24, categories: int = 6):
        rng = random.Random(seed)
        cats = list(CATEGORIES)[:categories]
        self._train = [self._task(f"tr{i}", cats[i % len(cats)], rng) for i in range(n_train)]
        self._test = [self._task(f"te{i}", cats[i % len(cats)], rng) for i in range(n_test)]

    def _task(self, tid: str, cat: str, rng: random.Random) -> Task:
        n = rng.randrange(1000)
        return Task(tid, f"{MARK} #{n} category={cat}: what about the glorp's {cat}?", ANSWERS[cat], cat)

    def train_tasks(self):
        return list(self._train)

    def test_tasks(self):
        return list(self._test)

    def initial_module(self):
        return Module("instruction", "You answer questions about glorps.\n- Answer briefly.")

    def describe(self):
        return "The agent answers one question about glorps per task."

    def run_agent(self, task, module, llm):
        comp = llm([{"role": "system", "content": module.text}, {"role": "user", "content": task.input}])
        ans = comp.text.split("Answer:")[-1].strip()
        ok = ans == task.expected
        return Trajectory(task.id, [Step("answer", comp.text)], ans, ok, 1.0 if ok else 0.0)


class ToySkill(BaseSkill):
    name = "toy"

    def recognizes(self, text):
        return MARK in text

    def needs(self, text):
        return [CATEGORIES[self.category(text)]]

    def category(self, text):
        return text.split("category=")[1].split(":")[0]

    def scope_labels(self):
        return {c: f"{c} questions" for c in CATEGORIES}

    def space(self, fine):
        return list(CATEGORIES.values())

    def act(self, messages, task_text, *, competent, missing, rng):
        cat = task_text.split("category=")[1].split(":")[0]
        return f"Answer: {ANSWERS[cat] if competent else 'unknown'}"


register_suite("toy", ToySuite)
register_skill(ToySkill())
