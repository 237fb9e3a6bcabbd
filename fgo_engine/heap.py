"""Heavy imports: keep the cyclic garbage collector from stopping every thread while they
run, and run them ahead of need on a thread of their own.

``import litellm`` creates ~330,000 long-lived objects (module functions, pydantic models,
type unions) and scikit-learn another ~70,000. While they are being created the collector's
full collections run again and again over the growing heap, each one holding the interpreter
lock for up to half a second: measured in ``benchmarks/tui_stream.py``, 13 full collections
took 3.4 s of a 12 s run and stalled the app's screen for as long (event-to-screen p95
589 ms). Inside :func:`quiet_gc` nothing is collected; when the last such section ends, every
object alive is moved to the permanent generation (``gc.freeze``), so later collections scan
only what the run itself creates.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_reenable = False


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No collections while the body runs (sections on several threads nest); freeze after."""
    global _depth, _reenable
    with _lock:
        if _depth == 0:
            _reenable = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.freeze()
                if _reenable:
                    gc.enable()


def import_in_background(name: str, load: Callable[[], None], done: threading.Event | None = None) -> None:
    """Run ``load`` (imports wanted soon) on a thread named ``name``, then set ``done``.
    Failures are left to the real import to report. Not a daemon: a daemon thread frozen
    inside an import at interpreter exit holds that module's lock, and an exit handler
    importing anything then waits for ever."""

    def run() -> None:
        try:
            load()
        except Exception:  # noqa: BLE001 - the import where it is needed reports it
            pass
        finally:
            if done is not None:
                done.set()

    threading.Thread(target=run, name=name, daemon=False).start()
