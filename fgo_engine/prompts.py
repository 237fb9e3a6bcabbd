"""Prompts for the evaluator, optimizer and merger roles.

Blocks are delimited with XML-like tags, which real models follow well and which the
simulated LLM reads. Replies: the evaluator answers JSON; the optimizer and merger put
the whole new module inside ``<instruction>`` (or ``<toolbox>``) tags.
"""
from __future__ import annotations

import json
import re
from typing import Any

from fgo_engine.types import Critique, Module, Task, Trajectory

EVALUATOR_SYSTEM = """You are the evaluator in an optimization loop for an LLM agent.
You read one task, the instruction the agent followed, what the agent did, and the expected result.
Explain the outcome so that the instruction can be improved: this is a textual gradient.
Reply with one JSON object and nothing else:
{"correct": true or false, "failure": "what went wrong, one sentence",
 "pattern": "the general mistake behind it", "suggestion": "one guidance sentence to add to the instruction"}
If the agent succeeded, set correct to true and leave failure and suggestion empty."""

OPTIMIZER_SYSTEM = """You are the optimizer in an optimization loop for an LLM agent.
You receive the agent's current {what}, its scores so far, versions that were tried and did worse,
and examples of tasks with the agent's trajectories and an evaluator's critiques.
Write an improved {what} that fixes the failures without breaking what works.
Keep it general: state rules that hold for whole groups of tasks, not answers to single tasks.
{format}"""

MERGER_SYSTEM = """You merge several versions of an LLM agent's {what}, each optimized on a different subset
of tasks, into one {what} that works for all of their tasks.
Keep every rule that helps some subset, drop exact duplicates, resolve conflicts in favour of the
better-scoring version, and keep it concise.
{format}"""

INSTRUCTION_FORMAT = """Write the instruction as one line of prose followed by guidance lines that start with "- ".
Reply with the complete instruction inside <instruction></instruction> tags."""

TOOLBOX_FORMAT = """The toolbox is Python source: top-level functions with type hints and docstrings.
Reply with the complete toolbox inside <toolbox></toolbox> tags."""


def _what(kind: str) -> tuple[str, str]:
    return ("toolbox", TOOLBOX_FORMAT) if kind == "toolbox" else ("instruction", INSTRUCTION_FORMAT)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n… (shortened) …\n" + text[-half:]


def evaluator_messages(describe: str, module: Module, task: Task, traj: Trajectory) -> list[dict[str, str]]:
    outcome = "success" if traj.success else "failure"
    user = (
        f"<agent_role>{describe}</agent_role>\n"
        f"<{module.kind}>\n{module.text}\n</{module.kind}>\n"
        f"<task>\n{task.input}\n</task>\n"
        f"<trajectory>\n{traj.render(6000)}\n</trajectory>\n"
        f"<outcome>{outcome} (score {traj.score:.2f}){' — ' + traj.error if traj.error else ''}</outcome>\n"
        f"<expected>\n{task.expected}\n</expected>"
    )
    return [{"role": "system", "content": EVALUATOR_SYSTEM}, {"role": "user", "content": user}]


def parse_critique(task_id: str, text: str) -> Critique:
    """Lenient: the first JSON object in the reply; else the raw text as the critique."""
    m = re.search(r"\{.*\}", text, re.S)
    if m:
        try:
            data = json.loads(m.group(0))
            if isinstance(data, dict):
                return Critique(
                    task_id=task_id, correct=bool(data.get("correct", False)),
                    failure=str(data.get("failure", "") or ""), pattern=str(data.get("pattern", "") or ""),
                    suggestion=str(data.get("suggestion", "") or ""), raw=text, parsed=True)
        except json.JSONDecodeError:
            pass
    return Critique(task_id=task_id, correct=False, failure="", pattern="",
                    suggestion=text.strip()[:500], raw=text, parsed=False)


def optimizer_messages(
    describe: str,
    module: Module,
    examples: list[tuple[Task, Trajectory, Critique]],
    history: list[str],
    rejected: list[str],
    *,
    task_chars: int = 1200,
    traj_chars: int = 1500,
) -> list[dict[str, str]]:
    what, fmt = _what(module.kind)
    parts = [f"<agent_role>{describe}</agent_role>", f"<{module.kind}>\n{module.text}\n</{module.kind}>"]
    if history:
        parts.append("<score_history>\n" + "\n".join(history) + "\n</score_history>")
    if rejected:
        parts.append("<rejected>\n" + "\n---\n".join(rejected) + "\n</rejected>")
    ex = []
    for task, traj, crit in examples:
        ex.append(
            "<example>\n"
            f"<task>\n{_clip(task.input, task_chars)}\n</task>\n"
            f"<trajectory>\n{traj.render(traj_chars)}\n</trajectory>\n"
            f"<outcome>{'success' if traj.success else 'failure'}</outcome>\n"
            f"<critique>\nfailure: {crit.failure}\npattern: {crit.pattern}\n"
            f"suggestion: {crit.suggestion}\n</critique>\n"
            "</example>"
        )
    parts.append("<examples>\n" + "\n".join(ex) + "\n</examples>")
    return [{"role": "system", "content": OPTIMIZER_SYSTEM.format(what=what, format=fmt)},
            {"role": "user", "content": "\n".join(parts)}]


def merger_messages(describe: str, kind: str, modules: list[tuple[Module, float, int]]) -> list[dict[str, str]]:
    what, fmt = _what(kind)
    body = "\n".join(
        f'<module index="{i + 1}" score="{score:.3f}" tasks="{n}">\n{m.text}\n</module>'
        for i, (m, score, n) in enumerate(modules)
    )
    user = f"<agent_role>{describe}</agent_role>\n<modules>\n{body}\n</modules>"
    return [{"role": "system", "content": MERGER_SYSTEM.format(what=what, format=fmt)},
            {"role": "user", "content": user}]


def extract_module(kind: str, text: str) -> str | None:
    """The module inside the reply's *last* complete tag block; None when missing, empty or
    cut off (never a truncated guess). The last block, because a model that echoes its
    input first repeats the current module's block and only then writes its own."""
    tag = "toolbox" if kind == "toolbox" else "instruction"
    found = list(re.finditer(rf"<{tag}>(.*?)</{tag}>", text, re.S))
    if not found:
        return None
    last = found[-1]
    if f"<{tag}>" in text[last.end():]:
        return None  # a later block was opened and never closed: the reply was cut off
    body = last.group(1).strip("\n")
    body = re.sub(r"^```[a-z]*\n|\n```$", "", body.strip())
    return body if body.strip() else None


# Tags of the optimizer's and merger's prompts: a module holding them is an echo of the prompt.
_PROMPT_TAGS = ("<agent_role>", "<examples>", "<example>", "<critique>", "<score_history>", "<rejected>",
                "<modules>", "<module index=")


def module_problem(kind: str, reply: str, proposal: str | None, current: str | None = None) -> str | None:
    """Why a proposed module cannot be used (None: it can): empty, cut off, no block,
    an echo of the prompt, or (for the optimizer) the current module unchanged."""
    tag = "toolbox" if kind == "toolbox" else "instruction"
    if proposal is None:
        if not reply.strip():
            return "empty reply"
        opened, closed = reply.count(f"<{tag}>"), reply.count(f"</{tag}>")
        if opened > closed:
            return f"cut off: the last <{tag}> block is not closed"
        if opened:
            return f"the <{tag}> block is empty"
        return f"no <{tag}> block in the reply"
    if any(t in proposal for t in _PROMPT_TAGS):
        return f"the {tag} echoes the prompt (it contains the prompt's tags)"
    if current is not None and " ".join(proposal.split()) == " ".join(current.split()):
        if any(t in reply for t in _PROMPT_TAGS):
            return f"echoes the prompt: its last <{tag}> block is the current {tag}"
        return UNCHANGED.format(tag=tag)
    return None


UNCHANGED = "repeats the current {tag} unchanged"


def is_unchanged(reason: str) -> bool:
    """A clean reply that keeps the module as it is: the optimizer's answer, not a format
    failure; asking again would pay the step's longest prompt for a gamble."""
    return reason in (UNCHANGED.format(tag="instruction"), UNCHANGED.format(tag="toolbox"))


def with_retry_note(messages: list[dict[str, str]], reason: str, kind: str) -> list[dict[str, str]]:
    """The same prompt with a note on why the previous reply was unusable, so a retry is a
    different request, not a repeat (kept in the last user message, no new turn)."""
    what = {"instruction": "complete instruction", "toolbox": "complete toolbox", "critique": "JSON object"}[kind]
    reason = reason.replace("<", "").replace(">", "")  # no tags in the note: the prompt's blocks stay unambiguous
    note = (f"\n\nNote: your previous reply could not be used ({reason}). Reply again with the {what}, "
            "following the required format exactly.")
    out = [dict(m) for m in messages]
    out[-1]["content"] = out[-1]["content"] + note
    return out


def block(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}(?:\s[^>]*)?>\n?(.*?)\n?</{tag}>", text, re.S)
    return m.group(1) if m else None


def blocks(text: str, tag: str) -> list[tuple[str, str]]:
    """All ``<tag attrs>body</tag>`` as (attrs, body)."""
    return [(m.group(1) or "", m.group(2)) for m in
            re.finditer(rf"<{tag}((?:\s[^>]*)?)>\n?(.*?)\n?</{tag}>", text, re.S)]


def attrs(s: str) -> dict[str, Any]:
    return dict(re.findall(r'(\w+)="([^"]*)"', s))
