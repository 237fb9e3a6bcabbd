"""The files of a session (issue 23 items 14 and 15): a session reached through a symbolic or
hard link is checked on its real file, so a killed one is not called incomplete; a refused
input (a damaged session file, a session whose suite is gone, a task that cannot be stored)
leaves nothing new beside it."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fgo_cli.main import main
from fgo_engine.config import RunConfig
from fgo_engine.errors import FGOError
from fgo_engine.persistence import queries
from fgo_engine.persistence.store import Store
from fgo_engine.run.session import Session

TESTS = Path(__file__).resolve().parents[1]  # tests/: toy_suite
# Creates a session and is killed before anything is checkpointed: its rows are in the WAL only.
KILLED = ("import os, signal, sys; from fgo_engine.config import RunConfig; from fgo_engine.run.session import Session; "
          "s = Session.create(sys.argv[1], RunConfig.from_dict({'suite': 'toy', 'model': 'fgo-sim/medium', "
          "'subsets': 2, 'epochs': 1}), name='killed'); s.store.flush(); os.kill(os.getpid(), signal.SIGKILL)")


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e["FGO_PLUGINS"] = "toy_suite"
    e["PYTHONPATH"] = str(TESTS) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def _killed_session(path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", KILLED, str(path)], capture_output=True, text=True, env=_env(),
                         timeout=120)
    assert out.returncode == -9, out.stderr
    assert Path(f"{path}-wal").exists()  # never checkpointed: the main file alone is an empty shell


def _folder(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_killed_session_opens_through_a_link(tmp_path, link):
    real = tmp_path / "real.db"
    _killed_session(real)
    other = tmp_path / "elsewhere"
    other.mkdir()
    via = (other if link == "symbolic" else tmp_path) / "via.db"
    if link == "symbolic":
        via.symlink_to(real)
    else:
        os.link(real, via)
    ro = queries.open_readonly(via)
    try:
        assert ro.session_info()["name"] == "killed"
        assert queries.task_counts(ro)[0] > 0
    finally:
        ro.close()
    s = Session.open(via)
    try:
        assert s.store.session_info()["name"] == "killed"
        assert s.run().status == "done"
    finally:
        s.close()
    # nothing was made beside the link: the checks, the lock and the reserve are the real file's
    assert sorted(p.name for p in other.iterdir()) == (["via.db"] if link == "symbolic" else [])
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("via.db") and p.name != "via.db"]


def _session(path: Path) -> None:
    """A session file on its own, as one copied or sent elsewhere (no lock, reserve or log beside it)."""
    made = path.parent / "made" / path.name
    made.parent.mkdir()
    cfg = RunConfig.from_dict({"suite": "toy", "model": "fgo-sim/medium", "subsets": 2, "epochs": 1,
                               "threshold": 2})
    Session.create(made, cfg).close()
    path.write_bytes(made.read_bytes())
    assert [p.name for p in path.parent.iterdir() if p.is_file()] == [path.name]


def _flip_a_bit_in(path: Path, needle: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(needle)
    data[at + 1] ^= 0x01  # one bit of the stored config's text
    path.write_bytes(bytes(data))


def _set_config(path: Path, config: str) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute("update session set config_json = ?", (config,))
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize("damage", ["flipped bit", "unreadable config", "suite not installed"])
def test_a_refused_session_file_gets_nothing_new_beside_it(tmp_path, damage):
    path = tmp_path / "s.db"
    _session(path)
    if damage == "flipped bit":
        _flip_a_bit_in(path, b'"threshold"')  # "threshold": an unknown setting
    elif damage == "unreadable config":
        _set_config(path, '["not", "a", "config"]')
    else:
        _set_config(path, '{"suite": "no-such-suite", "model": "fgo-sim/medium"}')
    before = _folder(tmp_path)
    with pytest.raises(FGOError):
        Session.open(path)
    assert _folder(tmp_path) == before
    assert main(["resume", str(path), "--headless"]) == 2
    assert _folder(tmp_path) == before


def test_a_refused_store_open_gets_nothing_new_beside_it(tmp_path):
    path = tmp_path / "s.db"
    _session(path)
    data = bytearray(path.read_bytes())
    data[70] ^= 0x10  # the application id: not a session of ours
    path.write_bytes(bytes(data))
    before = _folder(tmp_path)
    with pytest.raises(FGOError):
        Store.open(path)
    assert _folder(tmp_path) == before


def test_a_task_file_with_an_escaped_surrogate_leaves_no_file(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    lines = [f'{{"id": "t{i}", "input": "{i}+1", "expected": "{i + 1}"}}' for i in range(12)]
    lines.append('{"id": "bad", "input": "x \\ud800", "expected": "y"}')
    tasks.write_text("\n".join(lines) + "\n")
    before = _folder(tmp_path)
    assert main(["run", "--tasks", str(tasks), "--headless", "--model", "fgo-sim/medium", "--subsets", "2",
                 "--epochs", "1", "--session", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'bad'" in err[0] and "surrogate" in err[0], err
    assert _folder(tmp_path) == before
