"""Your starting module: --instruction / --toolbox on run and bench, the config keys, the
projection note, the session and the export; the README example runs as written."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fgo_cli.main import main
from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "You answer short quiz questions.\n- Give the answer only."


def _initial_text(path: Path) -> str:
    from fgo_engine.persistence import queries as q

    st = q.open_readonly(path)
    try:
        return next(m["text"] for m in st.rows("modules") if m["origin"] == "initial")
    finally:
        st.close()


def test_run_starts_from_the_instruction_file(tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT + "\n", encoding="utf-8")
    db = tmp_path / "s.db"
    rc = main(["run", "--suite", "toy", "--instruction", str(prompt), "--headless", "--model", "fgo-sim/small",
               "--subsets", "2", "--epochs", "1", "--option", "n_train=6", "--option", "n_test=4",
               "--session", str(db), "--review", "auto"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert 'note: starting instruction: yours, 2 lines' in out  # the projection says so
    assert _initial_text(db) == PROMPT  # stored in the session: the module the run started from
    assert main(["export", str(db), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "## Starting instruction (yours, from the configuration)" in md and PROMPT in md


def test_a_module_of_the_wrong_kind_is_one_line_and_no_file(tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT, encoding="utf-8")
    db = tmp_path / "s.db"
    assert main(["run", "--suite", "tools", "--instruction", str(prompt), "--headless",
                 "--session", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "fgo: error: suite 'tools' optimizes a toolbox, not an instruction: give --toolbox FILE"
    assert not db.exists()


def test_a_toolbox_that_does_not_parse_is_refused(tmp_path, capsys):
    box = tmp_path / "tools.py"
    box.write_text("def broken(:\n", encoding="utf-8")
    db = tmp_path / "s.db"
    assert main(["run", "--suite", "tools", "--toolbox", str(box), "--headless", "--session", str(db)]) == 2
    err = capsys.readouterr().err
    assert "the starting toolbox cannot be used" in err and err.count("\n") == 1
    assert not db.exists()


def test_a_starting_toolbox_is_the_initial_module(tmp_path):
    from fgo_engine.suites.base import build_suite
    from fgo_engine.suites.tools.library import INITIAL_TOOLBOX

    own = INITIAL_TOOLBOX + '\n\ndef shout(text: str) -> str:\n    """Upper-case text."""\n    return text.upper()\n'
    suite = build_suite(RunConfig.from_dict({"suite": "tools", "toolbox": own}))
    assert suite.initial_module().kind == "toolbox" and "def shout" in suite.initial_module().text
    assert suite.module_kind == "toolbox"  # everything else is the suite's


@pytest.mark.parametrize("problem, message", [
    ("missing", "instruction file not found"),
    ("empty", "is empty"),
    ("dir", "is a directory"),
    ("binary", "is not UTF-8 text"),
])
def test_bad_instruction_files(tmp_path, capsys, problem, message):
    path = tmp_path / "p.txt"
    if problem == "empty":
        path.write_text("  \n", encoding="utf-8")
    elif problem == "dir":
        path.mkdir()
    elif problem == "binary":
        path.write_bytes(b"\xff\xfe\x00bad")
    assert main(["run", "--suite", "toy", "--instruction", str(path), "--headless",
                 "--session", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "s.db").exists()


def test_config_key_and_file_key_relative_to_the_config(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "p.txt").write_text(PROMPT, encoding="utf-8")
    conf = tmp_path / "run.toml"
    conf.write_text('suite = "toy"\ninstruction_file = "prompts/p.txt"\n', encoding="utf-8")
    cfg = RunConfig.load(conf)
    assert cfg.instruction == PROMPT
    assert RunConfig.from_dict(cfg.to_dict()).instruction == PROMPT  # stored as text, not as a path
    assert RunConfig.from_dict({"instruction": "Be brief."}).instruction == "Be brief."
    with pytest.raises(ConfigError, match="not both"):
        RunConfig.from_dict({"instruction": "a", "toolbox": "def f(): pass"})
    with pytest.raises(ConfigError, match="instruction must be the non-empty text"):
        RunConfig.from_dict({"instruction": "  "})


def test_bench_takes_the_instruction_too(tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT, encoding="utf-8")
    out = tmp_path / "bench"
    assert main(["bench", "--suite", "toy", "--methods", "vanilla", "--instruction", str(prompt),
                 "--option", "n_train=6", "--option", "n_test=4", "--subsets", "2", "--out", str(out)]) == 0
    dbs = sorted((out / "sessions").glob("*.db"))
    assert dbs and all(_initial_text(db) == PROMPT for db in dbs)


def test_the_readme_example_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines()
                   if line.startswith("fgo run") and "--instruction" in line and "--tasks" in line)
    argv = shlex.split(command)
    files = [Path(ROOT, argv[i + 1]) for i, a in enumerate(argv) if a in ("--tasks", "--instruction")]
    assert all(f.is_file() for f in files), files
    env = {**os.environ, "FGO_SESSIONS_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "fgo_cli", *argv[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"finished: done", done.stdout)
    assert "starting instruction: yours" in done.stdout
    assert list(tmp_path.glob("jsonl-*.db"))
