"""Optimize the instruction of your own tool-using agent with FGO.

The agent below is ordinary user code: a system prompt (the module FGO optimizes), two small
tools (a price list and a currency converter) and a function-calling loop. The scorer checks
the final number. Run it with any provider litellm knows, or a server on this machine:

    python examples/tool_agent/optimize_tool_agent.py --model openai/gpt-4o-mini
    python examples/tool_agent/optimize_tool_agent.py --model openai/local --api-base http://127.0.0.1:8080/v1

Every call the agent makes goes through FGO's gateway (ledger, cache, budgets): run it again
with the same --session and it resumes, paying nothing twice; `fgo` opens the session.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import fgo_engine

PRICES_USD = {"lamp": 40.0, "kettle": 25.0, "chair": 60.0, "rug": 120.0, "clock": 35.0, "mirror": 80.0}
RATES = {"USD": 1.0, "EUR": 0.9, "GBP": 0.8, "JPY": 150.0}

TOOLS = [
    {"type": "function", "function": {
        "name": "price_in_usd", "description": "The shop's price of an item, in US dollars.",
        "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}}},
    {"type": "function", "function": {
        "name": "convert", "description": "Convert an amount of US dollars to another currency.",
        "parameters": {"type": "object", "properties": {"amount_usd": {"type": "number"},
                                                       "currency": {"type": "string"}},
                       "required": ["amount_usd", "currency"]}}},
]


def price_in_usd(item: str) -> str:
    price = PRICES_USD.get(item.strip().lower())
    return f"{price:.2f}" if price is not None else f"error: no item {item!r}; items: {', '.join(PRICES_USD)}"


def convert(amount_usd: float, currency: str) -> str:
    rate = RATES.get(currency.strip().upper())
    return f"{float(amount_usd) * rate:.2f}" if rate is not None else f"error: no currency {currency!r}"


def run_tool(name: str, arguments: str) -> str:
    try:
        args = json.loads(arguments or "{}")
        if name == "price_in_usd":
            return price_in_usd(**args)
        if name == "convert":
            return convert(**args)
        return f"error: no tool {name!r}"
    except (TypeError, ValueError) as exc:  # the model's bad arguments are its mistake, shown to it
        return f"error: {exc}"


def agent(module: str, task: dict, llm) -> str:
    """The user's agent: call tools until the model answers in text (at most 6 turns)."""
    messages = [{"role": "system", "content": module}, {"role": "user", "content": task["input"]}]
    for _ in range(6):
        reply = llm(messages, tools=TOOLS)
        if not reply.tool_calls:
            return reply.text
        messages.append(reply.assistant_message())
        for call in reply.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": run_tool(call["name"],
                                                                                          call["arguments"])})
    return ""


def scorer(answer: str, task: dict) -> float:
    """1 when the last number in the answer is within 1% of the expected amount."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?", answer.replace(",", ""))
    if not numbers:
        return 0.0
    want = float(task["expected"])
    return 1.0 if abs(float(numbers[-1]) - want) <= 0.01 * abs(want) else 0.0


def tasks() -> list[dict]:
    out = []
    for i, (item, currency) in enumerate((i, c) for c in RATES for i in PRICES_USD):
        out.append({"id": f"{item}-{currency}", "input": f"How much does the {item} cost in {currency}?",
                    "expected": f"{PRICES_USD[item] * RATES[currency]:.2f}", "category": currency,
                    "split": "test" if i % 4 == 3 else "train"})
    return out


START = "You are a shop assistant. Answer the customer's question about prices."


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model for every role (a litellm name)")
    p.add_argument("--agent-model", help="another model for the agent")
    p.add_argument("--api-base", help="an OpenAI-compatible server for the models (a local one, say)")
    p.add_argument("--session", default="sessions/tool-agent.db")
    p.add_argument("--subsets", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args(argv)
    models = {"agent": a.agent_model} if a.agent_model else None
    result = fgo_engine.optimize(tasks(), agent, scorer, instruction=START, model=a.model, models=models,
                                 api_base=a.api_base, subsets=a.subsets, epochs=a.epochs, session=Path(a.session),
                                 describe="A shop assistant that answers price questions with two tools: "
                                          "price_in_usd(item) and convert(amount_usd, currency).",
                                 calls_per_task=3)
    print(f"status: {result.status}")
    print(f"test score: {'—' if result.test_score is None else f'{result.test_score:.3f}'}")
    print(f"session: {result.session}")
    print("optimized instruction:" if result.module else result.message)
    if result.module:
        print(result.module)
    return 0 if result.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
