"""``from fgo_engine.dspy import FGO``: FGO as a DSPy optimizer (the optional ``dspy`` extra).

See :mod:`fgo_engine.run.dspy_fgo`; DSPy itself is imported when ``compile`` runs.
"""
from __future__ import annotations

from fgo_engine.run.dspy_fgo import FGO, parse_module, render_module

__all__ = ["FGO", "parse_module", "render_module"]
