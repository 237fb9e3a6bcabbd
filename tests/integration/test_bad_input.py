"""Bad input gets one clear line on stderr and changes nothing on disk."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from fgo_cli.main import main


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.parent.glob(path.name + "*")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def fails(capsys, *argv, code=2):
    assert main(list(argv)) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fgo: error: "), err
    return err[0]


def test_malformed_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("subsets = [oops\n")
    msg = fails(capsys, "run", "--config", str(cfg), "--headless", "--session", str(tmp_path / "s.db"))
    assert "not valid TOML" in msg and str(cfg) in msg
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("content,needle", [
    ('suite = "toy"\nsubsets = 0\n', "subsets must be"),
    ('suite = "toy"\nbogus = 1\n', "unknown config setting 'bogus'"),
    ('suite = "toy"\ncluster = "dbscan"\n', "cluster must be one of"),
    ('suite = "nope"\n', "unknown suite 'nope'"),
    ('suite = "toy"\n[roles.agent]\ntemperature = 9\n', "temperature"),
    # accepted nonsense before issue 13
    ('suite = "toy"\nsuite_options = "x"\n', "suite_options must be a table"),
    ('suite = "toy"\ncache = "no"\n', "cache must be true or false"),
    ('suite = "toy"\nretries = "many"\n', "retries must be a whole number"),
    ('suite = "toy"\nmodel = "fgo-sim/small:latency=-1"\n', "latency must not be negative"),
    ('suite = "toy"\nsandbox = "maybe"\n', "sandbox must be one of strict, auto, in-process"),
])
def test_bad_config_values(tmp_path, capsys, content, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    msg = fails(capsys, "run", "--config", str(cfg), "--headless", "--session", str(tmp_path / "s.db"))
    assert needle in msg
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("suite,option,needle", [
    ("household", "n_train=abc", "household: option n_train must be a whole number (got 'abc')"),
    ("invoices", "n_test=true", "invoices: option n_test must be a whole number (got True)"),
    ("tools", "n_train=x1", "tools: option n_train must be a whole number (got 'x1')"),
])
def test_a_suite_option_of_the_wrong_kind_is_named_not_a_traceback(tmp_path, capsys, suite, option, needle):
    msg = fails(capsys, "run", "--suite", suite, "--option", option, "--headless",
                "--session", str(tmp_path / "s.db"))
    assert needle in msg and "Traceback" not in msg
    assert not (tmp_path / "s.db").exists()


def test_malformed_task_file_names_the_line(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "a", "input": "1+1", "expected": "2"}\n{"id": "b", "input": \n')
    msg = fails(capsys, "run", "--tasks", str(tasks), "--headless", "--session", str(tmp_path / "s.db"))
    assert "t.jsonl" in msg and "line 2" in msg
    assert not (tmp_path / "s.db").exists()


def test_unknown_model(tmp_path, capsys):
    msg = fails(capsys, "run", "--suite", "toy", "--model", "gpt-nonexistent-9000", "--headless",
                "--session", str(tmp_path / "s.db"))
    assert "unknown model 'gpt-nonexistent-9000'" in msg
    msg = fails(capsys, "run", "--suite", "toy", "--model", "fgo-sim/gigantic", "--headless",
                "--session", str(tmp_path / "s.db"))
    assert "unknown simulated profile" in msg
    assert not (tmp_path / "s.db").exists()


def test_missing_session(tmp_path, capsys):
    msg = fails(capsys, "resume", str(tmp_path / "nope.db"), "--headless")
    assert "nope.db" in msg
    assert not (tmp_path / "nope.db").exists()
    fails(capsys, "export", str(tmp_path / "nope.db"))
    assert not (tmp_path / "nope.db").exists()


def test_corrupt_session_is_left_untouched(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database\x00" * 100)
    before = digest(bad)
    fails(capsys, "resume", str(bad), "--headless")
    fails(capsys, "export", str(bad))
    assert digest(bad) == before


def test_session_from_a_newer_version_is_left_untouched(tmp_path, capsys):
    path = tmp_path / "s.db"
    assert main(["run", "--suite", "toy", "--model", "fgo-sim/medium", "--subsets", "2", "--epochs", "1",
                 "--headless", "--session", str(path)]) == 0
    capsys.readouterr()
    con = sqlite3.connect(path)
    con.execute("update meta set value = '999' where key = 'schema_version'")
    con.commit()
    con.close()
    before = digest(path)
    msg = fails(capsys, "resume", str(path), "--headless")
    assert "newer" in msg.lower()
    fails(capsys, "export", str(path))
    assert digest(path) == before


def test_existing_session_path_is_not_overwritten(tmp_path, capsys):
    path = tmp_path / "s.db"
    path.write_bytes(b"precious")
    msg = fails(capsys, "run", "--suite", "toy", "--headless", "--session", str(path))
    assert "already exists" in msg
    assert path.read_bytes() == b"precious"
