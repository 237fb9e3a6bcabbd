"""The `fgo` command line: headless runs, sessions, export, bench, and its documentation."""
from __future__ import annotations

import argparse
import json
import re
import sqlite3
from pathlib import Path

from fgo_cli.main import _parser, main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_headless_invoices_run_on_the_simulated_model(tmp_path, capsys):
    # the null profile (base rules): subsets learn within one epoch, so the merger is called too
    path = tmp_path / "inv.db"
    code = main(["run", "--suite", "invoices", "--model", "fgo-sim/null", "--headless", "--subsets", "2",
                 "--epochs", "1", "--option", "n_train=8", "--option", "n_test=8", "--session", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "projected LLM calls" in out and "subset 0 epoch 1" in out and "finished: done" in out
    con = sqlite3.connect(path)  # readable with plain sqlite3
    roles = {r[0] for r in con.execute("select distinct role from ledger")}
    assert {"agent", "evaluator", "optimizer", "merger"} <= roles
    assert con.execute("select count(*) from trajectories where phase='explore'").fetchone()[0] >= 16
    assert con.execute("select status from session").fetchone()[0] == "done"
    con.close()


def test_sessions_list_show_delete(tmp_path, capsys):
    folder = tmp_path / "sess"
    path = folder / "a.db"
    assert main(["run", "--suite", "toy", "--subsets", "2", "--epochs", "1", "--headless", "--session", str(path)]) == 0
    (folder / "junk.db").write_bytes(b"not a db")
    capsys.readouterr()
    assert main(["sessions", "list", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "a.db" in out and "toy" in out and "done" in out and "junk.db: unreadable" in out
    assert main(["sessions", "show", str(path)]) == 0
    assert "## Merge tree" in capsys.readouterr().out
    assert main(["sessions", "delete", str(path), "--yes"]) == 0
    assert not path.exists() and not Path(str(path) + "-wal").exists()


def test_export_json_and_markdown(tmp_path, capsys):
    path = tmp_path / "a.db"
    assert main(["run", "--suite", "toy", "--subsets", "3", "--epochs", "1", "--headless", "--session", str(path)]) == 0
    assert main(["export", str(path), "--format", "json", "--out", str(tmp_path / "a.json")]) == 0
    rep = json.loads((tmp_path / "a.json").read_text())
    assert rep["final_module"]["text"] and rep["merge_tree"] and rep["test_scores"]
    assert {r["role"] for r in rep["ledger"]} == {"agent", "evaluator", "optimizer", "merger"}
    assert main(["export", str(path)]) == 0
    md = capsys.readouterr().out
    assert "simulated LLM" in md and "## Test scores" in md


def test_bench_table_numbers_come_from_the_runs(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--suite", "toy", "--methods", "vanilla,all-at-once,fgo", "--subsets", "3",
                 "--epochs", "1", "--out", str(out)]) == 0
    rep = json.loads((out / "bench-toy.json").read_text())
    md = (out / "bench-toy.md").read_text()
    assert "Simulated LLM" in md and "| fgo |" in md
    for method in ("all-at-once", "fgo"):
        run = rep["methods"][method]["runs"][0]
        db = out / "sessions" / f"toy-{method}-seed0.db"
        con = sqlite3.connect(db)
        spent = con.execute("select sum(prompt_tokens) from ledger where cache_hit=0 and phase != 'test'").fetchone()[0]
        test = con.execute("select avg(score) from trajectories where phase='test' and module_id="
                           "(select final_module_id from session)").fetchone()[0]
        con.close()
        assert run["opt_prompt_tokens"] == spent > 0
        assert abs(run["test_score"] - test) < 1e-9
        assert f"{spent:,}" in md
    assert rep["methods"]["vanilla"]["runs"][0]["opt_prompt_tokens"] == 0


def test_every_command_and_option_is_documented():
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert re.search(rf"\bfgo {name}\b", README), f"`fgo {name}` missing from README"
        for action in p._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in README, f"{opt} of `fgo {name}` missing from README"


def test_bench_runs_in_parallel_processes_give_the_same_table():
    from fgo_engine.run.bench import run_bench

    # a built-in suite: the worker processes are spawned and know only what fgo_engine registers
    kw = dict(methods=["all-at-once", "fgo"], seeds=2, subsets=2, epochs=1, progress=lambda s: None,
              suite_options={"n_train": 4, "n_test": 2})
    one, two = run_bench("household", **kw), run_bench("household", jobs=2, **kw)
    for method in ("all-at-once", "fgo"):
        for key in ("overall", "prompt_tokens", "cached_prompt_tokens", "optimizer_steps"):
            assert one["methods"][method][key] == two["methods"][method][key], (method, key)
        assert [r["seed"] for r in two["methods"][method]["runs"]] == [0, 1]


def test_budget_tokens_take_the_apps_notation(capsys):
    """--budget-tokens reads 500k, 1.2M and 12,000 as the new-session form does; other text is a
    one-line error and exit 2."""
    import pytest

    p = _parser()
    assert p.parse_args(["run", "--suite", "toy", "--budget-tokens", "500k"]).budget_tokens == 500_000
    assert p.parse_args(["run", "--suite", "toy", "--budget-tokens", "1.2M"]).budget_tokens == 1_200_000
    assert p.parse_args(["resume", "x.db", "--budget-tokens", "12,000"]).budget_tokens == 12_000
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["run", "--suite", "toy", "--budget-tokens", "lots"])
    assert exc.value.code == 2
    assert "--budget-tokens: invalid token_count value: 'lots'" in capsys.readouterr().err
