"""The gateway's HTTP path against a scripted loopback OpenAI-compatible server: real
litellm HTTP (``openai/<name>`` + ``api_base``), no mocks. Faults as servers send them:
429 with Retry-After, 500, empty choices, truncated JSON, trickled bodies, refused connections."""
from __future__ import annotations

import email.utils
import logging
import socket
import time

import pytest
from fake_openai import empty_choices, ok, status, trickle, truncated

from fgo_engine.config import ROLES, RoleConfig, RunConfig
from fgo_engine.errors import LLMError
from fgo_engine.llm.gateway import Gateway
from fgo_engine.persistence.store import Store
from fgo_engine.types import Scope

MSGS = [{"role": "user", "content": "Say hello."}]


def gateway(url, *, store=None, retries=4, max_retry_after=60.0, **role):
    sleeps: list[float] = []
    rc = RoleConfig(model="openai/fake", api_base=url, **role)
    g = Gateway({r: rc for r in ROLES}, store=store, retries=retries, sleep=sleeps.append,
                max_retry_after=max_retry_after, use_cache=store is not None)
    return g, sleeps


def test_a_normal_reply_is_ledgered_with_the_servers_usage(fake_openai, tmp_path):
    store = Store.create(tmp_path / "s.db", name="s", config={})
    g, _ = gateway(fake_openai.url, store=store)
    fake_openai.push(ok("Answer: 7", prompt_tokens=23, completion_tokens=4))
    comp = g.complete("agent", MSGS, scope=Scope("subset", "0", "explore"))
    store.flush()
    assert comp.text == "Answer: 7" and (comp.prompt_tokens, comp.completion_tokens) == (23, 4)
    row = store.rows("ledger")[0]
    assert (row["prompt_tokens"], row["completion_tokens"], row["error"]) == (23, 4, None)
    store.close()


def test_retry_after_in_seconds_is_honoured(fake_openai):
    g, sleeps = gateway(fake_openai.url)
    fake_openai.push(status(429, headers={"Retry-After": "5"}), ok())
    assert g.complete("agent", MSGS).text == "Answer: 42"
    assert sleeps == [5.0]  # not a jittered 0.25–0.75 s backoff
    assert len(fake_openai.requests) == 2


def test_retry_after_as_an_http_date_is_honoured(fake_openai):
    g, sleeps = gateway(fake_openai.url)
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake_openai.push(status(429, headers={"Retry-After": when}), ok())
    g.complete("agent", MSGS)
    assert len(sleeps) == 1 and 27.0 <= sleeps[0] <= 31.0


def test_retry_after_is_capped_by_the_setting(fake_openai):
    g, sleeps = gateway(fake_openai.url, max_retry_after=12.0)
    fake_openai.push(status(429, headers={"Retry-After": "3600"}), ok())
    g.complete("agent", MSGS)
    assert sleeps == [12.0]
    assert RunConfig().max_retry_after == 60.0


def test_server_errors_and_truncated_json_are_retried(fake_openai):
    g, sleeps = gateway(fake_openai.url)
    fake_openai.push(status(500), truncated(), ok("Answer: fine"))
    assert g.complete("agent", MSGS).text == "Answer: fine"
    assert len(sleeps) == 2 and g.total.errors == 2


def test_empty_choices_is_a_retried_malformed_reply_ledgered_with_its_usage(fake_openai, tmp_path):
    store = Store.create(tmp_path / "s.db", name="s", config={})
    g, sleeps = gateway(fake_openai.url, store=store)
    fake_openai.push(empty_choices(prompt_tokens=17, completion_tokens=5), ok("Answer: 42"))
    comp = g.complete("evaluator", MSGS)
    store.flush()
    assert comp.text == "Answer: 42" and len(sleeps) == 1
    bad, good = store.rows("ledger", order_by="id")
    assert "no choices" in bad["error"] and (bad["prompt_tokens"], bad["completion_tokens"]) == (17, 5)
    assert good["error"] is None
    assert g.total.prompt_tokens == 17 + 11  # what the server reported is counted as spent
    store.close()


def test_the_role_timeout_is_a_total_deadline_and_not_retried_on_a_local_server(fake_openai):
    g, sleeps = gateway(fake_openai.url, timeout=3.0)
    fake_openai.push(trickle(seconds=16.0))  # every read is quick; the whole body takes 16 s
    start = time.monotonic()
    with pytest.raises(LLMError) as info:
        g.complete("optimizer", MSGS)
    elapsed = time.monotonic() - start
    assert 3.0 <= elapsed < 10.0
    msg = str(info.value)
    assert "Timeout" in msg and "3 s" in msg and "\n" not in msg
    assert len(fake_openai.requests) == 1 and sleeps == []  # loopback: a timeout is not retried


def test_timeouts_are_retried_when_asked(fake_openai):
    g, sleeps = gateway(fake_openai.url, timeout=1.0, retry_timeouts=True, max_concurrency=2)
    fake_openai.push(trickle(seconds=16.0), ok("Answer: late"))
    assert g.complete("agent", MSGS).text == "Answer: late"
    assert len(sleeps) == 1 and len(fake_openai.requests) == 2


def test_error_message_is_one_line_and_the_full_text_goes_to_the_log(fake_openai, caplog):
    long = "upstream exploded\n" + "traceback line\n" * 40
    g, _ = gateway(fake_openai.url, retries=1)
    fake_openai.push(status(500, message=long), status(500, message=long))
    with caplog.at_level(logging.WARNING, logger="fgo.llm.gateway"), pytest.raises(LLMError) as info:
        g.complete("merger", MSGS)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 300
    assert "openai/fake (merger)" in msg and "HTTP 500" in msg and "fgo resume" in msg
    assert "after 2 tries" in msg
    assert any("traceback line traceback line" in " ".join(r.getMessage().split()) for r in caplog.records
               if r.name == "fgo.llm.gateway")


def test_a_refused_connection_names_the_url_and_says_to_check_the_server():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    s.close()  # nothing listens there now
    g, sleeps = gateway(url, retries=2)
    with pytest.raises(LLMError) as info:
        g.complete("agent", MSGS)
    msg = str(info.value)
    assert url in msg and "check that the server is running" in msg and "\n" not in msg
    assert len(sleeps) == 2  # connection errors are still retried


def test_retry_sample_temperature_is_sent_and_keyed(fake_openai):
    g, _ = gateway(fake_openai.url, store=None)
    g.complete("optimizer", MSGS, sample=1, temperature=0.4)
    body = fake_openai.bodies()[-1]
    assert body["temperature"] == 0.4 and body["seed"] == 1
    rc = g.roles["optimizer"]
    assert Gateway.cache_key(rc, MSGS, 0, None) != Gateway.cache_key(rc, MSGS, 1, None)
