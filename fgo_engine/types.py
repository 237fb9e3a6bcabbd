"""Small data types shared by the engine, the suites and the simulated LLM."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

ModuleKind = Literal["instruction", "toolbox"]


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
