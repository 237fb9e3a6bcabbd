"""Offline token counting with tiktoken (encodings shipped inside litellm's wheel)."""
from __future__ import annotations

import functools
import json
from typing import Any

from fgo_engine import _env  # noqa: F401  (the package's import sets TIKTOKEN_CACHE_DIR before tiktoken loads)


@functools.lru_cache(maxsize=4)
def _encoding(name: str):
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> str:
    m = model.lower()
    if any(tag in m for tag in ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")):
        return "o200k_base"
    return "cl100k_base"


def count_text(text: str, model: str = "") -> int:
    if not text:
        return 0
    return len(_encoding(encoding_for(model)).encode_ordinary(text))


def count_messages(messages: list[dict[str, Any]], model: str = "", tools: list | None = None) -> int:
    """Approximate chat prompt tokens: content + a few tokens of framing per message."""
    total = 3
    for m in messages:
        total += 4
        content = m.get("content")
        if isinstance(content, str):
            total += count_text(content, model)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += count_text(part["text"], model)
        if m.get("tool_calls"):
            total += count_text(json.dumps(m["tool_calls"]), model)
    if tools:
        total += count_text(json.dumps(tools), model)
    return total


def upper_bound(messages: list[dict[str, Any]], tools: list | None = None) -> int:
    """A bound that :func:`count_messages` never exceeds, without tokenizing: every token of
    a byte-level BPE encoding covers at least one UTF-8 byte, plus the same framing."""
    total = 3
    for m in messages:
        total += 4
        content = m.get("content")
        if isinstance(content, str):
            total += len(content.encode("utf-8"))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"].encode("utf-8"))
        if m.get("tool_calls"):
            total += len(json.dumps(m["tool_calls"]).encode("utf-8"))
    if tools:
        total += len(json.dumps(tools).encode("utf-8"))
    return total
