"""FGO engine: divide, optimize, merge — headless, no Textual import.

Importing the package applies offline-safe environment defaults *before* litellm
is ever imported (litellm itself is imported lazily, inside the gateway).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fgo_engine import _env

_env.apply_defaults()
# A library logs; the application decides where to (Python's last-resort handler would
# print warnings on stderr, where the app draws). `fgo run -v` shows them.
logging.getLogger("fgo").addHandler(logging.NullHandler())

from fgo_engine.types import VERSION as __version__  # noqa: E402  (after the environment defaults)

if TYPE_CHECKING:
    from fgo_engine.run.api import OptimizeResult, optimize

__all__ = ["OptimizeResult", "optimize", "__version__"]


def __getattr__(name: str) -> Any:
    # The Python API, imported on first use: `import fgo_engine` stays light (no litellm, no sqlite_utils).
    if name in ("optimize", "OptimizeResult"):
        from fgo_engine.run import api

        return getattr(api, name)
    raise AttributeError(f"module 'fgo_engine' has no attribute {name!r}")
