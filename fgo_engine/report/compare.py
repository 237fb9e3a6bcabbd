"""Two or more sessions side by side: scores per category, tokens, cost, time, final modules.

Sessions compare like with like when they ran the same tasks; :attr:`Comparison.same_tasks` says
whether they did, and the screens and the CLI say so when they did not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgo_engine.persistence import queries as q


@dataclass
class SessionColumn:
    path: Path
    name: str
    method: str
    subsets: int | None
    epochs: int | None
    models: list[str]
    status: str
    train_score: float | None  # the best training-side score the run reported
    test_score: float | None  # the final module on the test split (None: no test phase)
    tokens: int
    cost: float
    wall_seconds: float
    final_module_id: str | None
    final_text: str
    by_category: dict[str, float]  # test scores when there is a test phase, else training-side scores
    category_source: str  # "test" | "train"
    task_key: tuple[frozenset[str], frozenset[str]] = field(repr=False, default=(frozenset(), frozenset()))


@dataclass
class Comparison:
    columns: list[SessionColumn]
    errors: dict[str, str]  # path → why it could not be read

    @property
    def same_tasks(self) -> bool:
        keys = {c.task_key for c in self.columns}
        return len(keys) <= 1

    @property
    def categories(self) -> list[str]:
        return sorted({k for c in self.columns for k in c.by_category})

    def diff(self, i: int, j: int = 0) -> list[str]:
        """The unified diff from column ``j``'s final module to column ``i``'s."""
        a, b = self.columns[j], self.columns[i]
        return q.unified_diff(a.final_text, b.final_text, a.name, b.name)


def _column(path: Path, store: Any) -> SessionColumn:
    info = q.session_info(store)
    cfg = info.get("config_json") or {}
    final = info.get("final_module_id")
    test_rows = q.category_test_scores(store, final) if final else []
    if test_rows:
        by_cat, source = {r["category"]: r["score"] for r in test_rows}, "test"
    else:
        by_cat, source = (q.category_train_scores(store, final) if final else {}), "train"
    totals = q.ledger_totals(store).total
    return SessionColumn(
        path=path, name=path.stem, method=cfg.get("method", "fgo"),
        subsets=cfg.get("subsets"), epochs=cfg.get("epochs"),
        models=sorted({r.get("model", "?") for r in (cfg.get("roles") or {}).values()}),
        status=info.get("status") or "new", train_score=info.get("best_score"),
        test_score=q.mean_test_score(store, final) if final else None,
        tokens=totals.tokens, cost=totals.cost, wall_seconds=q.elapsed_seconds(store),
        final_module_id=final, final_text=(q.module_text(store, final) or "") if final else "",
        by_category=by_cat, category_source=source, task_key=q.task_ids(store))


def compare(paths: list[Path]) -> Comparison:
    """Read every session (read-only; a running one too); one that cannot be read is named in ``errors``."""
    from fgo_engine.errors import FGOError

    columns, errors = [], {}
    for p in paths:
        try:
            store = q.open_readonly(p)
        except FGOError as exc:
            errors[str(p)] = str(exc)
            continue
        try:
            columns.append(_column(Path(p), store))
        finally:
            store.close()
    return Comparison(columns, errors)


def to_markdown(c: Comparison) -> str:
    """The comparison as a Markdown table (``fgo sessions compare``)."""
    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    head = "| | " + " | ".join(col.name for col in c.columns) + " |"
    lines = [head, "|---" * (len(c.columns) + 1) + "|"]
    rows: list[tuple[str, list[str]]] = [
        ("method", [col.method for col in c.columns]),
        ("subsets × epochs", [f"{col.subsets or '?'} × {col.epochs or '?'}" for col in c.columns]),
        ("models", [", ".join(col.models) for col in c.columns]),
        ("status", [col.status for col in c.columns]),
        ("best train score", [f(col.train_score) for col in c.columns]),
        ("test score", [f(col.test_score) for col in c.columns]),
        ("tokens spent", [f"{col.tokens:,}" for col in c.columns]),
        ("cost", [f"${col.cost:.4f}" for col in c.columns]),
        ("time", [f"{col.wall_seconds:.0f} s" for col in c.columns]),
    ]
    for cat in c.categories:
        rows.append((f"{cat} ({'/'.join(sorted({col.category_source for col in c.columns}))})",
                     [f(col.by_category.get(cat)) for col in c.columns]))
    lines += ["| " + k + " | " + " | ".join(v) + " |" for k, v in rows]
    if not c.same_tasks:
        lines.append("\nThese sessions did not run the same tasks: their scores are not comparable.")
    for i in range(1, len(c.columns)):
        lines += ["", f"Final module, {c.columns[0].name} → {c.columns[i].name}:", "```diff", *c.diff(i), "```"]
    for p, why in c.errors.items():
        lines.append(f"\n{p}: not read ({why})")
    return "\n".join(lines) + "\n"
