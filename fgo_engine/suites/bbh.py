"""The ``bbh`` suite: BIG-Bench Hard (Suzgun et al., 2022), 27 reasoning tasks, read from
the task files a user points at (``data=DIR``; MIT-licensed, never shipped with FGO Studio).

Each task file is ``<task>.json`` holding ``{"canary": …, "examples": [{"input", "target"}]}``.
Per task, a seeded shuffle picks ``n_train`` training and then ``n_test`` test examples; the
category is the task name, so ``--partition category`` gives one subset per task type. The
agent answers in one call and is scored by exact match on its extracted final answer
(:class:`~fgo_engine.suites.scoring.FinalAnswerScorer`).
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from fgo_engine.errors import ConfigError
from fgo_engine.suites.base import AgentLLM, SuiteBase, check_data_options, register_suite
from fgo_engine.suites.jsonl_tasks import answer_once
from fgo_engine.suites.scoring import FinalAnswerScorer, tokens
from fgo_engine.types import Module, ModuleKind, Task, Trajectory

TASKS: tuple[str, ...] = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa",
    "dyck_languages", "formal_fallacies", "geometric_shapes", "hyperbaton",
    "logical_deduction_five_objects", "logical_deduction_seven_objects",
    "logical_deduction_three_objects", "movie_recommendation", "multistep_arithmetic_two",
    "navigate", "object_counting", "penguins_in_a_table", "reasoning_about_colored_objects",
    "ruin_names", "salient_translation_error_detection", "snarks", "sports_understanding",
    "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects",
    "web_of_lies", "word_sorting",
)
WHERE = ("the BIG-Bench Hard task files (<task>.json) from "
         "https://github.com/suzgunmirac/BIG-Bench-Hard, folder bbh/ (MIT)")

INITIAL_INSTRUCTION = """\
You solve the reasoning problem in the user's message.
- Read the question carefully and work through it step by step.
- End your reply with a final line 'Answer: <answer>'."""

# How the final answer should look, by the kind of the task's targets.
_FORMATS = {
    "option": "Give the letter of the correct option, e.g. 'Answer: (A)'.",
    "yes/no": "Answer with Yes or No, e.g. 'Answer: Yes'.",
    "true/false": "Answer with True or False, e.g. 'Answer: True'.",
    "valid/invalid": "Answer with valid or invalid, e.g. 'Answer: valid'.",
    "number": "Answer with a number only, e.g. 'Answer: 12'.",
    "text": "Give only the answer after 'Answer:'.",
}


def _kind(targets: list[str]) -> str:
    """The answer kind most of a task's targets have (a few BBH targets are irregular)."""
    kinds = []
    for t in targets:
        toks = tokens(t)
        word = toks[0] if len(toks) == 1 else ""
        if word.startswith("(") and word.endswith(")"):
            kinds.append("option")
        elif word in ("yes", "no"):
            kinds.append("yes/no")
        elif word in ("true", "false"):
            kinds.append("true/false")
        elif word in ("valid", "invalid"):
            kinds.append("valid/invalid")
        elif t.strip().lstrip("-").isdigit():
            kinds.append("number")
        else:
            kinds.append("text")
    return max(sorted(set(kinds)), key=kinds.count) if kinds else "text"


def _read_task(path: Path) -> tuple[str, list[dict[str, str]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"bbh: cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"bbh: {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list) or not examples:
        raise ConfigError(f"bbh: {path} has no 'examples' list; expected {WHERE}")
    for i, ex in enumerate(examples):
        if not (isinstance(ex, dict) and isinstance(ex.get("input"), str)
                and isinstance(ex.get("target"), str)):
            raise ConfigError(f"bbh: {path}, example {i}: needs string fields 'input' and 'target'")
    return str(data.get("canary", "")), examples


def _task_names(tasks: Any) -> list[str]:
    if tasks is None or tasks == "" or tasks == "all":
        return list(TASKS)
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise ConfigError(f"bbh: unknown task {unknown[0]!r}; choose from: {', '.join(TASKS)}")
    if not names:
        raise ConfigError("bbh: tasks= names no task")
    return list(dict.fromkeys(names))


class BBHSuite(SuiteBase):
    """BIG-Bench Hard tasks answered in one call; the module is the agent's instruction."""

    name = "bbh"
    module_kind: ModuleKind = "instruction"

    def __init__(self, seed: int = 0, *, data: str | Path | None = None, tasks: Any = None,
                 n_train: int = 10, n_test: int = 20, **unknown: Any):
        check_data_options("bbh", WHERE, data, unknown, "data, tasks, n_train, n_test",
                           n_train=n_train, n_test=n_test)
        if n_train + n_test == 0:
            raise ConfigError("bbh: n_train and n_test are both 0; there is nothing to run")
        assert data is not None  # check_data_options refuses a missing data=
        root = Path(data).expanduser()
        if not root.is_dir():
            raise ConfigError(f"bbh: data folder {root} not found; it should hold {WHERE}")
        self.root = root
        self.seed = seed
        self.names = _task_names(tasks)
        self.n_train, self.n_test = n_train, n_test
        self._train: list[Task] = []
        self._test: list[Task] = []
        self.formats: dict[str, str] = {}
        for name in self.names:
            self._load(name)

    def _load(self, name: str) -> None:
        path = self.root / f"{name}.json"
        if not path.is_file():
            raise ConfigError(f"bbh: {path} not found; data= should be a folder with {WHERE}")
        canary, examples = _read_task(path)
        need = self.n_train + self.n_test
        if need > len(examples):
            raise ConfigError(f"bbh: task {name} has {len(examples)} examples, fewer than "
                              f"n_train + n_test = {need}")
        self.formats[name] = _FORMATS[_kind([ex["target"] for ex in examples])]
        order = list(range(len(examples)))
        random.Random(f"bbh|{self.seed}|{name}").shuffle(order)
        for split, picked in (("train", order[:self.n_train]), ("test", order[self.n_train:need])):
            for i in picked:
                ex = examples[i]
                task = Task(id=f"bbh-{name}-{i:03d}", input=ex["input"], expected=ex["target"],
                            category=name, meta={"task": name, "index": i, "canary": canary})
                (self._train if split == "train" else self._test).append(task)

    def train_tasks(self) -> list[Task]:
        return list(self._train)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def initial_module(self) -> Module:
        return Module("instruction", INITIAL_INSTRUCTION)

    def describe(self) -> str:
        return ("The agent answers BIG-Bench Hard reasoning problems (" + ", ".join(self.names)
                + ") in one reply that ends with 'Answer: <answer>'; the final answer is scored "
                "by exact match (an option letter, yes/no, true/false, valid/invalid, a number or text).")

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        prompt = f"{task.input}\n\n{self.formats[task.category]}"
        return answer_once(task, module.text, prompt, llm, FinalAnswerScorer())


register_suite("bbh", BBHSuite)
