"""A loopback OpenAI-compatible server, scripted per request, for the HTTP path's faults.

Tests drive real litellm HTTP through the gateway (model ``openai/<name>``, ``api_base`` =
:attr:`FakeOpenAI.url`) and script what each request gets back: a normal reply with usage,
an HTTP error with headers (429 + Retry-After, 500), a reply with empty ``choices``, a
truncated JSON body, or a body trickled out slowly. Standard library only; port 0.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response. ``kind``: ok | status | empty_choices | truncated | trickle."""

    kind: str = "ok"
    text: str = "Answer: 42"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 11
    completion_tokens: int = 3
    seconds: float = 0.0  # trickle: how long the body takes to arrive
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"name", "arguments": dict}


def tool_call(name: str, arguments: dict[str, Any], *, text: str = "") -> Reply:
    """A reply that asks for one function call (``finish_reason`` ``tool_calls``)."""
    return Reply("ok", text, finish_reason="tool_calls", tool_calls=[{"name": name, "arguments": arguments}])


def ok(text: str = "Answer: 42", *, prompt_tokens: int = 11, completion_tokens: int = 3,
       finish_reason: str = "stop") -> Reply:
    return Reply("ok", text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 finish_reason=finish_reason)


def status(code: int, *, headers: dict[str, str] | None = None, message: str = "scripted error") -> Reply:
    return Reply("status", message, status=code, headers=headers or {})


def empty_choices(*, prompt_tokens: int = 11, completion_tokens: int = 0) -> Reply:
    return Reply("empty_choices", "", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def truncated(text: str = "Answer: 42") -> Reply:
    return Reply("truncated", text)


def trickle(text: str = "Answer: 42", *, seconds: float = 16.0) -> Reply:
    return Reply("trickle", text, seconds=seconds)


def _completion_body(r: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": r.text}
    if r.tool_calls:
        message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                  "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                                 for i, c in enumerate(r.tool_calls)]
    choices = [] if r.kind == "empty_choices" else [{
        "index": 0, "finish_reason": r.finish_reason, "message": message,
    }]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": choices,
            "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                      "total_tokens": r.prompt_tokens + r.completion_tokens}}


class FakeOpenAI:
    """``push`` replies; each POST takes the next one. When none is left, ``responder(body)``
    answers (if set), else a normal reply."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append({"path": self.path, "json": body, "at": time.monotonic()})
                    scripted = fake.script.popleft() if fake.script else None
                reply = scripted or (fake.responder(body) if fake.responder else ok())
                try:
                    fake._respond(self, reply, body.get("model", "fake"))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a deadline): that is the point of some tests

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r["json"] for r in self.requests]

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def _respond(self, h: BaseHTTPRequestHandler, r: Reply, model: str) -> None:
        if r.kind == "status":
            data = json.dumps({"error": {"message": r.text, "type": "scripted", "code": r.status}}).encode()
            h.send_response(r.status)
            for k, v in r.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        data = json.dumps(_completion_body(r, model)).encode()
        if r.kind == "truncated":
            data = data[: len(data) // 2]
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if r.kind != "trickle":
            h.wfile.write(data)
            h.wfile.flush()
            return
        # the body arrives a few bytes at a time over ``seconds``: no single read ever waits long
        pieces = max(1, int(r.seconds / 0.05))
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            if self.stopping.wait(r.seconds / pieces):
                return
            h.wfile.write(data[i:i + step])
            h.wfile.flush()
