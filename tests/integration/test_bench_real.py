"""`make bench-real`'s script end to end against the loopback fake server (a real model
stands behind --api-base in use): every method on the same BBH test tasks, the interval of
each method's difference to vanilla, the adopted text, and its files."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from fake_openai import ok

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("bench_real", ROOT / "benchmarks" / "bench_real.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bbh(folder: Path) -> Path:
    examples = [{"input": f"True and {v} is", "target": v} for v in ("True", "False") * 6]
    (folder / "boolean_expressions.json").write_text(json.dumps({"canary": "C", "examples": examples}))
    return folder


def test_bench_real_writes_scores_intervals_and_adopted_text(tmp_path, fake_openai, monkeypatch):
    mod = _script()
    monkeypatch.setattr(mod, "OUT", tmp_path / "results")
    fake_openai.responder = lambda body: ok("It is True.\nAnswer: True")
    code = mod.main(["--api-base", fake_openai.url, "--model", "openai/fake", "--data", str(_bbh(tmp_path)),
                     "--tasks", "boolean_expressions", "--n-train", "4", "--n-test", "4", "--seeds", "2",
                     "--subsets", "2", "--methods", "vanilla,all-at-once,fgo"])
    assert code == 0
    rep = json.loads((tmp_path / "results" / "real-openai-fake.json").read_text())
    assert set(rep["methods"]) == {"vanilla", "all-at-once", "fgo"} and rep["seeds"] == 2
    tests = {m: [sorted(r["test_by_task"]) for r in s["runs"]] for m, s in rep["methods"].items()}
    assert tests["vanilla"] == tests["fgo"] == tests["all-at-once"]  # the same test tasks for every method
    d = rep["differences_to_vanilla"]["fgo"]
    assert d["paired_tasks"] == 8 and d["low"] <= d["difference"] <= d["high"]
    md = (tmp_path / "results" / "real-openai-fake.md").read_text()
    assert "95% interval" in md and "Adopted instructions" in md and "**fgo**" in md


def test_bench_real_without_a_model_says_what_to_give(tmp_path, monkeypatch, capsys):
    mod = _script()
    monkeypatch.setenv("FGO_LOCAL_GGUF", str(tmp_path / "missing.gguf"))
    assert mod.main(["--data", str(_bbh(tmp_path))]) == 2
    assert "FGO_LOCAL_GGUF" in capsys.readouterr().err
