"""Environment defaults that must be in place before the first ``import litellm``."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


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
