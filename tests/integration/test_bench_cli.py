"""`fgo bench` from the command line: every flag documented in its help, the methods listed,
and a JSONL file of the user's own tasks benchmarked like a suite."""
from __future__ import annotations

import json
from pathlib import Path

from fgo_cli.main import _parser, main
from fgo_engine.config import BENCH_VARY_KEYS, METHODS

ROOT = Path(__file__).resolve().parents[2]


def _bench_parser():
    sub = next(a for a in _parser()._actions if a.dest == "command")
    return sub.choices["bench"]


def test_every_bench_flag_has_help_and_the_methods_and_vary_keys_are_listed():
    b = _bench_parser()
    undocumented = [a.option_strings[0] for a in b._actions if a.option_strings and a.dest != "help" and not a.help]
    assert undocumented == []
    text = b.format_help()
    for m in (*METHODS, "fgo-if-not-worse"):
        assert m in text
    for key in BENCH_VARY_KEYS:
        assert key in text


def test_a_jsonl_file_is_benchmarked(tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--tasks", str(ROOT / "examples" / "quickstart" / "tasks.jsonl"), "--scorer", "normalized",
                 "--methods", "vanilla,fgo", "--subsets", "2", "--epochs", "1", "--out", str(out)])
    assert code == 0
    report = json.loads(next(out.glob("*.json")).read_text())
    text = json.dumps(report)
    assert "vanilla" in text and "fgo" in text
    assert "jsonl" in text  # the suite the table was made on
    table = capsys.readouterr().out.split("saved")[0]
    assert "vanilla" in table and "fgo" in table


def test_scorer_without_tasks_is_one_clear_error(capsys):
    assert main(["bench", "--suite", "toy", "--scorer", "exact"]) == 2
    assert "--scorer goes with --tasks" in capsys.readouterr().err
