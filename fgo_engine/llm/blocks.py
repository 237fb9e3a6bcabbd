"""Reading tagged blocks (``<tag attr="v">…</tag>``) out of a prompt or a reply.

The method's parsers and the simulated LLM read the same tags, so the one reader lives here,
below both.
"""
from __future__ import annotations

import re
from typing import Any


def block(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}(?:\s[^>]*)?>\n?(.*?)\n?</{tag}>", text, re.S)
    return m.group(1) if m else None


def blocks(text: str, tag: str) -> list[tuple[str, str]]:
    """All ``<tag attrs>body</tag>`` as (attrs, body)."""
    return [(m.group(1) or "", m.group(2)) for m in
            re.finditer(rf"<{tag}((?:\s[^>]*)?)>\n?(.*?)\n?</{tag}>", text, re.S)]


def attrs(s: str) -> dict[str, Any]:
    return dict(re.findall(r'(\w+)="([^"]*)"', s))
