"""Every secret value this process knows, and one function that blanks them out of text.

Secrets are: the values of environment variables that hold credentials (every provider
variable litellm reads — ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``AWS_SECRET_ACCESS_KEY``,
… — recognised by name, plus any ``api_key_env`` a config names) and values registered
at run time (``api_key``, ``extra_headers`` such as ``Authorization``). :func:`scrub` is
applied to everything the engine writes or prints: ledger and session errors, every
string the store writes, exports, the command line's messages.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "clip", "is_secret_name", "refresh", "register", "register_role", "scrub",
           "scrub_value"]

MASK = "***"
_MIN_LEN = 6  # shorter values would blank out ordinary words
_PREFIX_LEN = 12  # a run of a key's first characters this long is the key cut short (masked too)
# The one rule for names that say a value is a credential: environment variables (litellm's
# provider variables all match: …_API_KEY, …_TOKEN, AWS_SECRET_ACCESS_KEY, HF_TOKEN, …), HTTP
# headers (Authorization, X-Api-Key, Cookie, …) and config keys (api_key, password, …).
# Names that say where something is (…_DIR, …_PATH) or which variable holds it (api_key_env) do not.
_SECRET_NAME = re.compile(r"(^|_)(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|CREDENTIALS?|AUTH[A-Z]*|COOKIE)"
                          r"(_|$)|(^|_)KEY$")
_NOT_SECRET = re.compile(r"_(DIR|PATH|SOCK|FILE|ENV)$")
# Credentials whose shape gives them away, even when this process never held them.
_SHAPES = re.compile(r"(?i:\b(bearer)\s+)(?=\S*\d)[A-Za-z0-9._~+/=-]{12,}|\bsk-[A-Za-z0-9_-]{20,}")
_registered: set[str] = set()
_env_names: set[str] = set()
_lock = threading.Lock()
_cache: list[str] | None = None  # the environment is read again after each register()


def is_secret_name(name: str) -> bool:
    """Whether a name (environment variable, HTTP header, config key) says its value is a credential."""
    norm = re.sub(r"[^A-Z0-9]+", "_", str(name).upper())
    return bool(_SECRET_NAME.search(norm)) and not _NOT_SECRET.search(norm)


def refresh() -> None:
    """Read the environment again on the next scrub (a variable was set since)."""
    global _cache
    with _lock:
        _cache = None


def register(values: Iterable[Any]) -> None:
    """Remember values to blank out from now on (keys held in memory, header values)."""
    global _cache
    with _lock:
        _cache = None
        for v in values:
            if isinstance(v, str) and len(v.strip()) >= _MIN_LEN:
                _registered.add(v.strip())
                if v.lower().startswith("bearer "):
                    _registered.add(v[7:].strip())


def register_role(rc: Any) -> None:
    """A role's secrets: its in-memory key, the variable it names, its extra headers."""
    global _cache
    if getattr(rc, "api_key_env", None):
        with _lock:
            _env_names.add(rc.api_key_env)
            _cache = None
    headers = (getattr(rc, "params", None) or {}).get("extra_headers") or {}
    register([getattr(rc, "api_key", None), *(headers.values() if isinstance(headers, dict) else [])])


def _known() -> list[str]:
    global _cache
    with _lock:
        if _cache is not None:
            return _cache
        found = set(_registered)
        names = set(_env_names)
    for name, value in os.environ.items():
        if (name in names or is_secret_name(name)) and len(value.strip()) >= _MIN_LEN:
            found.add(value.strip())
    known = sorted(found, key=len, reverse=True)  # longest first: a key inside a longer one
    with _lock:
        _cache = known
    return known


def scrub(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``, a known key's first
    characters cut short by someone else too, and anything shaped like a credential
    (``Bearer …``, ``sk-…``)."""
    if not isinstance(text, str) or not text:
        return text
    for secret in _known():
        if secret in text:
            text = text.replace(secret, MASK)
        if len(secret) > _PREFIX_LEN and secret[:_PREFIX_LEN] in text:
            text = _mask_prefixes(text, secret)
    return _SHAPES.sub(_mask_shape, text)


def _mask_shape(m: re.Match[str]) -> str:
    return (m.group(1) + " " + MASK) if m.group(1) else MASK


def _mask_prefixes(text: str, secret: str) -> str:
    out, i = [], 0
    while (j := text.find(secret[:_PREFIX_LEN], i)) >= 0:
        k = _PREFIX_LEN
        while k < len(secret) and j + k < len(text) and text[j + k] == secret[k]:
            k += 1
        out += [text[i:j], MASK]
        i = j + k
    return "".join(out) + text[i:]


def clip(text: str, limit: int, *, keep: str = "head", mark: str = "…") -> str:
    """``text`` masked, then cut to about ``limit`` characters (``keep``: head, tail or both
    ends). Masking first means a cut never leaves half a key behind."""
    text = scrub(text)
    if len(text) <= limit:
        return text
    if keep == "tail":
        return mark + text[len(text) - limit:]
    if keep == "both":
        half = limit // 2
        return text[:half] + mark + text[len(text) - half:]
    return text[:limit] + mark


def scrub_value(value: Any) -> Any:
    """Scrub strings inside JSON-like data (dicts, lists)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    return value


def storable(text: str) -> str:
    """``text`` with any lone surrogate (``"bad\\udcff"``: JSON and Python allow it, no
    UTF-8 store, pipe or terminal takes it) written as its backslash escape, so that a
    model's or a tool's text is stored and shown as it came instead of ending the run."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
