"""A user's agents and scorers, importable by name (``user_agents:toy_agent``) so that a
session made by ``fgo_engine.optimize`` can be resumed with ``fgo resume``."""
from __future__ import annotations

import json

from toy_suite import ToySuite


def toy_tasks(n_train: int = 12, n_test: int = 6, seed: int = 0) -> list[dict]:
    """The toy suite's tasks as a user would give them: dicts, with their split."""
    suite = ToySuite(seed=seed, n_train=n_train, n_test=n_test)
    out = [{"id": t.id, "input": t.input, "expected": t.expected, "category": t.category, "split": "train"}
           for t in suite.train_tasks()]
    out += [{"id": t.id, "input": t.input, "expected": t.expected, "category": t.category, "split": "test"}
            for t in suite.test_tasks()]
    return out


def toy_agent(module: str, task: dict, llm) -> str:
    """One call: the module as the system prompt, the task as the user message."""
    reply = llm([{"role": "system", "content": module}, {"role": "user", "content": task["input"]}])
    return reply.text.split("Answer:")[-1].strip()


def two_turn_agent(module: str, task: dict, llm) -> str:
    """Two calls in one conversation: a draft, then 'give the final answer'."""
    messages = [{"role": "system", "content": module}, {"role": "user", "content": task["input"]}]
    first = llm(messages)
    messages += [first.assistant_message(), {"role": "user", "content": "Give your final answer."}]
    return llm(messages).text.split("Answer:")[-1].strip()


def exact_scorer(answer: str, task: dict) -> float:
    return 1.0 if answer.strip().lower() == task["expected"].lower() else 0.0


TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look a word up.",
                                           "parameters": {"type": "object",
                                                          "properties": {"word": {"type": "string"}},
                                                          "required": ["word"]}}}]


def tool_agent(module: str, task: dict, llm) -> str:
    """A function-calling loop: call tools until the model answers in text (at most 4 turns)."""
    messages = [{"role": "system", "content": module}, {"role": "user", "content": task["input"]}]
    for _ in range(4):
        reply = llm(messages, tools=TOOLS)
        if not reply.tool_calls:
            return reply.text.split("Answer:")[-1].strip()
        messages.append(reply.assistant_message())
        for call in reply.tool_calls:
            word = json.loads(call["arguments"]).get("word", "")
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": f"{word}: a glorp thing"})
    return ""
