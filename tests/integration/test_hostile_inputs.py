"""Faults and bad input from issue 13: one clear line, no traceback, nothing touched."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from fgo_cli.main import main
from fgo_engine.persistence.store import APPLICATION_ID
from fgo_engine.suites.jsonl_tasks import MAX_FILE_BYTES, MAX_TASK_BYTES

TESTS = Path(__file__).resolve().parents[1]  # tests/: toy_suite and the fake server


def fails(capsys, *argv, code=2):
    assert main(list(argv)) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fgo: error: "), err
    return err[0]


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", *extra, "--headless", "--session", str(tmp_path / "s.db")]


def test_deeply_nested_json_in_a_task_line(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "a", "input": "x", "expected": "y"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    msg = fails(capsys, *run_args(tmp_path, "--tasks", str(tasks)))
    assert "line 2" in msg and "nested too deeply" in msg


def test_config_pointing_at_a_directory(tmp_path, capsys):
    msg = fails(capsys, *run_args(tmp_path, "--config", str(tmp_path)))
    assert "is not a file" in msg


def test_a_missing_subfolder_on_a_read_only_filesystem(tmp_path, capsys):
    if os.geteuid() == 0:
        target = Path("/proc/fgo-no-such-dir/s.db")  # procfs: read-only even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        target = ro / "sub" / "s.db"
    msg = fails(capsys, "run", "--suite", "toy", "--headless", "--session", str(target))
    assert "cannot create the folder" in msg


def test_a_huge_task_line_fails_fast(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    with tasks.open("w") as f:
        f.write('{"id": "a", "input": "' + "x" * (MAX_TASK_BYTES + 10) + '", "expected": "y"}\n')
    msg = fails(capsys, *run_args(tmp_path, "--tasks", str(tasks)))
    assert "line 1" in msg and "limit is 1 MiB per task" in msg


def test_a_huge_task_file_is_refused_before_it_is_read(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    with tasks.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing to read if we never read it
    msg = fails(capsys, *run_args(tmp_path, "--tasks", str(tasks)))
    assert f"limit is {MAX_FILE_BYTES >> 20} MiB per file" in msg


def _foreign(path: Path) -> str:
    con = sqlite3.connect(path)
    con.execute("create table meta (key text primary key, value text)")
    con.execute("insert into meta values ('schema_version', '1')")
    con.execute("create table notes (body text)")
    con.commit()
    con.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_on_another_applications_sqlite_file_leaves_it_byte_identical(tmp_path, capsys):
    path = tmp_path / "other.db"
    before = _foreign(path)
    msg = fails(capsys, "resume", str(path), "--headless")
    assert "not an FGO session" in msg
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no lock file
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert con.execute("pragma journal_mode").fetchone()[0] != "wal"
    con.close()


def test_sessions_list_shows_foreign_files_as_not_a_session(tmp_path, capsys, toy_config):
    from fgo_engine.run.session import Session

    _foreign(tmp_path / "other.db")
    Session.create(tmp_path / "mine.db", toy_config(subsets=1, epochs=1)).close()
    assert main(["sessions", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "other.db: not a session" in out and "mine.db" in out and "toy" in out


def test_the_sessions_screen_lists_a_foreign_file_as_not_a_session(tmp_path):
    from fgo_engine.persistence.queries import list_sessions

    _foreign(tmp_path / "other.db")
    rows = list_sessions(tmp_path)
    assert [r.get("label") for r in rows] == ["not a session"]  # what the screen's status column shows


def _env():
    e = dict(os.environ)
    e["FGO_PLUGINS"] = "toy_suite"
    e["PYTHONPATH"] = str(TESTS) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def test_a_kill_right_after_the_file_appears(tmp_path):
    """SIGKILL as soon as the session file exists: resume says what it is, delete removes it."""
    path = tmp_path / "s.db"
    p = subprocess.Popen([sys.executable, "-m", "fgo_cli", "run", "--suite", "toy", "--headless", "--session",
                          str(path)], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not path.exists():
            assert p.poll() is None, "the run ended before its file appeared"
            time.sleep(0.001)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    if path.stat().st_size == 0 or sqlite3.connect(path).execute(
            "select count(*) from sqlite_master where name='meta'").fetchone()[0] == 0:
        r = subprocess.run([sys.executable, "-m", "fgo_cli", "resume", str(path), "--headless"], env=_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "incomplete session file" in r.stderr and "Traceback" not in r.stderr
    d = subprocess.run([sys.executable, "-m", "fgo_cli", "sessions", "delete", str(path), "--yes"], env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert d.returncode == 0, d.stderr
    assert list(tmp_path.iterdir()) == []


def test_delete_removes_the_rollback_journal_a_kill_during_creation_leaves(tmp_path):
    """Killed before the new session switched to WAL, SQLite leaves ``s.db-journal`` (what the
    test above met once in CI): deleting the session removes it with the file."""
    from fgo_engine.run.logs import delete_session_files

    path = tmp_path / "s.db"
    con = sqlite3.connect(path)
    con.execute("create table t(x)")
    con.commit()
    (tmp_path / "s.db-journal").write_bytes(b"\0" * 512)  # a hot journal beside it
    con.close()
    delete_session_files(path)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_creation_is_reported_and_deletable(tmp_path, capsys):
    """The deterministic form of the kill above: an empty file, and one with only our id."""
    empty = tmp_path / "empty.db"
    empty.touch()
    half = tmp_path / "half.db"
    con = sqlite3.connect(half)
    con.execute(f"pragma application_id = {APPLICATION_ID}")
    con.execute("create table meta (key text primary key, value text)")
    con.commit()
    con.close()
    for path in (empty, half):
        assert "incomplete session file" in fails(capsys, "resume", str(path), "--headless")
        assert main(["sessions", "delete", str(path), "--yes"]) == 0
        assert not path.exists()
