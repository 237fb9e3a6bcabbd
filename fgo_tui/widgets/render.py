"""Rich ``Text`` builders. Everything that may hold LLM or user text goes through
``Text`` (never markup strings), so ``[/x]`` in a module is shown, not parsed."""
from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from fgo_engine.types import AUTO_APPROVE, IDENTICAL_CHILDREN, IF_NOT_WORSE, OPERATOR, epoch_label
from fgo_tui.model.state import DECIDED, StepLine, fmt_score, fmt_tokens, short

STATUS_STYLE = {
    "new": "dim",
    "pending": "dim",
    "planned": "dim",
    "running": "bold green",
    "queued": "yellow",
    "stopped": "yellow",
    "starting…": "green",
    "merging": "cyan",
    "pending review": "bold yellow",
    "pending_review": "bold yellow",
    "backtesting": "cyan",
    "approved": "green",
    "edited": "magenta",
    "rolled back": "red",
    "done": "green",
    "paused": "yellow",
    "cancelled": "yellow",
    "budget": "yellow",
    "failed": "bold red",
}

STEP_MARK = {"observation": "◂", "tool_result": "◂", "action": "▸", "answer": "▸", "tool_call": "⚙", "note": "·"}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def task_label(task_id: str) -> str:
    """'household-train-011' → '#011' (long generated ids eat a narrow panel); short ids stay."""
    if len(task_id) > 8 and "-" in task_id:
        return "#" + task_id.rsplit("-", 1)[-1]
    return task_id


def step_line(line: StepLine, width: int = 400) -> str:
    """One stream line, shown literally."""
    return f"{task_label(line.task_id)} {STEP_MARK.get(line.kind, '·')} {short(line.text, width)}"


def heading(title: str) -> Text:
    return Text(f"\n{title}\n", style="bold underline")


def kv(*pairs: tuple[str, object], sep: str = " · ") -> Text:
    out = Text()
    for i, (k, v) in enumerate(pairs):
        if i:
            out.append(sep, style="dim")
        out.append(f"{k} ", style="dim")
        out.append(str(v))
    return out


def toolbox_tools(text: str) -> list | None:
    """The tools of a toolbox module's source, or None when the text is not a toolbox."""
    if "def " not in (text or ""):
        return None
    from fgo_engine.errors import MalformedOutputError
    from fgo_engine.tools.toolbox import parse_toolbox

    try:
        tools = parse_toolbox(text)
    except (MalformedOutputError, SyntaxError, ValueError):
        return None
    return tools or None


def module_block(text: str, *, style: str = "") -> Text:
    """A module's text, literally, with rule bullets slightly emphasised. A toolbox shows
    its list of tools (signature and summary) above its highlighted source."""
    tools = toolbox_tools(text)
    if tools is not None:
        from rich.syntax import Syntax

        out = Text(f"Tools ({len(tools)})\n", style="bold")
        for t in tools:
            summary = (t.docstring or "").strip().splitlines()[0] if (t.docstring or "").strip() else ""
            out.append(f"  {t.name}", style="bold cyan")
            out.append(f"{t.signature[len(t.name):] if t.signature.startswith(t.name) else t.signature}")
            out.append(f"  {summary}\n" if summary else "\n", style="dim")
        out.append("\n")
        out.append_text(Syntax(text, "python", theme="ansi_dark", background_color="default").highlight(text))
        out.rstrip()
        return out
    out = Text()
    for ln in (text or "(empty)").splitlines() or [""]:
        out.append(ln + "\n", style=style or ("" if not ln.startswith("- ") else "bright_white"))
    out.rstrip()
    return out


def diff_text(lines: Iterable[str]) -> Text:
    out = Text()
    for ln in lines:
        if ln.startswith(("+++", "---")):
            style = "bold"
        elif ln.startswith("@@"):
            style = "cyan"
        elif ln.startswith("+"):
            style = "green"
        elif ln.startswith("-"):
            style = "red"
        else:
            style = "dim"
        out.append(ln + "\n", style=style)
    if not out:
        out.append("(no differences)", style="dim")
    out.rstrip()
    return out


def categories_text(cats: dict[str, float]) -> Text:
    out = Text()
    if not cats:
        return Text("(no per-category scores yet)", style="dim")
    for i, (c, v) in enumerate(sorted(cats.items())):
        if i:
            out.append("  ")
        out.append(f"{c} ", style="dim")
        out.append(fmt_score(v), style="green" if v >= 0.999 else "yellow" if v >= 0.5 else "red")
    return out


WHO = {OPERATOR: "you", AUTO_APPROVE: "auto-approve", IF_NOT_WORSE: "the if-not-worse policy",
       IDENTICAL_CHILDREN: "the engine (its children were one module)"}


def review_lines(rows: list[dict]) -> list[Text]:
    """The review rows of a node in words: what was decided, by whom, when; a roll back by the
    if-not-worse backtest reads as what it is, not as a second review."""
    from fgo_engine.types import IF_NOT_WORSE

    out = []
    for i, r in enumerate(rows):
        t = Text("review " if i == 0 else "then ", style="dim")
        if r["decision"] == "rollback" and r["by"] == IF_NOT_WORSE and i > 0:
            t.append("rolled back by backtest (worse than best child)", style=STATUS_STYLE["rolled back"])
        else:
            verb = DECIDED.get(r["decision"], r["decision"])
            t.append(verb, style=STATUS_STYLE.get(verb, ""))
            t.append(f" by {WHO.get(r['by'] or '', r['by'] or '?')}")
        t.append(f" · at {r['created_at']}", style="dim")
        out.append(t)
    return out


def critique_line(subset_id: object, epoch: object, task_id: str, failure: str, suggestion: str,
                  width: int = 160) -> Text:
    out = Text()
    out.append(f"{epoch_label(subset_id, epoch)} {task_id} ", style="dim")
    out.append("✗ ", style="red")
    out.append(short(failure, width))
    if suggestion:
        out.append("\n    → ", style="dim")
        out.append(short(suggestion, width), style="italic")
    return out


__all__ = ["Text", "categories_text", "critique_line", "diff_text", "fmt_score", "fmt_tokens", "heading", "kv",
           "module_block", "review_lines", "status_text", "step_line"]
