"""quiet_gc: no collections during heavy imports, then the survivors are frozen."""
from __future__ import annotations

import gc
import threading

from fgo_engine.heap import quiet_gc


def test_no_collection_inside_and_survivors_frozen_after():
    assert gc.isenabled()
    before = gc.get_freeze_count()
    keep = []
    with quiet_gc():
        assert not gc.isenabled()
        keep.extend([i] for i in range(5000))  # tracked objects, like a module's functions
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + 5000
    gc.unfreeze()  # leave the test process as it was


def test_sections_on_two_threads_nest():
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with quiet_gc():
            inside.set()
            release.wait(timeout=60)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(timeout=60)
    with quiet_gc():
        pass
    seen.append(gc.isenabled())  # the other thread's section is still open
    release.set()
    t.join()
    assert seen == [False] and gc.isenabled()
    gc.unfreeze()


def test_a_collector_switched_off_by_the_user_stays_off():
    gc.disable()
    try:
        with quiet_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_a_background_import_that_fails_still_says_it_is_done():
    from fgo_engine.heap import import_in_background

    done = threading.Event()

    def load() -> None:
        import fgo_no_such_module  # noqa: F401

    import_in_background("fgo-test-warm", load, done)
    assert done.wait(timeout=60)  # the failure is left to the real import; nobody waits for ever
