"""Export a session as JSON or Markdown: final module, merge tree, scores, ledger totals.

Reads through a read-only store; API keys are never in the store, so never in exports.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fgo_engine.persistence import queries as q
from fgo_engine.types import is_simulated

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store

from fgo_engine import redaction


def session_report(store: Store) -> dict[str, Any]:
    info = q.session_info(store)
    final = q.module(store, info.get("final_module_id"))
    nodes = q.merge_nodes(store)
    subsets = q.subsets(store)
    reviews = q.reviews(store)
    ledger = [{"role": role, "calls": t.calls, "cache_hits": t.cache_hits, "prompt_tokens": t.prompt_tokens,
               "completion_tokens": t.completion_tokens, "cost": t.cost, "errors": t.errors}
              for role, t in sorted(q.ledger_totals(store).by_role.items())]
    test = q.category_test_scores(store, final["id"]) if final else []
    start = q.category_test_scores(store, "initial") if final else []
    config = info.get("config_json") or {}
    tested = q.module_test_scores(store)  # every module scored on the test split (reported only)
    return {
        "session": {k: info.get(k) for k in ("name", "suite", "status", "created_at", "updated_at",
                                               "best_score", "error")},
        "config": config,
        "final_module": {"id": final["id"], "kind": final["kind"], "text": final["text"]} if final else None,
        "test_scores": {r["category"]: r["score"] for r in test},
        "test_overall": (sum(r["score"] * r["n"] for r in test) / sum(r["n"] for r in test)) if test else None,
        # the starting module on the same test tasks (reported beside the result; never used to decide)
        "start_test_scores": {r["category"]: r["score"] for r in start},
        "start_test_overall": (sum(r["score"] * r["n"] for r in start) / sum(r["n"] for r in start))
        if start else None,
        "subsets": [{"id": s["id"], "name": s["name"], "tasks": len(s["task_ids_json"] or []),
                     "best_score": s["best_score"], "status": s["status"],
                     "test_score": tested.get(s["best_module_id"] or "")} for s in subsets],
        "merge_tree": [{"id": n["id"], "parent": n["parent_id"], "children": n["child_ids_json"],
                        "status": n["status"], "tasks": len(n["task_ids_json"] or []),
                        "score_before": n["score_before"], "score_after": n["score_after"],
                        "scores": n["scores_json"], "module_id": n["module_id"],
                        "test_score": tested.get(n["module_id"] or ""),
                        "merged_test_score": tested.get(n["proposed_module_id"] or "")} for n in nodes],
        "reviews": [{"node": r["node_id"], "decision": r["decision"], "by": r["by"], "at": r["created_at"],
                     "text": r["text"]} for r in reviews],
        "ledger": ledger,
        "provenance": _provenance(store, final["id"]) if final else None,
    }


def _provenance(store: Any, module_id: str) -> dict[str, Any] | None:
    from fgo_engine.report.provenance import blame

    b = blame(store, module_id)
    return b.to_dict() if b is not None else None


def to_json(report: dict[str, Any]) -> str:
    return redaction.scrub(json.dumps(report, indent=2, ensure_ascii=False))


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def to_markdown(report: dict[str, Any]) -> str:
    s = report["session"]
    out = [f"# FGO session: {s['name']}", "",
           f"- suite: {s['suite']} · status: {s['status']} · " + (
               "no training (vanilla: the starting module as it is)" if report["config"].get("method") == "vanilla"
               else f"best train score: {_f(s['best_score'])}"),
           f"- created {s['created_at']} · updated {s['updated_at']}"]
    models = {r: v.get("model") for r, v in (report["config"].get("roles") or {}).items()}
    if models:
        out.append("- models: " + ", ".join(f"{r} = {m}" for r, m in models.items()))
    if any(is_simulated(m) for m in models.values()):
        out.append("- **simulated LLM (fgo-sim): a test bed, not evidence of real-model quality**")
    if s.get("error"):
        out.append(f"- last message: {s['error']}")
    cfg = report["config"]
    for kind in ("instruction", "toolbox"):
        if cfg.get(kind):
            out += ["", f"## Starting {kind} (yours, from the configuration)", "", "```", cfg[kind], "```"]
    out += ["", "## Final module", ""]
    fm = report["final_module"]
    out += (["```", fm["text"], "```"] if fm else ["(none yet)"])
    prov = report.get("provenance")
    if prov and prov.get("rules"):
        out += ["", "## Where each rule of the final module came from", ""]
        out += [f"- `{r['text']}` — {r['summary']}" for r in prov["rules"]]
        if prov.get("dropped"):
            out += ["", f"Dropped on the way ({len(prov['dropped'])}):", ""]
            out += [f"- `{d['text']}` — by {d['where']}" for d in prov["dropped"]]
    if report["test_scores"]:
        start = report.get("start_test_scores") or {}
        out += ["", "## Test scores", "", "The held-out test tasks, scored once the run ended (no decision of the run "
                "read them): the starting module beside the result.", "",
                "| category | starting module | result |", "|---|---|---|"]
        out += [f"| {c} | {_f(start.get(c))} | {_f(v)} |" for c, v in report["test_scores"].items()]
        out.append(f"| **overall** | **{_f(report.get('start_test_overall'))}** | **{_f(report['test_overall'])}** |")
    tested = any(x.get("test_score") is not None for x in report["subsets"] + report["merge_tree"])
    if tested:
        out += ["", "The *test* columns below score each module on the test split after the run: reported only, "
                "no decision of the run read them."]
    if report["subsets"]:
        out += ["", "## Subsets", "", "| id | name | tasks | best score | test | status |", "|---|---|---|---|---|---|"]
        out += [f"| {x['id']} | {x['name']} | {x['tasks']} | {_f(x['best_score'])} | {_f(x.get('test_score'))} | "
                f"{x['status']} |" for x in report["subsets"]]
    if report["merge_tree"]:
        out += ["", "## Merge tree", "", "| node | children | parent | tasks | before | after | test (merged) | "
                "test (kept) | status |", "|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {n['id']} | {', '.join(n['children'] or [])} | {n['parent'] or '—'} | {n['tasks']} | "
                f"{_f(n['score_before'])} | {_f(n['score_after'])} | {_f(n.get('merged_test_score'))} | "
                f"{_f(n.get('test_score'))} | {n['status']} |" for n in report["merge_tree"]]
    if report["reviews"]:
        out += ["", "## Review decisions", ""]
        out += [f"- {r['at']} {r['node']}: {r['decision']} ({r['by']})" for r in report["reviews"]]
    out += ["", "## LLM ledger", "",
            "| role | calls | cache hits | prompt tokens | completion tokens | cost | errors |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {r['role']} | {r['calls']} | {r['cache_hits']} | {r['prompt_tokens']:,} | {r['completion_tokens']:,} | "
            f"${r['cost'] or 0:.4f} | {r['errors']} |" for r in report["ledger"]]
    return redaction.scrub("\n".join(out) + "\n")
