"""User tasks from a JSONL file, one task a line (or a CSV file, one task a row).

Each line is an object ``{"id", "input", "expected"}`` with optional ``"category"``,
``"split"`` (``"train"`` or ``"test"``) and ``"meta"`` (an object). A CSV file has a header
row with the same names; its other columns go to ``meta``. A mapping (``--map
input=question``) names the column that holds a field. The whole file is checked before any
task is returned, so a bad line never leaves a half-loaded suite; the first problem is
reported with the file name and its 1-based line number.

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


def _fail(path: Path | str, line: int | None, problem: str, unit: str = "line") -> TaskFileError:
    where = f"{path}, {unit} {line}" if line is not None else str(path)
    err = TaskFileError(f"{where}: {problem}")
    err.path, err.line = str(path), line  # type: ignore[attr-defined]
    return err


FIELDS = ("id", "input", "expected", "category", "split", "meta")


def check_mapping(mapping: dict[str, str] | None) -> dict[str, str]:
    """``{field: column}`` (``--map input=question``): each field one of :data:`FIELDS`, each
    column a non-empty name used once; else a one-line :class:`ConfigError`."""
    if not mapping:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"the field mapping must map fields to column names (got {mapping!r})")
    seen: dict[str, str] = {}
    for key, column in mapping.items():
        if key not in FIELDS:
            raise ConfigError(f"--map: unknown field {key!r}; the fields are {', '.join(FIELDS)}")
        if not isinstance(column, str) or not column.strip():
            raise ConfigError(f"--map {key}=…: give the name of the column that holds the {key}")
        if column in seen:
            raise ConfigError(f"--map: column {column!r} is mapped to both {seen[column]} and {key}")
        seen[column] = key
    return dict(mapping)


def _mapped(obj: Any, mapping: dict[str, str], word: str) -> Any:
    """``obj`` with its mapped columns renamed to the fields they hold."""
    if not mapping or not isinstance(obj, dict):
        return obj
    out = {k: v for k, v in obj.items() if k not in mapping.values()}
    for key, column in mapping.items():
        if column not in obj:
            raise KeyError(f"missing {word} {column!r} (mapped to {key})")
        out[key] = obj[column]
    return out


def _check_row(obj: Any, path: Path | str, n: int, check: Callable[[str], str | None] | None,
               seen: dict[str, int], unit: str = "line", word: str = "field") -> TaskRow:
    if not isinstance(obj, dict):
        raise _fail(path, n, f"expected a JSON object, got {type(obj).__name__}", unit)
    for key in _REQUIRED:
        if key not in obj or obj[key] is None:
            raise _fail(path, n, f"missing {word} {key!r}", unit)
        if not isinstance(obj[key], str):
            raise _fail(path, n, f"{word} {key!r} must be a string, got {type(obj[key]).__name__}", unit)
        if not obj[key].strip():
            raise _fail(path, n, f"{word} {key!r} is empty", unit)
    task_id = obj["id"]
    if task_id in seen:
        raise _fail(path, n, f"duplicate id {task_id!r} (first on {unit} {seen[task_id]})", unit)
    category = obj.get("category")
    if category is None:
        category = "default"
    elif not isinstance(category, str) or not category.strip():
        raise _fail(path, n, f"{word} 'category' must be a non-empty string", unit)
    split = obj.get("split")
    if split is not None and split not in SPLITS:
        raise _fail(path, n, f"unknown split {split!r} (use 'train' or 'test')", unit)
    meta = obj.get("meta")
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        raise _fail(path, n, f"{word} 'meta' must be an object, got {type(meta).__name__}", unit)
    if check is not None:
        problem = check(obj["expected"])
        if problem:
            raise _fail(path, n, f"{word} 'expected': {problem}", unit)
    seen[task_id] = n
    task = Task(id=task_id, input=obj["input"], expected=obj["expected"],
                category=category.strip(), meta=dict(meta))
    return TaskRow(task=task, split=split, line=n)


def rows_from_objects(objs: Any, check: Callable[[str], str | None] | None = None,
                      mapping: dict[str, str] | None = None, label: str = "tasks") -> list[TaskRow]:
    """Tasks given as Python objects (``fgo_engine.optimize(tasks=[{...}, ...])``), checked as a
    file's lines are; keys other than the fields go to ``meta``. Errors name the 1-based item."""
    mapping = check_mapping(mapping)
    if isinstance(objs, (str, bytes, dict)) or not hasattr(objs, "__iter__"):
        raise TaskFileError(f"{label}: give a list of task objects or the path of a task file "
                            f"(got {type(objs).__name__})")
    rows: list[TaskRow] = []
    seen: dict[str, int] = {}
    for n, obj in enumerate(objs, start=1):
        try:
            obj = _mapped(obj, mapping, "key")
        except KeyError as exc:
            raise _fail(label, n, str(exc.args[0]), "item") from None
        if isinstance(obj, dict):
            extra = {k: v for k, v in obj.items() if k not in FIELDS}
            if extra:
                meta = obj.get("meta")
                obj = {k: v for k, v in obj.items() if k in FIELDS}
                obj["meta"] = {**extra, **meta} if isinstance(meta, dict) else (meta if meta is not None else extra)
        rows.append(_check_row(obj, label, n, check, seen, unit="item", word="key"))
    if not rows:
        raise TaskFileError(f"{label}: no tasks (the list is empty)")
    return rows


MAX_TASK_BYTES = 1 << 20  # one task line: 1 MiB
MAX_FILE_BYTES = 64 << 20  # one task file: 64 MiB


def _read_bytes(path: Path) -> bytes:
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
    return raw


def is_table_file(path: str | Path) -> bool:
    """A CSV (or TSV) task file, read by columns rather than one JSON object a line."""
    return Path(path).suffix.lower() in (".csv", ".tsv")


def read_task_file(path: str | Path, check: Callable[[str], str | None] | None = None,
                   mapping: dict[str, str] | None = None) -> list[TaskRow]:
    """Every task in the file, or a :class:`TaskFileError` for the first bad line.
    ``check(expected)`` may name a problem with an expected value (e.g. a bad regex);
    ``mapping`` (``{"input": "question"}``) names the columns or keys that hold a field.
    A ``.csv`` / ``.tsv`` file has a header row with the same names as JSONL's fields."""
    path = Path(path)
    mapping = check_mapping(mapping)
    raw = _read_bytes(path)
    if is_table_file(path):
        return _read_table(path, raw, check, mapping)
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
        try:
            obj = _mapped(obj, mapping, "field")
        except KeyError as exc:
            raise _fail(path, n, str(exc.args[0])) from None
        rows.append(_check_row(obj, path, n, check, seen))
    if not rows:
        raise _fail(path, None, "no tasks (the file is empty)")
    return rows


def _read_table(path: Path, raw: bytes, check: Callable[[str], str | None] | None,
                mapping: dict[str, str]) -> list[TaskRow]:
    """A CSV/TSV task file: the header names the columns; columns other than the fields go to
    ``meta`` (a ``meta`` column holds a JSON object); empty ``category``/``split`` cells are unset."""
    import csv

    reader, header = _table_header(path, raw, mapping)
    rows: list[TaskRow] = []
    seen: dict[str, int] = {}
    start = 2
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _fail(path, start, f"invalid CSV ({exc})") from None
        n, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        task_obj = _table_task(path, n, header, cells, mapping)
        rows.append(_check_row(task_obj, path, n, check, seen, word="column"))
    if not rows:
        raise _fail(path, None, "no tasks (the file has a header and nothing else)")
    return rows


def _table_header(path: Path, raw: bytes, mapping: dict[str, str]) -> tuple[Any, list[str]]:
    """The CSV reader past its header, and the header (checked: no duplicates, the required columns)."""
    import csv
    import io

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise _fail(path, line, "not valid UTF-8 text") from None
    if "\x00" in text:
        raise _fail(path, text[:text.index("\x00")].count("\n") + 1, "holds a NUL byte: not a text file")
    csv.field_size_limit(max(csv.field_size_limit(), MAX_TASK_BYTES))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _fail(path, 1, f"invalid CSV ({exc})") from None
    if header is None or not any(h.strip() for h in header):
        raise _fail(path, None, "no tasks (the file is empty)")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise _fail(path, 1, f"column {dupes[0]!r} appears twice in the header")
    wanted = {**{f: f for f in FIELDS}, **mapping}
    for key in _REQUIRED:
        if wanted[key] not in header:
            mapped = f" (mapped to {key})" if key in mapping else ""
            raise _fail(path, 1, f"missing column {wanted[key]!r}{mapped}; the columns are {', '.join(header)}")
    return reader, header


def _table_task(path: Path, n: int, header: list[str], cells: list[str], mapping: dict[str, str]) -> dict[str, Any]:
    """One CSV row as the task object a JSONL line would give."""
    if sum(len(c) for c in cells) > MAX_TASK_BYTES:
        raise _fail(path, n, f"the task is larger than {MAX_TASK_BYTES >> 20} MiB; the limit is "
                             f"{MAX_TASK_BYTES >> 20} MiB per task")
    if len(cells) > len(header):
        raise _fail(path, n, f"{len(cells)} cells but the header names {len(header)} columns")
    record = dict(zip(header, cells + [""] * (len(header) - len(cells))))
    obj: dict[str, Any] = _mapped(record, mapping, "column")
    meta: dict[str, Any] = {}
    if obj.get("meta", "").strip():
        try:
            meta = json.loads(obj["meta"])
        except json.JSONDecodeError as exc:
            raise _fail(path, n, f"column 'meta' is not a JSON object ({exc.msg})") from None
        if not isinstance(meta, dict):
            raise _fail(path, n, f"column 'meta' must hold a JSON object, got {type(meta).__name__}")
    extra = {k: v for k, v in obj.items() if k not in FIELDS and k}
    task_obj: dict[str, Any] = {k: obj[k] for k in _REQUIRED}
    for key in ("category", "split"):
        value = obj.get(key, "").strip()
        if value:
            task_obj[key] = value
    task_obj["meta"] = {**extra, **meta}
    return task_obj


AUTO_TEST_FRACTION = 0.25  # held out when the file gives no split
AUTO_SPLIT_MIN = 4  # ... and has at least this many tasks


def split_rows(rows: list[TaskRow], seed: int, test_fraction: float | None, name: str,
               where: str | None = None) -> tuple[list[Task], list[Task], list[str]]:
    """(train, test, notes): the file's own splits when it gives any, else a seeded held-out
    fraction (see the module's docstring); ``notes`` say what the operator should know."""
    where = where or name
    notes: list[str] = []
    if any(row.split is not None for row in rows):
        if test_fraction:
            raise ConfigError(f"{where} sets 'split' on its tasks; drop test_fraction or the splits")
        train = [r.task for r in rows if r.split != "test"]
        test = [r.task for r in rows if r.split == "test"]
        if not train:
            raise TaskFileError(f"{where}: every task has split 'test'; at least one must be 'train'")
        return train, (test or list(train)), notes
    tasks = [r.task for r in rows]
    fraction = test_fraction
    if fraction is None:  # no split given: hold out a seeded quarter rather than test on the training tasks
        fraction = AUTO_TEST_FRACTION if len(tasks) >= AUTO_SPLIT_MIN else 0.0
    if fraction == 0.0 or len(tasks) < 2:
        if test_fraction is None:
            notes.append(f"{name} has no 'split' and only {len(tasks)} tasks: the test set is the training set")
        return tasks, list(tasks), notes
    n_test = min(max(1, round(fraction * len(tasks))), len(tasks) - 1)
    if test_fraction is None:
        notes.append(f"{name} has no 'split': held out {n_test} of {len(tasks)} tasks as the test set "
                     "(seeded; set test_fraction=0 to test on the training tasks)")
    held = set(random.Random(f"jsonl/{seed}").sample(range(len(tasks)), n_test))
    train = [t for i, t in enumerate(tasks) if i not in held]
    test = [t for i, t in enumerate(tasks) if i in held]
    return train, test, notes


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
        mapping: dict[str, str] | None = None,
        **options: Any,
    ):
        if options:
            raise ConfigError(
                f"jsonl suite: unknown option {sorted(options)[0]!r} "
                "(options: path, seed, scorer, test_fraction, instruction, judge, mapping)")
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
        self.mapping = check_mapping(mapping)
        self.rows = read_task_file(self.path, check=check, mapping=self.mapping)
        self._train, self._test = self._split()

    def _split(self) -> tuple[list[Task], list[Task]]:
        train, test, notes = split_rows(self.rows, self.seed, self.test_fraction, self.path.name, str(self.path))
        self.notes.extend(notes)
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
