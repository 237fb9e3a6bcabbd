"""Prompts for the evaluator, optimizer and merger roles.

Blocks are delimited with XML-like tags, which real models follow well and which the
simulated LLM reads. Replies: the evaluator answers JSON; the optimizer and merger put
the whole new module inside ``<instruction>`` (or ``<toolbox>``) tags.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from fgo_engine import redaction
from fgo_engine.types import Critique, Module, Task, Trajectory

# The reply's shape names its keys without example values: a small model copies a value
# shown in the template ("the general mistake behind it") into every critique (issue 22).
EVALUATOR_SYSTEM = """You are the evaluator in an optimization loop for an LLM agent.
You read one task, the instruction the agent followed, what the agent did, and the expected result.
Explain the outcome so that the instruction can be improved: this is a textual gradient.
Reply with one JSON object and nothing else. It has four keys: "correct" (a boolean) and
"failure", "pattern", "suggestion" (strings written about this task, in your own words).
In "failure" say in one sentence what went wrong in this task; in "pattern", the kind of
mistake it is, for tasks of this kind in general; in "suggestion", one guidance sentence
that the instruction should contain so that the mistake is not made again.
If the agent succeeded, set "correct" to true and leave the three strings empty."""

# What an evaluator copies when it repeats a template instead of critiquing: the
# descriptions this project's template used to show as values, and the current ones.
_TEMPLATE_TEXT = ("what went wrong, one sentence", "the general mistake behind it",
                  "one guidance sentence to add to the instruction", "what went wrong in this task",
                  "the kind of mistake it is", "one guidance sentence that the instruction should contain",
                  "a boolean", "in your own words")

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


# -- the one prompt policy (every method, every optimizer call) -------------------------
REPLY_RESERVE = 4096  # tokens kept free for the optimizer's reply when the role sets no max_tokens
SUCCESS_EXAMPLES = 2  # successes shown after the failures, when they fit ("don't break what works")
SUMMARY_STEPS = 40  # a trajectory with more steps keeps its first SUMMARY_HEAD and last SUMMARY_TAIL
SUMMARY_HEAD = 12
SUMMARY_TAIL = 24


def render_trajectory(traj: Trajectory) -> str:
    """Every step whole, never cut mid-text. A ReAct trajectory longer than SUMMARY_STEPS
    steps keeps its first SUMMARY_HEAD and last SUMMARY_TAIL steps and says how many
    steps of which kinds were left out in between (the same rule for every method)."""
    steps = traj.steps
    lines = [f"{s.kind}: {s.text}" for s in steps]
    if len(steps) > SUMMARY_STEPS:
        middle = steps[SUMMARY_HEAD:len(steps) - SUMMARY_TAIL]
        kinds: dict[str, int] = {}
        for st in middle:
            kinds[st.kind] = kinds.get(st.kind, 0) + 1
        what = ", ".join(f"{n} {k}" for k, n in kinds.items())
        lines = lines[:SUMMARY_HEAD] + [f"… ({len(middle)} steps left out: {what}) …"] + lines[-SUMMARY_TAIL:]
    return "\n".join(lines)


def example_order(examples: list[tuple[Task, Trajectory, Critique]]) -> tuple[list[int], int]:
    """The fixed packing order: failures, then up to SUCCESS_EXAMPLES successes; within
    each group, round robin over categories (in order of first appearance), so a prompt
    cut short still covers every category it can. Returns (indices, how many are failures)."""
    def round_robin(idx: list[int]) -> list[int]:
        by_cat: dict[str, list[int]] = {}
        for i in idx:
            by_cat.setdefault(examples[i][0].category, []).append(i)
        out: list[int] = []
        queues = list(by_cat.values())
        while any(queues):
            for q in queues:
                if q:
                    out.append(q.pop(0))
        return out

    failures = [i for i, (_, _, c) in enumerate(examples) if not c.correct]
    successes = [i for i, (_, _, c) in enumerate(examples) if c.correct]
    return round_robin(failures) + round_robin(successes)[:SUCCESS_EXAMPLES], len(failures)


@dataclass(frozen=True)
class Packing:
    """What one optimizer prompt holds: its budget, examples offered/kept, its size."""

    budget: int | None
    failures: int  # failures offered (all must fit, or the call is overflowed)
    kept: int  # examples kept (failures first)
    prompt_tokens: int

    @property
    def dropped_failures(self) -> int:
        return max(0, self.failures - self.kept)

    @property
    def overflowed(self) -> bool:
        return self.dropped_failures > 0


def pack_optimizer_prompt(
    describe: str, module: Module, examples: list[tuple[Task, Trajectory, Critique]], history: list[str],
    rejected: list[str], *, budget: int | None, count: Callable[[list[dict[str, str]]], int],
) -> tuple[list[dict[str, str]], Packing]:
    """The optimizer prompt under the one policy: whole examples in :func:`example_order`,
    the longest prefix whose prompt fits ``budget`` tokens (None: no limit). Dropping a
    failure marks the call overflowed; successes are only added once every failure fits."""
    order, n_fail = example_order(examples)
    ordered = [examples[i] for i in order]
    rendered = [_example(*ex) for ex in ordered]
    if budget is None:
        msgs = _optimizer(describe, module, rendered, history, rejected)
        return msgs, Packing(None, n_fail, len(rendered), count(msgs))
    base = count(_optimizer(describe, module, [], history, rejected))
    sizes = [count([{"role": "user", "content": r}]) - 6 for r in rendered]  # minus one message's framing
    keep, used = 0, base
    while keep < len(rendered) and used + sizes[keep] <= budget:
        used += sizes[keep]
        keep += 1
    while True:  # the estimate is per example; the whole prompt is what counts
        msgs = _optimizer(describe, module, rendered[:keep], history, rejected)
        total = count(msgs)
        if total <= budget or keep == 0:
            return msgs, Packing(budget, n_fail, keep, total)
        keep -= 1


def _example(task: Task, traj: Trajectory, crit: Critique) -> str:
    return ("<example>\n"
            f"<task>\n{task.input}\n</task>\n"
            f"<trajectory>\n{render_trajectory(traj)}\n</trajectory>\n"
            f"<answer>{traj.answer}</answer>\n"
            f"<outcome>{'success' if traj.success else 'failure'}</outcome>\n"
            f"<critique>\nfailure: {crit.failure}\npattern: {crit.pattern}\n"
            f"suggestion: {crit.suggestion}\n</critique>\n"
            "</example>")


def evaluator_messages(describe: str, module: Module, task: Task, traj: Trajectory) -> list[dict[str, str]]:
    outcome = "success" if traj.success else "failure"
    user = (
        f"<agent_role>{describe}</agent_role>\n"
        f"<{module.kind}>\n{module.text}\n</{module.kind}>\n"
        f"<task>\n{task.input}\n</task>\n"
        f"<trajectory>\n{render_trajectory(traj)}\n</trajectory>\n"
        f"<outcome>{outcome} (score {traj.score:.2f}){' — ' + traj.error if traj.error else ''}</outcome>\n"
        f"<expected>\n{task.expected}\n</expected>"
    )
    return [{"role": "system", "content": EVALUATOR_SYSTEM}, {"role": "user", "content": user}]


def _template_copy(value: str) -> bool:
    v = " ".join(value.casefold().split()).strip(" .,;:\"'")
    return bool(v) and any(v == t or v.startswith(t) for t in _TEMPLATE_TEXT)


def copied_fields(data: dict[str, object]) -> list[str]:
    """The critique fields whose value is the template's own description, not a critique."""
    return [k for k in ("failure", "pattern", "suggestion") if _template_copy(str(data.get(k, "") or ""))]


def parse_critique(task_id: str, text: str) -> Critique:
    """Lenient: the first JSON object in the reply; else the raw text as the critique. A
    field that repeats the template's description is left empty (it would become a rule
    such as "one guidance sentence to add to the instruction"), and the critique then
    counts as not parsed, so the evaluator is asked again."""
    m = re.search(r"\{.*\}", text, re.S)
    if m:
        try:
            data = json.loads(m.group(0))
            if isinstance(data, dict):
                copied = copied_fields(data)
                fields = {k: "" if k in copied else str(data.get(k, "") or "")
                          for k in ("failure", "pattern", "suggestion")}
                return Critique(task_id=task_id, correct=bool(data.get("correct", False)), **fields,
                                raw=text, parsed=not copied)
        except json.JSONDecodeError:
            pass
    return Critique(task_id=task_id, correct=False, failure="", pattern="",
                    suggestion=redaction.clip(text.strip(), 500, mark=""), raw=text, parsed=False)


def critique_problem(text: str) -> str | None:
    """Why an evaluator reply is no usable critique (None: it is)."""
    if not text.strip():
        return "empty reply"
    m = re.search(r"\{.*\}", text, re.S)
    try:
        data = json.loads(m.group(0)) if m else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return "not a JSON object"
    copied = copied_fields(data)
    if copied:
        return (f"{', '.join(copied)} repeat{'s' if len(copied) == 1 else ''} the reply format's description "
                "instead of saying what happened in this task")
    return None


def optimizer_messages(
    describe: str,
    module: Module,
    examples: list[tuple[Task, Trajectory, Critique]],
    history: list[str],
    rejected: list[str],
) -> list[dict[str, str]]:
    """The optimizer prompt with exactly these examples, each whole (no packing)."""
    return _optimizer(describe, module, [_example(*ex) for ex in examples], history, rejected)


def _optimizer(describe: str, module: Module, rendered: list[str], history: list[str],
               rejected: list[str]) -> list[dict[str, str]]:
    what, fmt = _what(module.kind)
    parts = [f"<agent_role>{describe}</agent_role>", f"<{module.kind}>\n{module.text}\n</{module.kind}>"]
    if history:
        parts.append("<score_history>\n" + "\n".join(history) + "\n</score_history>")
    if rejected:
        parts.append("<rejected>\n" + "\n---\n".join(rejected) + "\n</rejected>")
    parts.append("<examples>\n" + "\n".join(rendered) + "\n</examples>")
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
    input first repeats the current module's block and only then writes its own. Guidance
    lines ("- …") written right after an instruction's closing tag belong to it: a small
    model repeats the current block, closes it, then adds its new rules below (issue 22)."""
    tag = "toolbox" if kind == "toolbox" else "instruction"
    found = list(re.finditer(rf"<{tag}>(.*?)</{tag}>", text, re.S))
    if not found:
        return None
    last = found[-1]
    after = text[last.end():]
    if f"<{tag}>" in after:
        return None  # a later block was opened and never closed: the reply was cut off
    body = last.group(1).strip("\n")
    body = re.sub(r"^```[a-z]*\n|\n```$", "", body.strip())
    if tag == "instruction" and body.strip():
        extra = _trailing_guidance(after)
        if extra:
            body = body.rstrip() + "\n" + "\n".join(extra)
    return body if body.strip() else None


def _trailing_guidance(after: str) -> list[str]:
    """The "- " lines that follow a closing tag, up to the first line that is not one."""
    out: list[str] = []
    for line in after.splitlines():
        if not line.strip():
            if out:
                break
            continue
        if not line.lstrip().startswith("- ") or "<" in line:
            break
        out.append(line.strip())
    return out


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
        if opened > closed:  # cut off only if the provider says so (resample.ask adds that)
            return f"the last <{tag}> block is not closed"
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
    if is_unchanged(reason):
        note = (f"\n\nNote: your previous reply repeated the current {kind} unchanged. Reply again with the "
                f"{what}, changed so that it fixes the failures shown above, following the required format exactly.")
    else:
        note = (f"\n\nNote: your previous reply could not be used ({reason}). Reply again with the {what}, "
                "following the required format exactly.")
    out = [dict(m) for m in messages]
    out[-1]["content"] = out[-1]["content"] + note
    return out
