"""Small data types shared by the engine, the suites and the simulated LLM."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

ModuleKind = Literal["instruction", "toolbox"]

VERSION = "0.1.0"  # the engine's version (``fgo_engine.__version__``), recorded in every session

# Who decided a merge (the ``by`` of a review): a person, or a review policy by name.
OPERATOR = "operator"
AUTO_APPROVE = "policy:auto"
IF_NOT_WORSE = "policy:if-not-worse"  # who rolls back a merge that scored below its best child
IDENTICAL_CHILDREN = "identical-children"  # the engine: a node whose children were one module

SIM_PREFIX = "fgo-sim/"  # models of the simulated LLM (a test bed, never evidence of real-model quality)


def is_simulated(model: object) -> bool:
    """Whether ``model`` names the simulated LLM (``fgo-sim/<profile>``)."""
    return str(model).startswith(SIM_PREFIX)


@dataclass(frozen=True)
class Task:
    """One task. ``input`` is what the agent is given; it is also quoted verbatim in
    evaluator prompts inside ``<task>…</task>``."""

    id: str
    input: str
    expected: str
    category: str = "default"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Step:
    """One trajectory step: kind is action | observation | answer | tool_call | tool_result | note."""

    kind: str
    text: str


@dataclass
class Trajectory:
    task_id: str
    steps: list[Step]
    answer: str
    success: bool
    score: float  # 0..1, from the suite's scorer or the environment's goal check
    error: str | None = None  # an agent-side failure (LLM error, step limit, …)

    def render(self, max_chars: int = 4000) -> str:
        """Plain text for prompts; long trajectories keep their start and end."""
        lines = [f"{s.kind}: {s.text}" for s in self.steps]
        text = "\n".join(lines)
        if len(text) > max_chars:
            half = max_chars // 2
            text = text[:half] + "\n… (trajectory shortened) …\n" + text[-half:]
        return text


@dataclass(frozen=True)
class Module:
    """What FGO optimizes. Always text: an instruction (system prompt) or a toolbox
    (Python source of the tool functions), so it can be stored, diffed and edited."""

    kind: ModuleKind
    text: str

    def rule_lines(self) -> list[str]:
        """Guidance lines of an instruction (``- …`` bullets), used by merges and the sim."""
        return [ln[2:].strip() for ln in self.text.splitlines() if ln.startswith("- ")]


@dataclass(frozen=True)
class Knowledge:
    """A piece of guidance a task needs. The simulated LLM counts an instruction as
    covering it when one line contains every cue word (case-insensitive)."""

    key: str
    cue: tuple[str, ...]
    text: str  # canonical guidance sentence; must contain every cue word
    scope: str | None = None  # the task category where it holds; None = everywhere
    general: str = ""  # for a scoped item: the over-generalized sentence (no scope), holding every cue word


@dataclass
class Critique:
    """The evaluator's textual gradient for one trajectory."""

    task_id: str
    correct: bool
    failure: str = ""
    pattern: str = ""
    suggestion: str = ""
    raw: str = ""
    parsed: bool = True


def normalize_space(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


@dataclass(frozen=True)
class NodeRef:
    """A place in the merge tree: subset ``s3`` (a leaf) or merge node ``n2``.

    Subset rows are keyed by the number, merge-node rows by the whole string.
    """

    kind: Literal["s", "n"]
    index: int

    @classmethod
    def subset(cls, index: int) -> NodeRef:
        return cls("s", index)

    @classmethod
    def node(cls, index: int) -> NodeRef:
        return cls("n", index)

    @classmethod
    def find(cls, text: object) -> NodeRef | None:
        """The reference ``text`` names, or None when it names none."""
        if isinstance(text, str) and len(text) >= 2 and text[0] in "sn" and text[1:].isdigit():
            return cls("s" if text[0] == "s" else "n", int(text[1:]))
        return None

    @classmethod
    def parse(cls, text: object) -> NodeRef:
        ref = cls.find(text)
        if ref is None:
            raise ValueError(f"not a merge-tree reference: {text!r} (expected s<N> or n<N>)")
        return ref

    @property
    def is_subset(self) -> bool:
        return self.kind == "s"

    @property
    def is_node(self) -> bool:
        return self.kind == "n"

    def __str__(self) -> str:
        return f"{self.kind}{self.index}"


def subset_ref(text: object) -> int | None:
    """The subset number of ``"s3"`` (3); None for a merge node or anything else."""
    ref = NodeRef.find(text)
    return ref.index if ref is not None and ref.is_subset else None


def epoch_label(subset_id: object, epoch: object) -> str:
    """The one epoch numbering of every page: ``s2 epoch 0`` is subset 2's pass 0 (the baseline
    run of its starting module); the module the optimizer writes from that pass's critiques is
    ``s2.e1``, first run at epoch 1."""
    return (f"s{subset_id} " if subset_id is not None else "") + f"epoch {epoch}"


@dataclass(frozen=True)
class Scope:
    """Where a call belongs: kind (subset | node | session | baseline), id, phase."""

    kind: str = "session"
    id: str = ""
    phase: str = ""
    task_id: str | None = None  # the task an agent or evaluator call served
    epoch: int | None = None
    draw: int = 0  # the agent's sample: a fresh draw (≠ 0) is never served the runs a module was selected on

    @property
    def key(self) -> tuple[str, str]:
        """Who shares model slots fairly: one subset, one merge node, one baseline loop."""
        return (self.kind, self.id)


@dataclass
class LedgerEntry:
    role: str
    model: str
    scope: Scope
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    cache_key: str = ""
    ts: str = ""
    sample: int = 0
    started_at: float | None = None  # unix seconds (sub-ms): the call got its slot
    ended_at: float | None = None
    queue_ms: float = 0.0  # waiting for a slot, not part of latency_ms


@dataclass
class Budget:
    total_tokens: int | None = None
    cost: float | None = None
    per_role: dict[str, int] = field(default_factory=dict)


@dataclass
class Totals:
    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    prompt_tokens: int = 0  # spent: cache hits excluded
    completion_tokens: int = 0
    cost: float = 0.0
    cached_prompt_tokens: int = 0  # served by the response cache: not spent
    cached_completion_tokens: int = 0

    def add(self, e: LedgerEntry) -> None:
        self.calls += 1
        if e.error:
            self.errors += 1
        if e.cache_hit:
            self.cache_hits += 1
            self.cached_prompt_tokens += e.prompt_tokens
            self.cached_completion_tokens += e.completion_tokens
            return
        self.prompt_tokens += e.prompt_tokens
        self.completion_tokens += e.completion_tokens
        self.cost += e.cost

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """One LLM answer as the gateway returns it."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id","name","arguments"(json str)}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    model: str = ""
    finish_reason: str | None = None  # the provider's: "length" means the reply was cut off

    def assistant_message(self) -> dict[str, Any]:
        """The message to append to a conversation history."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in self.tool_calls
            ]
        return msg


@dataclass(frozen=True)
class ChildInfo:
    node_id: str  # "s3" for subset 3, or a merge node id
    module: Module
    score: float
    n_tasks: int
    scores_by_category: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ReviewRequest:
    node_id: str
    proposed: Module
    children: tuple[ChildInfo, ...]
    task_count: int


@dataclass(frozen=True)
class ReviewDecision:
    decision: str  # approve | edit | rollback
    text: str | None = None
    by: str = "policy"

    def __post_init__(self):
        if self.decision not in ("approve", "edit", "rollback"):
            raise ValueError(f"unknown review decision {self.decision!r}")
        if self.decision == "edit" and not (self.text or "").strip():
            raise ValueError("an edit needs the edited text")
