"""FGO engine: divide, optimize, merge — headless, no Textual import.

Importing the package applies offline-safe environment defaults *before* litellm
is ever imported (litellm itself is imported lazily, inside the gateway).
"""
from __future__ import annotations

import logging

from fgo_engine import _env

_env.apply_defaults()
# A library logs; the application decides where to (Python's last-resort handler would
# print warnings on stderr, where the app draws). `fgo run -v` shows them.
logging.getLogger("fgo").addHandler(logging.NullHandler())

__version__ = "0.1.0"
