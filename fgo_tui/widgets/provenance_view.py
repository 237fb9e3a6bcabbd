"""Rule provenance and rule-level diffs as rich Text (LLM text shown literally, never markup)."""
from __future__ import annotations

from typing import Any

from rich.text import Text

from fgo_engine.report.provenance import Unit
from fgo_tui.model.state import fmt_score, short

ACTION_STYLE = {"initial": "dim", "added": "green", "rewritten": "yellow", "kept": "", "kept-whole": "red",
                "edited-in": "magenta", "edited": "magenta"}


def blame_lines(blame: Any, *, width: int = 200, critiques: int = 1) -> list[Text]:
    """Each rule with its story (oldest first), then what was dropped on the way."""
    from fgo_engine.report.provenance import step_text

    if blame is None:
        return [Text("(no provenance: the module is not in the session file)", style="dim")]
    out: list[Text] = []
    for r in blame.rules:
        line = Text("• ", style="dim")
        line.append(short(r.text, width), style="bold")
        out.append(line)
        story = Text("    ")
        for i, st in enumerate(reversed(r.history)):
            if i:
                story.append(" → ", style="dim")
            story.append(step_text(st), style=ACTION_STYLE.get(st.action, ""))
        out.append(story)
        origin = r.origin
        for c in (origin.critiques if origin else [])[:critiques]:
            out.append(Text(f"    asked by {c['task_id']}: " + short(c["suggestion"] or c["failure"], width - 20),
                            style="dim italic"))
    if blame.dropped:
        out.append(Text(f"dropped on the way ({len(blame.dropped)})", style="bold red"))
        for d in blame.dropped[:12]:
            t = Text("  − ", style="red")
            t.append(short(d.text, width - 30))
            t.append(f"  by {d.where}", style="dim")
            out.append(t)
    return out


def rule_diff_lines(kind: str, child_id: str, child_text: str, merged_text: str, *, width: int = 160) -> list[Text]:
    """The merged module's rules against one child: counts, then what is lost, rewritten, added."""
    from fgo_engine.report.provenance import rule_diff

    d = rule_diff(kind, child_text, merged_text)
    what = "tools" if kind == "toolbox" else "rules"
    head = Text(f"vs {child_id}: ", style="bold")
    head.append(f"{len(d.kept)} kept", style="")
    head.append(f" · {len(d.rewritten)} rewritten", style="yellow" if d.rewritten else "dim")
    head.append(f" · {len(d.added)} added", style="green" if d.added else "dim")
    head.append(f" · {len(d.dropped)} lost", style="bold red" if d.dropped else "dim")
    out = [head]
    for u in d.dropped:
        out.append(Text.assemble(("  − lost ", "bold red"), short(u.text, width)))
    for o, n in d.rewritten:
        out.append(Text.assemble(("  ~ ", "yellow"), short(o.text, width // 2), (" → ", "dim"),
                                 short(n.text, width // 2)))
    for u in d.added:
        out.append(Text.assemble(("  + ", "green"), short(u.text, width)))
    if not (d.dropped or d.rewritten or d.added):
        out.append(Text(f"  (the same {what})", style="dim"))
    return out


def category_table(columns: list[tuple[str, dict[str, float]]]) -> Text:
    """Categories down, modules across: each child and (after the backtest) the merge."""
    cats = sorted({c for _, d in columns for c in d})
    if not cats:
        return Text("(no per-category scores yet)", style="dim")
    w = max(8, *(len(c) for c in cats))
    t = Text(f"{'category':<{w}}", style="dim")
    for name, _ in columns:
        t.append(f" {short(name, 9):>9}", style="bold")
    for c in cats:
        t.append(f"\n{c:<{w}}", style="dim")
        vals = [d.get(c) for _, d in columns]
        top = max((v for v in vals if v is not None), default=None)
        for v in vals:
            style = "dim" if v is None else "green" if top is not None and v >= top else "red" if v < 0.5 else ""
            t.append(f" {fmt_score(v):>9}", style=style)
    return t


def rollback_cost(kind: str, request: Any, keep: Any, categories: dict[str, dict[str, float]]) -> str:
    """What a roll back to ``keep`` throws away: the merge's rules the kept child lacks, and the
    categories where another child does better than the kept one."""
    from fgo_engine.report.provenance import rule_diff

    d = rule_diff(kind, keep.module.text, request.proposed.text)
    what = "tools" if kind == "toolbox" else "rules"
    lines = [f"Rolling back keeps {keep.node_id}'s module as it is and throws away the merge."]
    gone = [u.text for u in d.added] + [n.text for _, n in d.rewritten]
    if gone:
        noun = what if len(gone) != 1 else what[:-1]
        lines.append(f"\n{len(gone)} {noun} of the merge that {keep.node_id} does not have:")
        lines += [f"  − {short(t, 100)}" for t in gone[:10]]
        if len(gone) > 10:
            lines.append(f"  … and {len(gone) - 10} more")
    else:
        lines.append(f"\nThe merge has no {what} that {keep.node_id} lacks.")
    mine = categories.get(keep.node_id) or keep.scores_by_category or {}
    better, unseen = [], []
    for c in request.children:
        if c is keep:
            continue
        for cat, v in sorted((categories.get(c.node_id) or c.scores_by_category or {}).items()):
            if v is None:
                continue
            if mine.get(cat) is None:  # the kept child never ran a task of it: no score to compare
                unseen.append(f"  {cat}: {c.node_id} scores {fmt_score(v)}")
            elif v > mine[cat]:
                better.append(f"  {cat}: {c.node_id} scores {fmt_score(v)}, {keep.node_id} {fmt_score(mine[cat])}")
    if better:
        lines.append("\nCategories where another child does better (their rules go with the merge):")
        lines += better[:10]
    if unseen:
        lines.append(f"\nCategories {keep.node_id} was never trained or scored on (another child's rules for "
                     "them go with the merge):")
        lines += unseen[:10]
    return "\n".join(lines)


def rule_matrix(kind: str, children: list[tuple[str, str]], merged: str, *, width: int = 300) -> list[Text]:
    """One row per rule of the merge (and per rule it lost): which child has it (✓ same, ~ rewritten).
    Each row is one line cropped with an ellipsis where the screen ends (``width`` only bounds the
    text), so a wide terminal shows the whole rule."""
    from fgo_engine.report.provenance import find_unit, units

    merged_u = units(kind, merged)
    kids = [(cid, units(kind, text)) for cid, text in children]
    head = Text(f"{'':<3}", style="dim")
    for cid, _ in kids:
        head.append(f"{short(cid, 4):>5}", style="bold")
    head.append("  rule of the merge", style="dim")
    out = [head]
    for u in merged_u:
        row = Text("   ")
        for _, ku in kids:
            hit = find_unit(ku, u, kind)
            mark, style = ("✓", "green") if hit is not None and hit.body == u.body else \
                ("~", "yellow") if hit is not None else ("·", "dim")
            row.append(f"{mark:>5}", style=style)
        new = all(find_unit(ku, u, kind) is None for _, ku in kids)
        row.append("  ")
        row.append(short(u.text, width), style="green" if new else "")
        if new and len(kids) > 1:
            row.append("  (new)", style="green")
        row.no_wrap, row.overflow = True, "ellipsis"  # one line per rule, whatever the width
        out.append(row)
    lost: list[tuple[str, Unit]] = []
    for cid, ku in kids:
        for k in ku:
            if find_unit(merged_u, k, kind) is None and all(k.key != x.key for _, x in lost):
                lost.append((cid, k))
    for _cid, k in lost:
        row = Text("✗  ", style="bold red")
        for _kcid, ku in kids:
            row.append(f"{'✓' if any(x.key == k.key for x in ku) else '·':>5}", style="red")
        row.append("  ")
        row.append(short(k.text, width), style="red")
        row.append("  (lost)", style="bold red")
        row.no_wrap, row.overflow = True, "ellipsis"
        out.append(row)
    return out
