"""Numbers as the app prints them ('5k', '1.2M', '12,000', '$2.50'), read back: by the
new-session form and by the command line's --budget-tokens, so both take the same text.
No Textual import (the command line uses it before any app exists)."""
from __future__ import annotations

import re
from typing import Any

SUFFIX = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_number(raw: str, *, real: bool = False) -> Any:
    """'' → None (use the default); digits → int, also as the app prints them ('5k', '1.2M',
    '12,000'); ``real`` also takes decimals ('0.50', '$2'). Anything else is passed on as text so
    the engine's validation explains what is wrong with it."""
    t = raw.strip().replace("_", "").replace(",", "").lstrip("$")
    if not t:
        return None
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*([kKmMgG]?)", t)
    if m:
        value = float(m.group(1)) * SUFFIX.get(m.group(2).lower(), 1)
        if real:
            return value
        if value == int(value):
            return int(value)
    return raw.strip()


def token_count(text: str) -> int:
    """An argparse type: '500k', '1.2M', '12,000' or '12000' → a whole number of tokens."""
    value = parse_number(text)
    if not isinstance(value, int):
        raise ValueError(text)
    return value
