"""Tokens per role and per phase on one labelled scale (rich's Bar: one scale for every row)."""
from __future__ import annotations

from rich.bar import Bar
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fgo_tui.model.state import RunView, fmt_tokens

BAR_WIDTH = 36


def usage_chart(view: RunView, width: int = BAR_WIDTH) -> Group:
    """Two blocks (roles, phases); every bar is drawn against the largest value of both, so a
    glance compares the optimizer with the agent and a backtest with the explores."""
    rows = [("role", k, v) for k, v in sorted(view.role_tokens.items(), key=lambda kv: -kv[1])]
    rows += [("phase", k, v) for k, v in sorted(view.phase_tokens.items(), key=lambda kv: -kv[1])]
    top = max((v for _, _, v in rows), default=0)
    title = Text("Tokens spent per role and per phase", style="bold")
    title.append(f"   one scale: a full bar is {fmt_tokens(top)} tokens (cache hits are free)", style="dim")
    if not rows or not top:
        return Group(title, Text("(no tokens spent yet)", style="dim"))
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(width=width, no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    last = None
    for kind, name, value in rows:
        colour = "#4c9be8" if kind == "role" else "#e8a33c"
        table.add_row(kind if kind != last else "", name, Bar(top, 0, value, width=width, color=colour),
                      fmt_tokens(value))
        last = kind
    return Group(title, table)


def score_bars(rows: list[tuple[str, float | None]], width: int = 24) -> Table:
    """Scores on one 0–1 scale: the children's training scores, then the merge before and after its backtest."""
    from fgo_tui.model.state import fmt_score

    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(width=width, no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for label, v in rows:
        table.add_row(label, Bar(1.0, 0, v or 0.0, width=width, color="green" if (v or 0) >= 0.5 else "red"),
                      fmt_score(v))
    return table
