"""FGO engine: divide, optimize, merge — headless, no Textual import.

Importing the package applies offline-safe environment defaults *before* litellm
is ever imported (litellm itself is imported lazily, inside the gateway).
"""
from __future__ import annotations

from fgo_engine import _env

_env.apply_defaults()

__version__ = "0.1.0"
