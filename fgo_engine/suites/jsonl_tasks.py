"""User tasks from a JSONL file, one task a line.

Each line is an object ``{"id", "input", "expected"}`` with optional ``"category"``,
``"split"`` (``"train"`` or ``"test"``) and ``"meta"`` (an object). The whole file is
checked before any task is returned, so a bad line never leaves a half-loaded suite;
the first problem is reported with the file name and its 1-based line number.

Splits: when any line has a ``split``, the file decides (lines without one train); when
none has, a seeded ``test_fraction`` of the tasks is held out (default: a quarter of a
file with at least four tasks, and the suite says so in ``notes``; 0.0: test = train).
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo_engine.errors import ConfigError, TaskFileError, python_limit
from fgo_engine.suites.base import AgentLLM, SuiteBase, register_suite
from fgo_engine.suites.scoring import Scorer, extract_answer, get_scorer, parse_spec
from fgo_engine.types import Module, ModuleKind, Step, Task, Trajectory

SPLITS = ("train", "test")
_REQUIRED = ("id", "input", "expected")
_ANSWER_FORMAT = "Reply with: Answer: <answer>"

_GENERIC_INSTRUCTION = (
    "You solve the task in the user's message and give one final answer.\n"
    "- Read the task carefully and answer exactly what is asked.\n"
    "- End your reply with a final line 'Answer: <answer>'."
)


@dataclass(frozen=True)
class TaskRow:
    """One validated line: the task, the split the file gave it (if any) and its line."""

    task: Task
    split: str | None
    line: int


def _fail(path: Path, line: int | None, problem: str) -> TaskFileError:
    where = f"{path}, line {line}" if line is not None else str(path)
    err = TaskFileError(f"{where}: {problem}")
    err.path, err.line = str(path), line  # type: ignore[attr-defined]
    return err


def _check_row(obj: Any, path: Path, n: int, check: Callable[[str], str | None] | None,
               seen: dict[str, int]) -> TaskRow:
    if not isinstance(obj, dict):
        raise _fail(path, n, f"expected a JSON object, got {type(obj).__name__}")
    for key in _REQUIRED:
        if key not in obj or obj[key] is None:
            raise _fail(path, n, f"missing field {key!r}")
        if not isinstance(obj[key], str):
            raise _fail(path, n, f"field {key!r} must be a string, got {type(obj[key]).__name__}")
        if not obj[key].strip():
            raise _fail(path, n, f"field {key!r} is empty")
    task_id = obj["id"]
    if task_id in seen:
        raise _fail(path, n, f"duplicate id {task_id!r} (first on line {seen[task_id]})")
    category = obj.get("category")
    if category is None:
        category = "default"
    elif not isinstance(category, str) or not category.strip():
        raise _fail(path, n, "field 'category' must be a non-empty string")
    split = obj.get("split")
    if split is not None and split not in SPLITS:
        raise _fail(path, n, f"unknown split {split!r} (use 'train' or 'test')")
    meta = obj.get("meta")
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        raise _fail(path, n, f"field 'meta' must be an object, got {type(meta).__name__}")
    if check is not None:
        problem = check(obj["expected"])
        if problem:
            raise _fail(path, n, f"field 'expected': {problem}")
    seen[task_id] = n
    task = Task(id=task_id, input=obj["input"], expected=obj["expected"],
                category=category.strip(), meta=dict(meta))
    return TaskRow(task=task, split=split, line=n)


MAX_TASK_BYTES = 1 << 20  # one task line: 1 MiB
MAX_FILE_BYTES = 64 << 20  # one task file: 64 MiB


def read_task_file(path: str | Path,
                   check: Callable[[str], str | None] | None = None) -> list[TaskRow]:
    """Every task in the file, or a :class:`TaskFileError` for the first bad line.
    ``check(expected)`` may name a problem with an expected value (e.g. a bad regex)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES and path.is_file():
            raise _fail(path, None, f"the task file is {size / 2**20:.0f} MiB; the limit is "
                                    f"{MAX_FILE_BYTES >> 20} MiB per file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, None, "task file not found") from None
    except IsADirectoryError:
        raise _fail(path, None, "is a directory, not a task file") from None
    except OSError as exc:
        raise _fail(path, None, f"cannot read the task file ({exc.strerror})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark
    rows: list[TaskRow] = []
    seen: dict[str, int] = {}
    # Split on \n only: str.splitlines would also break inside JSON strings on \u2028 etc.
    for n, raw_line in enumerate(raw.split(b"\n"), start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(path, n, "not valid UTF-8 text") from None
        if not line.strip():
            continue
        if len(raw_line) > MAX_TASK_BYTES:
            raise _fail(path, n, f"the task is {len(raw_line) / 2**20:.1f} MiB; the limit is "
                                 f"{MAX_TASK_BYTES >> 20} MiB per task")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, n, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
        except (RecursionError, ValueError) as exc:  # Python's own limits: depth, digits
            raise _fail(path, n, f"invalid JSON ({python_limit(exc) or exc})") from None
        rows.append(_check_row(obj, path, n, check, seen))
    if not rows:
        raise _fail(path, None, "no tasks (the file is empty)")
    return rows


AUTO_TEST_FRACTION = 0.25  # held out when the file gives no split
AUTO_SPLIT_MIN = 4  # ... and has at least this many tasks


class JsonlSuite(SuiteBase):
    """Tasks from a user's JSONL file, answered in one LLM call and scored by a scorer."""

    name = "jsonl"
    module_kind: ModuleKind = "instruction"

    def __init__(
        self,
        path: str | Path | None = None,
        seed: int = 0,
        scorer: str | dict[str, Any] = "normalized",
        test_fraction: float | None = None,
        instruction: str | None = None,
        judge: Callable[[str, str], float] | None = None,
        **options: Any,
    ):
        if options:
            raise ConfigError(
                f"jsonl suite: unknown option {sorted(options)[0]!r} "
                "(options: path, seed, scorer, test_fraction, instruction, judge)")
        if path is None:
            raise ConfigError("jsonl suite needs a task file: path=…/tasks.jsonl")
        if test_fraction is not None and (isinstance(test_fraction, bool)
                                          or not isinstance(test_fraction, (int, float))
                                          or not 0.0 <= test_fraction < 1.0):
            raise ConfigError(
                f"jsonl suite: test_fraction must be a number in [0, 1), got {test_fraction!r}")
        if instruction is not None and (not isinstance(instruction, str)
                                        or not instruction.strip()):
            raise ConfigError("jsonl suite: instruction must be a non-empty string")
        self.path = Path(path)
        self.seed = seed
        self.test_fraction = None if test_fraction is None else float(test_fraction)
        self.notes: list[str] = []  # what the operator should know about the split
        self.instruction = instruction
        self.scorer_name, _ = parse_spec(scorer)
        self._scorer_spec = scorer
        self._scorer: Scorer | None = None
        if self.scorer_name == "llm_judge":
            if judge is not None:
                self._scorer = get_scorer(scorer, judge=judge)
        else:  # a judge is only for llm_judge; the engine may pass one regardless
            self._scorer = get_scorer(scorer)
        check = getattr(self._scorer, "check", None)
        self.rows = read_task_file(self.path, check=check)
        self._train, self._test = self._split()

    def _split(self) -> tuple[list[Task], list[Task]]:
        if any(row.split is not None for row in self.rows):
            if self.test_fraction:
                raise ConfigError(
                    f"{self.path} sets 'split' on its tasks; drop test_fraction or the splits")
            train = [r.task for r in self.rows if r.split != "test"]
            test = [r.task for r in self.rows if r.split == "test"]
            if not train:
                raise TaskFileError(f"{self.path}: every task has split 'test'; "
                                    "at least one must be 'train'")
            return train, (test or list(train))
        tasks = [r.task for r in self.rows]
        fraction = self.test_fraction
        if fraction is None:  # no split given: hold out a seeded quarter rather than test on the training tasks
            fraction = AUTO_TEST_FRACTION if len(tasks) >= AUTO_SPLIT_MIN else 0.0
        if fraction == 0.0 or len(tasks) < 2:
            if self.test_fraction is None:
                self.notes.append(f"{self.path.name} has no 'split' and only {len(tasks)} tasks: the test "
                                  "set is the training set")
            return tasks, list(tasks)
        n_test = min(max(1, round(fraction * len(tasks))), len(tasks) - 1)
        if self.test_fraction is None:
            self.notes.append(f"{self.path.name} has no 'split': held out {n_test} of {len(tasks)} tasks as the "
                              f"test set (seeded; set test_fraction=0 to test on the training tasks)")
        held = set(random.Random(f"jsonl/{self.seed}").sample(range(len(tasks)), n_test))
        train = [t for i, t in enumerate(tasks) if i not in held]
        test = [t for i, t in enumerate(tasks) if i in held]
        return train, test

    def set_judge(self, judge: Callable[[str, str], float]) -> None:
        """Give the ``llm_judge`` scorer its judge after construction."""
        if self.scorer_name == "llm_judge":
            self._scorer = get_scorer(self._scorer_spec, judge=judge)

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            raise ConfigError("the llm_judge scorer has no judge: pass judge=… or set_judge()")
        return self._scorer

    def train_tasks(self) -> list[Task]:
        return list(self._train)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def initial_module(self) -> Module:
        return Module("instruction", self.instruction or _GENERIC_INSTRUCTION)

    def describe(self) -> str:
        return (f"The agent answers tasks from {self.path.name} in one reply, ending with "
                f"'Answer: <answer>'; answers are scored with the {self.scorer_name} scorer.")

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        """One call; ``success`` means a score of at least 0.5 (binary scorers give 0 or 1)."""
        scorer = self.scorer  # fail before spending a call when the judge is missing
        return answer_once(task, module.text, f"{task.input}\n\n{_ANSWER_FORMAT}", llm, scorer)


def answer_once(task: Task, system: str, prompt: str, llm: AgentLLM, scorer: Scorer) -> Trajectory:
    """One call, the final answer extracted and scored; ``success`` means a score of at
    least 0.5 (binary scorers give 0 or 1)."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    reply = llm(messages).text or ""
    answer = extract_answer(reply)
    score = float(scorer(answer, task.expected))
    return Trajectory(task_id=task.id, steps=[Step("answer", reply)], answer=answer,
                      success=score >= 0.5, score=score)


register_suite("jsonl", JsonlSuite)
