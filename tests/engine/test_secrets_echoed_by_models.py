"""A server that echoes the caller's key back in its error body (issue 13): the key must not
reach the ledger, the session's error, stdout/stderr, the exports or `fgo sessions show`.
Real litellm HTTP against a loopback server started by the test; the CLI runs as a real
process with the provider's default variable and no --api-key-env."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fgo_cli.main import main
from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError

KEY = "sk-echo-SECRET-9090909090909090"
HEADER_KEY = "hdr-SECRET-5151515151515151"
ROOT = Path(__file__).resolve().parents[2]


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"message": "Incorrect request. You sent these headers: "
                                                + "; ".join(f"{k}: {v}" for k, v in self.headers.items()),
                                     "type": "invalid_request_error"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _fgo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fgo_cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


def _everything_written(tmp_path: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"]


def test_an_echoed_key_is_never_written_or_printed(tmp_path, echo_server):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "a", "input": "2+2?", "expected": "4"}\n{"id": "b", "input": "3+3?", "expected": "6"}\n')
    config = tmp_path / "c.toml"
    config.write_text('[roles.agent]\nmodel = "openai/x"\n'
                      f'params = {{extra_headers = {{Authorization = "Bearer {HEADER_KEY}", X-Trace = "t1"}}}}\n')
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["OPENAI_API_KEY"] = KEY
    db = tmp_path / "s.db"
    run = _fgo("run", "--tasks", str(tasks), "--config", str(config), "--model", "openai/x", "--api-base",
               echo_server, "--subsets", "1", "--epochs", "1", "--headless", "--session", str(db), env=env)
    assert run.returncode == 1, run.stderr  # failed: the server refused every call
    shown = _fgo("sessions", "show", str(db), env=env)
    md = _fgo("export", str(db), "--format", "md", "--out", str(tmp_path / "e.md"), env=env)
    js = _fgo("export", str(db), "--format", "json", "--out", str(tmp_path / "e.json"), env=env)
    assert shown.returncode == md.returncode == js.returncode == 0
    con = sqlite3.connect(db)
    errors = [r[0] for r in con.execute("select error from ledger where error is not null")]
    session_error, config_json = con.execute("select error, config_json from session").fetchone()
    con.close()
    assert errors and "***" in errors[0]  # the echo did come back, masked
    assert session_error and "***" in session_error
    assert "t1" in config_json and "Authorization" not in config_json  # harmless headers are kept
    printed = run.stdout + run.stderr + shown.stdout + shown.stderr + md.stdout + js.stdout
    for secret in (KEY, HEADER_KEY):
        assert secret not in printed
        for name, blob in _everything_written(tmp_path):
            assert secret.encode() not in blob, name


def test_an_api_key_in_a_config_file_is_refused(tmp_path, capsys):
    with pytest.raises(ConfigError, match="api_key_env"):
        RunConfig.from_dict({"roles": {"agent": {"model": "openai/x", "api_key": "sk-in-the-file-123456"}}})
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"suite": "invoices", "roles": {"agent": {"api_key": "sk-in-the-file-123456"}}}))
    assert main(["run", "--config", str(cfg), "--headless", "--session", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fgo: error:") and "api_key_env" in err and "sk-in-the-file" not in err
    assert not (tmp_path / "s.db").exists()
