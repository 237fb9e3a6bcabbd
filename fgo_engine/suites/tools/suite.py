"""The ``tools`` suite: GAIA-like questions over local files; the module is a toolbox.

The agent runs a function-calling loop: it sees the toolbox as function schemas, each
tool call runs in a fresh sandboxed process (:func:`fgo_engine.tools.sandbox.run_tool`) with
the task's files copied in, and the loop ends when a reply has no tool call.

Task files are generated on demand into a cache directory from ``Task.meta`` alone
(``kind`` + ``task_seed``), so tasks stored as rows work in any process.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fgo_engine import redaction
from fgo_engine.errors import ConfigError, MalformedOutputError
from fgo_engine.suites import scoring
from fgo_engine.suites.base import AgentLLM, SuiteBase
from fgo_engine.suites.tools.data import (
    CATEGORIES,
    GENERATOR_VERSION,
    KINDS_BY_CATEGORY,
    TEMPLATES,
    generate,
    task_input,
)
from fgo_engine.suites.tools.library import INITIAL_TOOLBOX, KNOWLEDGE
from fgo_engine.tools import isolation
from fgo_engine.tools.sandbox import ToolResult, run_tool
from fgo_engine.tools.sandbox import status as sandbox_status
from fgo_engine.tools.toolbox import parse_toolbox, parse_toolbox_source, tool_schemas, toolbox_text_for_similarity
from fgo_engine.types import Knowledge, Module, ModuleKind, Step, Task, Trajectory

AGENT_SYSTEM = """You answer questions about the files of a task by calling the tools you are given.
File paths are plain file names such as 'sales.csv'. Use tools to read, search and compute rather than
guessing; each tool result comes back as a message. When you know the answer, reply without a tool call
and end with a line of the form "Answer: <value>"."""

OPTIONS = ("n_train", "n_test", "files_root", "max_steps", "tool_timeout", "tool_memory_mb", "cache_results",
           "sandbox")
RESULT_CHARS = 4000  # a tool observation is clipped to this many characters


def default_files_root() -> Path:
    tag = hashlib.sha1(f"fgo-tools-v{GENERATOR_VERSION}".encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"fgo-tools-{tag}"


# -- task files ---------------------------------------------------------------------------
_files_lock = threading.Lock()
_verified: set[str] = set()


def _digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name, text in sorted(files.items()):
        h.update(name.encode() + b"\0" + text.encode("utf-8") + b"\0")
    return h.hexdigest()


def _on_disk_digest(files_dir: Path) -> str | None:
    """Digest of the files as they are on disk (a damaged or stale cache differs)."""
    try:
        return _digest({p.name: p.read_text(encoding="utf-8") for p in files_dir.iterdir()})
    except (OSError, UnicodeDecodeError):
        return None


def task_key(meta: dict[str, Any]) -> tuple[str, int]:
    """(kind, task_seed) from a task's meta; ConfigError when they are missing."""
    try:
        kind, seed = str(meta["kind"]), int(meta["task_seed"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("tools task has no 'kind' and 'task_seed' in its meta") from None
    if kind not in TEMPLATES:
        raise ConfigError(f"tools task has an unknown kind {kind!r}")
    return kind, seed


def ensure_files(meta: dict[str, Any], root: str | Path | None = None) -> Path:
    """The directory holding a task's files, generated (atomically) if missing or stale."""
    kind, seed = task_key(meta)
    base = Path(root) if root is not None else default_files_root()
    task_dir = base / f"{kind}-{seed:010d}"
    files_dir = task_dir / "files"
    key = str(files_dir)
    if key in _verified and files_dir.is_dir():
        return files_dir
    gen = generate(kind, seed)
    digest = _digest(gen.files)
    with _files_lock:
        if key in _verified and files_dir.is_dir():
            return files_dir
        ok = _on_disk_digest(files_dir) == digest
        if not ok:
            base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-{seed}-", dir=base))
            (tmp / "files").mkdir()
            for name, text in gen.files.items():
                (tmp / "files" / name).write_text(text, encoding="utf-8")
            (tmp / "manifest.json").write_text(json.dumps({"kind": kind, "task_seed": seed, "digest": digest,
                                                           "version": GENERATOR_VERSION}), encoding="utf-8")
            if task_dir.exists():  # stale or partial: replace it
                shutil.rmtree(task_dir, ignore_errors=True)
            try:
                os.rename(tmp, task_dir)
            except OSError:  # another process made it first; theirs is identical
                shutil.rmtree(tmp, ignore_errors=True)
        _verified.add(key)
    return files_dir


# -- tool calls, cached in-process --------------------------------------------------------
class ToolRunner:
    """Runs tool calls in the sandbox. A call's outcome is a function of the toolbox
    source, the tool, its arguments and the task files, so completed results are kept
    in an LRU cache (timeouts and crashes are not: they may be load-dependent)."""

    def __init__(self, *, timeout: float, memory_mb: int, cache: bool, max_entries: int = 20000,
                 sandbox: str = isolation.DEFAULT_MODE):
        self.sandbox = sandbox
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.cache_enabled = cache
        self.max_entries = max_entries
        self._cache: OrderedDict[str, ToolResult] = OrderedDict()
        self._lock = threading.Lock()
        self.sandbox_calls = 0
        self.cache_hits = 0

    def run(self, source: str, name: str, args: dict[str, Any], files_dir: Path, files_key: str) -> ToolResult:
        key = hashlib.sha256(json.dumps([source, name, args, files_key, self.timeout, self.memory_mb],
                                        sort_keys=True, default=str).encode()).hexdigest()
        if self.cache_enabled:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    self.cache_hits += 1
                    return hit
        with self._lock:
            self.sandbox_calls += 1
        result = run_tool(source, name, args, files_dir=files_dir, timeout=self.timeout,
                          memory_mb=self.memory_mb, max_output=RESULT_CHARS, sandbox=self.sandbox)
        transient = not result.ok and result.error is not None and (
            "timed out" in result.error or "crashed" in result.error or "exited with code" in result.error)
        if self.cache_enabled and not transient:
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return result


def _clip(text: str, limit: int = RESULT_CHARS) -> str:
    text = redaction.scrub(text)  # before cutting: never half a key
    if len(text) <= limit:
        return text
    mark = f"\n... [observation shortened: {len(text)} chars]"
    return text[: limit - len(mark)] + mark


def _parse_arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(raw, dict):
        return raw, None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:  # digits past Python's limit included
        return None, f"the arguments are not valid JSON ({exc})"
    except RecursionError:
        return None, "the arguments are nested too deeply"
    if not isinstance(value, dict):
        return None, "the arguments must be a JSON object"
    return value, None


class ToolsSuite(SuiteBase):
    """GAIA-like file questions answered with a toolbox (see the module docstring)."""

    name = "tools"
    module_kind: ModuleKind = "toolbox"
    calls_per_task = 3  # typical agent turns per task, for cost projection
    turn_tokens = 120  # a tool call and its (clipped) result
    module_growth = 3.0  # the optimizer adds whole tools

    def agent_calls(self, task: Task) -> tuple[int, float]:
        """(at most, expected) agent calls of one episode: ``max_steps`` turns, typically three."""
        return self.max_steps, float(min(self.calls_per_task, self.max_steps))

    def __init__(self, seed: int = 0, *, n_train: int = 36, n_test: int = 60, files_root: str | None = None,
                 max_steps: int = 8, tool_timeout: float = 5.0, tool_memory_mb: int = 256,
                 cache_results: bool = True, sandbox: str = isolation.DEFAULT_MODE, **unknown: Any):
        if unknown:
            raise ConfigError(f"tools: unknown option {sorted(unknown)[0]!r}; options are {', '.join(OPTIONS)}")
        for label, v in (("n_train", n_train), ("n_test", n_test), ("max_steps", max_steps),
                         ("tool_memory_mb", tool_memory_mb)):
            least = 1 if label in ("max_steps", "tool_memory_mb") else 0
            if not isinstance(v, int) or isinstance(v, bool) or v < least:
                raise ConfigError(f"tools: {label} must be a whole number ≥ "
                                  f"{1 if label in ('max_steps', 'tool_memory_mb') else 0} (got {v!r})")
        if not isinstance(tool_timeout, (int, float)) or isinstance(tool_timeout, bool) or tool_timeout <= 0:
            raise ConfigError(f"tools: tool_timeout must be a positive number of seconds (got {tool_timeout!r})")
        self.seed = seed
        self.n_train = n_train
        self.n_test = n_test
        self.files_root = Path(files_root) if files_root else default_files_root()
        self.max_steps = max_steps
        if sandbox not in isolation.MODES:
            raise ConfigError(f"sandbox must be one of {', '.join(isolation.MODES)} (got {sandbox!r})")
        # strict without the OS layer fails here, before any file is written
        self._sandbox_status = sandbox_status(sandbox)
        self.runner = ToolRunner(timeout=float(tool_timeout), memory_mb=tool_memory_mb, cache=bool(cache_results),
                                 sandbox=sandbox)
        self._tasks: dict[str, list[Task]] = {}

    # -- tasks ------------------------------------------------------------------------
    def _make_tasks(self, split: str, n: int) -> list[Task]:
        if split in self._tasks:
            return list(self._tasks[split])
        cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
        random.Random(f"tools|{self.seed}|{split}|order").shuffle(cats)
        seen: dict[str, int] = {}
        offset = random.Random(f"tools|{self.seed}|{split}|offset").randrange(1000)
        tasks = []
        for i, cat in enumerate(cats):
            kinds = KINDS_BY_CATEGORY[cat]
            kind = kinds[(seen.get(cat, 0) + offset) % len(kinds)]
            seen[cat] = seen.get(cat, 0) + 1
            task_seed = random.Random(f"tools|{self.seed}|{split}|{i}").getrandbits(31)
            gen = generate(kind, task_seed)
            tasks.append(Task(
                id=f"tools-{split}-{i:03d}", input=task_input(gen), expected=gen.expected, category=cat,
                meta={"kind": kind, "task_seed": task_seed, "version": GENERATOR_VERSION,
                      "files": list(gen.files), "scorer": gen.scorer, "needs": list(TEMPLATES[kind][2])}))
        self._tasks[split] = tasks
        return list(tasks)

    def train_tasks(self) -> list[Task]:
        return self._make_tasks("train", self.n_train)

    def test_tasks(self) -> list[Task]:
        return self._make_tasks("test", self.n_test)

    def files_dir(self, task: Task) -> Path:
        """The task's files, generated into the cache directory if needed."""
        return ensure_files(task.meta or {}, self.files_root)

    # -- module -----------------------------------------------------------------------
    def initial_module(self) -> Module:
        return Module("toolbox", INITIAL_TOOLBOX)

    def describe(self) -> str:
        return ("The agent answers GAIA-like questions about local files (CSV, TSV, JSON, logs, text) in a "
                "function-calling loop; the module is its toolbox: Python tool functions it calls, each run in "
                "a sandbox with the task files under files/. Good tools compute exact answers (aggregates, "
                "lookups, date arithmetic, unit conversion, text search).")

    def knowledge(self) -> list[Knowledge]:
        """Every capability the simulated LLM may ask of these tasks (one tool each)."""
        return list(KNOWLEDGE.values())

    def validate_module(self, text: str) -> None:
        """Reject a toolbox that does not parse or exposes no public tool."""
        box = parse_toolbox_source(text)  # raises MalformedOutputError with the line number
        if not box.tools:
            raise MalformedOutputError("the toolbox defines no public tool (a top-level def not starting with _)")

    def similarity_text(self, module: Module) -> str:
        return toolbox_text_for_similarity(module.text)

    # -- scoring ----------------------------------------------------------------------
    def score(self, task: Task, answer: str) -> float:
        spec = (task.meta or {}).get("scorer") or "normalized"
        try:
            return scoring.get_scorer(spec)(answer, task.expected)
        except ConfigError:
            return scoring.normalized(answer, task.expected)

    # -- running ----------------------------------------------------------------------
    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        steps: list[Step] = []
        try:
            schemas = tool_schemas(parse_toolbox(module.text))
        except MalformedOutputError as exc:
            schemas = []
            steps.append(Step("note", f"the toolbox does not parse, so no tools are offered: {exc}"))
        names = {s["function"]["name"] for s in schemas}
        files_dir = self.files_dir(task)
        files_key = f"{task.meta.get('kind')}-{task.meta.get('task_seed')}-v{GENERATOR_VERSION}"
        messages: list[dict[str, Any]] = [{"role": "system", "content": AGENT_SYSTEM},
                                          {"role": "user", "content": task.input}]
        answer, error = "", None
        for _ in range(self.max_steps):
            comp = llm(messages, tools=schemas or None)
            text = comp.text or ""
            if not comp.tool_calls:
                answer = scoring.extract_answer(text)
                steps.append(Step("answer", text))
                break
            if text.strip():
                steps.append(Step("note", text.strip()))
            messages.append(comp.assistant_message())
            for call in comp.tool_calls:
                name = str(call.get("name", ""))
                args, problem = _parse_arguments(call.get("arguments"))
                shown = json.dumps(args, ensure_ascii=False, sort_keys=True) if args is not None else \
                    redaction.clip(str(call.get("arguments")), 300, mark="")
                steps.append(Step("tool_call", f"{name}({shown})"))
                if problem is not None:
                    observation = f"Error: {problem}"
                elif name not in names:
                    observation = (f"Error: there is no tool named {name!r}; the tools are: "
                                   f"{', '.join(sorted(names)) or 'none'}")
                else:
                    try:
                        observation = self.runner.run(module.text, name, args or {}, files_dir, files_key).for_agent()
                    except (TypeError, ValueError, OSError) as exc:  # arguments the sandbox cannot take
                        observation = f"Error: the tool could not be run: {type(exc).__name__}: {exc}"
                observation = _clip(observation)
                steps.append(Step("tool_result", observation))
                messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": observation})
        else:
            error = f"step limit reached ({self.max_steps} turns without a final answer)"
        score = self.score(task, answer) if answer else 0.0
        return Trajectory(task_id=task.id, steps=steps, answer=answer, success=score >= 1.0, score=score,
                          error=error)

    def sandbox_status(self) -> tuple[str, str]:
        """(what tool code runs under, a warning to show when ``auto`` fell back)."""
        return self._sandbox_status

    # -- statistics -------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, int]:
        return {"sandbox_calls": self.runner.sandbox_calls, "cache_hits": self.runner.cache_hits}
