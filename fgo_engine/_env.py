"""The environment: the variables FGO Studio reads (each named and read here, in one place),
and the defaults that must be in place before the first ``import litellm``.

Tests read a few of their own (``FGO_TEST_LOCAL``, ``FGO_DATA_DIR``, ``FGO_LOCAL_GGUF``: see
``tests/conftest.py``); a provider's key is read from the variable a role names (``api_key_env``)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

SESSIONS_DIR = "FGO_SESSIONS_DIR"  # where new sessions go (default ./sessions)
PLUGINS = "FGO_PLUGINS"  # modules to import that register suites and skills, comma-separated
CACHE_DIR = "FGO_CACHE_DIR"  # the engine's own cache (default ~/.cache/fgo-studio)


def sessions_dir() -> Path:
    """The folder new sessions go into."""
    return Path(os.environ.get(SESSIONS_DIR) or "sessions")


def plugins() -> list[str]:
    """The plugin modules to import (``FGO_PLUGINS=mypkg.suite,other``)."""
    return [p.strip() for p in os.environ.get(PLUGINS, "").split(",") if p.strip()]


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR) or Path("~/.cache/fgo-studio").expanduser())


def _litellm_tokenizer_dir() -> str | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
    return str(path) if path.is_dir() else None


def apply_defaults() -> None:
    """Keep litellm and tiktoken off the network; a user never has to set these."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        tok = _litellm_tokenizer_dir()
        if tok:
            os.environ["TIKTOKEN_CACHE_DIR"] = tok
