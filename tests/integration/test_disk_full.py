"""A disk that fills up mid-run: one line, exit code 1, the stop recorded, and a resume
after space is freed finishes the run. The full disk is a small tmpfs mounted in a private
mount namespace (``unshare -rm``), so nothing outside the test sees it."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

RUN = [sys.executable, "-m", "fgo_cli", "run", "--suite", "household", "--model", "fgo-sim/null", "--subsets", "2",
       "--epochs", "1", "--option", "n_train=6", "--option", "n_test=6", "--review", "auto", "--headless"]


def _in_namespace(mount: Path, size: str, script: str) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None:
        pytest.fail("this test needs util-linux's unshare (Debian: apt-get install util-linux)")
    return subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs {mount} && {script}"],
                          capture_output=True, text=True, timeout=600)


def test_a_full_disk_stops_the_run_in_one_line_records_it_and_resumes(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    db = mount / "s.db"
    py = sys.executable
    # in the namespace: run on a 700 KiB disk (256 KiB of it held in reserve; the run needs ~760 KiB),
    # read what is recorded, then make room (copy the files to a larger tmpfs) and resume there
    big = tmp_path / "big"
    big.mkdir()
    report = tmp_path / "report.txt"
    script = (
        f"{' '.join(RUN)} --session {db} > {tmp_path}/run.out 2> {tmp_path}/run.err; echo $? > {tmp_path}/rc; "
        f"{py} -c \"import sqlite3; c = sqlite3.connect('file:{db}?mode=ro', uri=True); "
        f"print(*c.execute('select status, error from session').fetchone(), sep='|')\" > {report}; "
        f"mount -t tmpfs -o size=64m tmpfs {big} && cp {mount}/s.db* {big}/ && "
        f"{py} -m fgo_cli resume {big}/s.db --headless > {tmp_path}/resume.out 2>&1; echo $? > {tmp_path}/rc2; "
        f"{py} -c \"import sqlite3; c = sqlite3.connect('{big}/s.db'); "
        f"print(c.execute('select status from session').fetchone()[0])\" >> {report}"
    )
    p = _in_namespace(mount, "700k", script)
    assert p.returncode == 0, p.stderr
    err, out = (tmp_path / "run.err").read_text(), (tmp_path / "run.out").read_text()
    assert (tmp_path / "rc").read_text().strip() == "1", err + out  # failed (README's exit-code table)
    assert "Traceback" not in err + out
    finish = [ln for ln in out.splitlines() if "finished:" in ln]
    assert len(finish) == 1 and "finished: failed" in finish[0] and "disk is full" in finish[0], out
    assert not err.strip() or (len(err.strip().splitlines()) == 1 and err.startswith("fgo: error:")), err
    status_line, final_status = report.read_text().strip().splitlines()
    status, error = status_line.split("|", 1)
    assert status == "failed" and "disk is full" in error  # the stop is recorded, with its reason
    assert (tmp_path / "rc2").read_text().strip() == "0", (tmp_path / "resume.out").read_text()
    assert final_status == "done"


def test_sessions_delete_removes_the_reserve_beside_a_session(tmp_path, capsys):
    from fgo_cli.main import main
    from fgo_engine.persistence.store import reserve_file

    db = tmp_path / "s.db"
    assert main(RUN[3:] + ["--session", str(db)]) == 0
    assert reserve_file(db).exists()
    assert main(["sessions", "delete", str(db), "--yes"]) == 0
    assert not db.exists() and not reserve_file(db).exists()
    sqlite3.connect(":memory:").close()
