"""Optional hooks of an extension point, given their defaults in one place.

A protocol (``Suite``, ``ReviewGate``) declares its optional hooks and a base class
(``SuiteBase``, ``GateBase``) gives their defaults. Built-in implementations inherit the
base; an object written without it (a plugin suite, a test's gate) is wrapped once, where
the engine receives it, so the engine calls every hook directly.
"""
from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class _WithDefaults:
    """Forwards to the wrapped object; what it lacks comes from the defaults."""

    def __init__(self, inner: Any, defaults: Any):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_defaults", defaults)

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._inner, name)
        except AttributeError:
            return getattr(self._defaults, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def __repr__(self) -> str:
        return f"{self._inner!r} (with default hooks)"


def with_defaults(obj: T, base: type) -> T:
    """``obj`` itself when it inherits ``base``; else ``obj`` with ``base``'s defaults for what it lacks."""
    if isinstance(obj, base) or isinstance(obj, _WithDefaults):
        return obj
    return _WithDefaults(obj, base())  # type: ignore[return-value]
