"""The LLM gateway: retries, cache, ledger, context window, budgets, secrets."""
from __future__ import annotations

import threading

import pytest

from fgo_engine.config import ROLES, RoleConfig
from fgo_engine.errors import BudgetExceededError, ContextOverflowError, LLMError
from fgo_engine.llm import tokens
from fgo_engine.llm.gateway import Gateway
from fgo_engine.llm.sim import provider
from fgo_engine.persistence.store import Store
from fgo_engine.types import Budget, Scope

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


@pytest.fixture(autouse=True)
def _clean_flight():
    provider.reset_in_flight()
    yield


def gateway(model="fgo-sim/medium", **kw):
    sleeps: list[float] = []
    g = Gateway({r: RoleConfig(model=model) for r in ROLES}, sleep=sleeps.append, **kw)
    return g, sleeps


@pytest.mark.parametrize("kind", ["rate_limit", "timeout", "connection", "server"])
def test_retries_transient_errors_with_backoff(kind):
    g, sleeps = gateway(retries=4, backoff=0.5)
    g.faults.inject(kind, 2)
    comp = g.complete("agent", MSGS, scope=Scope("subset", "1", "explore"))
    assert comp.text  # the third try succeeded
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.75 and 0.5 <= sleeps[1] <= 1.5  # exponential, with jitter
    assert g.total.calls == 3 and g.total.errors == 2


def test_clear_error_after_last_try():
    g, sleeps = gateway(retries=2)
    g.faults.inject("rate_limit", 5)
    with pytest.raises(LLMError, match=r"RateLimitError after 3 tries"):
        g.complete("agent", MSGS)
    assert len(sleeps) == 2


def test_faults_are_taken_only_by_the_gateway_they_were_injected_into():
    mine, sleeps = gateway(retries=1)
    other, other_sleeps = gateway(retries=1)
    mine.faults.inject("server", 1)
    assert other.complete("agent", MSGS).text and other_sleeps == [] and other.total.errors == 0
    assert len(mine.faults) == 1  # the other gateway's call left it alone
    assert mine.complete("agent", MSGS).text and len(sleeps) == 1 and mine.total.errors == 1
    assert len(mine.faults) == 0
    with pytest.raises(ValueError, match="unknown fault 'melt'"):
        mine.faults.inject("melt")


def test_cache_hit_on_repeat_costs_nothing():
    g, _ = gateway()
    first = g.complete("agent", MSGS)
    second = g.complete("agent", MSGS)
    assert not first.cached and second.cached
    assert second.text == first.text
    assert g.total.cache_hits == 1
    assert g.total.prompt_tokens == first.prompt_tokens  # the hit added no spent tokens
    other = g.complete("agent", MSGS, sample=1)  # a different sample index is a different call
    assert not other.cached


def test_cache_can_be_bypassed():
    g, _ = gateway(use_cache=False)
    g.complete("agent", MSGS)
    assert not g.complete("agent", MSGS).cached


def test_persistent_cache_and_ledger_in_the_session(tmp_path):
    path = tmp_path / "s.db"
    store = Store.create(path, name="s", config={})
    g, _ = gateway(store=store)
    first = g.complete("optimizer", MSGS, scope=Scope("subset", "2", "optimize"))
    store.close()
    store = Store.open(path)
    g2, _ = gateway(store=store)
    assert g2.total.prompt_tokens == first.prompt_tokens  # totals rebuilt from the ledger
    again = g2.complete("optimizer", MSGS, scope=Scope("subset", "2", "optimize"))
    assert again.cached and again.text == first.text
    store.flush()
    rows = store.rows("ledger", order_by="id")
    assert [r["cache_hit"] for r in rows] == [0, 1]
    assert rows[0]["role"] == "optimizer" and rows[0]["scope_kind"] == "subset" and rows[0]["scope_id"] == "2"
    assert rows[0]["prompt_tokens"] == first.prompt_tokens > 0
    store.close()


def test_ledger_totals_per_role_scope_and_phase():
    g, _ = gateway()
    a = g.complete("agent", MSGS, scope=Scope("subset", "0", "explore"))
    b = g.complete("evaluator", MSGS + [{"role": "user", "content": "x"}], scope=Scope("subset", "1", "evaluate"))
    snap = g.totals_snapshot()
    assert snap["by_role"]["agent"]["prompt_tokens"] == a.prompt_tokens
    assert snap["by_role"]["evaluator"]["prompt_tokens"] == b.prompt_tokens
    assert snap["by_scope"]["subset:1"]["calls"] == 1
    assert snap["by_phase"]["explore"]["completion_tokens"] == a.completion_tokens
    assert snap["total"]["prompt_tokens"] == a.prompt_tokens + b.prompt_tokens


def test_usage_is_counted_with_tiktoken_on_the_real_messages():
    g, _ = gateway()
    comp = g.complete("agent", MSGS)
    assert comp.prompt_tokens == tokens.count_messages(MSGS)
    assert comp.completion_tokens == tokens.count_text(comp.text)


def test_context_window_checked_before_the_call():
    g, _ = gateway(model="fgo-sim/small:window=200")
    long = [{"role": "user", "content": "word " * 500}]
    with pytest.raises(ContextOverflowError) as info:
        g.complete("optimizer", long)
    assert info.value.window == 200 and info.value.prompt_tokens > 200
    assert g.total.errors == 1


def test_budget_stops_cleanly():
    g, _ = gateway(budget=Budget(total_tokens=30))
    g.complete("agent", MSGS)
    g.complete("agent", MSGS + [{"role": "user", "content": "more please"}])
    with pytest.raises(BudgetExceededError, match="token budget reached"):
        g.complete("agent", MSGS + [{"role": "user", "content": "and more"}])
    assert g.complete("agent", MSGS).cached  # cached answers still flow past the budget


def test_per_model_concurrency_limit():
    roles = {r: RoleConfig(model="fgo-sim/medium:latency=0.05", max_concurrency=2) for r in ROLES}
    g = Gateway(roles, use_cache=False)
    threads = [threading.Thread(target=g.complete, args=("agent", [{"role": "user", "content": f"q{i}"}]))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert provider.max_in_flight == 2


def test_simulated_calls_take_cpu_turns_but_wait_out_latency_without_one(monkeypatch):
    """At most CPU_TURNS threads run simulated calls' Python code at once, so a hundred
    rollout threads do not crowd the app's UI thread off the interpreter lock; the emulated
    latency is waited without a turn, so slow calls still overlap as on a real server."""
    held: list[bool] = []
    real_reply = provider._reply

    def reply(*a, **kw):
        held.append(getattr(provider._turn, "held", False))
        return real_reply(*a, **kw)

    sleepers = threading.Barrier(provider.CPU_TURNS + 1)  # only passable if no sleeper holds a turn
    monkeypatch.setattr(provider, "_reply", reply)
    monkeypatch.setattr(provider.time, "sleep", lambda s: sleepers.wait(timeout=60))
    roles = {r: RoleConfig(model="fgo-sim/medium:latency=0.05", max_concurrency=8) for r in ROLES}
    g = Gateway(roles, use_cache=False)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            g.complete("agent", [{"role": "user", "content": f"q{i}"}])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(provider.CPU_TURNS + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors  # a broken barrier: the sleepers could not all wait at once
    assert held == [True] * len(threads)
    assert provider._turns.acquire(blocking=False)  # every turn was given back
    provider._turns.release()


def test_real_provider_path_with_litellm_mock_response():
    rc = RoleConfig(model="openai/gpt-4o-mini", params={"mock_response": "Answer: 42"})
    g = Gateway({r: rc for r in ROLES})
    comp = g.complete("agent", MSGS)
    assert comp.text == "Answer: 42" and comp.prompt_tokens > 0
    assert g.window("openai/gpt-4o-mini") == 128000


def test_auth_error_is_not_retried_and_key_is_redacted():
    import litellm

    secret = "sk-test-SECRET-1234567890"
    err = litellm.AuthenticationError(f"Incorrect API key provided: {secret}", llm_provider="openai",
                                      model="gpt-4o-mini")
    rc = RoleConfig(model="openai/gpt-4o-mini", api_key=secret, params={"mock_response": err})
    sleeps: list[float] = []
    g = Gateway({r: rc for r in ROLES}, sleep=sleeps.append)
    with pytest.raises(LLMError) as info:
        g.complete("agent", MSGS)
    assert secret not in str(info.value) and "AuthenticationError" in str(info.value)
    assert sleeps == []


def test_credentials_reported_as_server_error_are_not_retried():
    import litellm

    err = litellm.InternalServerError("OpenAIException - Missing credentials. Please pass an `api_key`",
                                      llm_provider="openai", model="gpt-4o-mini")
    rc = RoleConfig(model="openai/gpt-4o-mini", params={"mock_response": err})
    sleeps: list[float] = []
    g = Gateway({r: rc for r in ROLES}, sleep=sleeps.append)
    with pytest.raises(LLMError, match="credentials problem"):
        g.complete("agent", MSGS)
    assert sleeps == []


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    rc = RoleConfig(model="openai/gpt-4o-mini", api_key_env="NO_SUCH_KEY_VAR", params={"mock_response": "x"})
    with pytest.raises(LLMError, match="NO_SUCH_KEY_VAR is not set"):
        Gateway({r: rc for r in ROLES}).complete("agent", MSGS)


def test_identical_concurrent_requests_are_paid_once():
    roles = {r: RoleConfig(model="fgo-sim/medium:latency=0.05") for r in ROLES}
    g = Gateway(roles)
    results = []
    threads = [threading.Thread(target=lambda: results.append(g.complete("agent", MSGS))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len({r.text for r in results}) == 1
    assert sum(not r.cached for r in results) == 1 and g.total.cache_hits == 5


@pytest.mark.parametrize("text", ["", "Say hello.", "  \n\t  " * 50, "naïve café — 日本語のテキスト 🙂🙂", "x" * 5000,
                                  "ab" * 3000 + " ".join(str(i) for i in range(500))])
@pytest.mark.parametrize("model", ["fgo-sim/medium", "gpt-4o"])
def test_token_upper_bound_never_below_the_count(text, model):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text},
            {"role": "assistant", "content": [{"type": "text", "text": text}],
             "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{\"q\": \"é\"}"}}]}]
    tools = [{"type": "function", "function": {"name": "f", "description": "日本"}}]
    assert tokens.upper_bound(msgs, tools) >= tokens.count_messages(msgs, model, tools)


def test_prompt_is_tokenized_once_per_call(monkeypatch):
    """The simulated provider counts the prompt (as a server would); the gateway does not
    count it again when the prompt clearly fits the window."""
    counted: list[int] = []
    real = tokens.count_messages
    monkeypatch.setattr(tokens, "count_messages", lambda *a, **k: counted.append(1) or real(*a, **k))
    g, _ = gateway()
    comp = g.complete("agent", MSGS)
    assert len(counted) == 1
    assert comp.prompt_tokens == real(MSGS)


def test_prompt_near_the_window_is_counted_and_refused():
    g, _ = gateway(model="fgo-sim/medium:window=64")
    long = [{"role": "user", "content": "word " * 200}]
    with pytest.raises(ContextOverflowError) as info:
        g.complete("agent", long)
    assert info.value.prompt_tokens == tokens.count_messages(long, "fgo-sim/medium:window=64")


def test_a_simulated_call_is_priced_free_by_the_simulator_itself():
    """litellm's wrapper takes the price the reply carries instead of searching its price map
    for a model it cannot price; the gateway books the same 0.0."""
    g, _ = gateway()
    comp = g.complete("agent", MSGS)
    assert comp.cost == 0.0 and g.total.cost == 0.0
    from fgo_engine.llm.gateway import get_litellm

    resp = get_litellm().completion(model="fgo-sim/medium", messages=MSGS)
    assert resp._hidden_params["response_cost"] == 0.0
