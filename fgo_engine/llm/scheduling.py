"""Fair sharing of limited slots among scopes (subsets, merge nodes, a baseline's loop).

A FIFO semaphore hands every slot to whoever asked first, so one subset that submits a
whole batch at once holds every slot while the others wait at zero progress. Here a free
slot goes to the waiting scope that holds the fewest slots (ties: the one served longest
ago), so every scope with work in flight keeps making progress. ``FairSlots`` limits calls
per model in the gateway; ``FairPool`` runs the task workers on the same rule.
"""
from __future__ import annotations

import itertools
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

QueueListener = Callable[[Hashable, bool, int, int], None]  # (scope key, queued?, slots busy, capacity)


class _Share:
    """Book-keeping shared by both: who holds how many, who waits, who was served when."""

    def __init__(self, capacity: int, fair: bool, on_queue: QueueListener | None):
        self.capacity = max(1, capacity)
        self.fair = fair
        self.on_queue = on_queue
        self.cond = threading.Condition()
        self.in_use: dict[Hashable, int] = defaultdict(int)
        self.waiting: dict[Hashable, int] = defaultdict(int)
        self.last: dict[Hashable, int] = {}
        self.queued: set[Hashable] = set()
        self.tick = itertools.count()
        self.busy = 0

    def next_key(self, candidates: list[Hashable]) -> Hashable:
        if not self.fair:
            return candidates[0]
        return min(candidates, key=lambda k: (self.in_use[k], self.last.get(k, -1)))

    def take(self, key: Hashable) -> None:
        self.busy += 1
        self.in_use[key] += 1
        self.last[key] = next(self.tick)

    def give_back(self, key: Hashable) -> None:
        self.busy -= 1
        self.in_use[key] -= 1
        if not self.in_use[key]:
            del self.in_use[key]

    def changes(self, key: Hashable) -> list[tuple[Hashable, bool, int]]:
        """A scope is *queued* while it waits and holds nothing; report transitions (with the
        slots busy at that moment)."""
        now_queued = self.waiting.get(key, 0) > 0 and not self.in_use.get(key, 0)
        if now_queued and key not in self.queued:
            self.queued.add(key)
            # a slot free at this moment is being handed to another waiter (the fairest one): busy
            return [(key, True, min(self.capacity, self.busy + 1))]
        if not now_queued and key in self.queued:
            self.queued.discard(key)
            return [(key, False, self.busy)]
        return []

    def tell(self, changes: list[tuple[Hashable, bool, int]]) -> None:
        if self.on_queue is not None:
            for key, queued, busy in changes:
                self.on_queue(key, queued, busy, self.capacity)


class FairSlots:
    """At most ``capacity`` holders at once; a freed slot goes to the fairest waiter."""

    def __init__(self, capacity: int, *, fair: bool = True, on_queue: QueueListener | None = None):
        self._s = _Share(capacity, fair, on_queue)
        self._order: deque[tuple[Hashable, int]] = deque()  # arrival order, for ties and FIFO
        self._ids = itertools.count()

    @property
    def capacity(self) -> int:
        return self._s.capacity

    def acquire(self, key: Hashable) -> None:
        s = self._s
        changes: list[tuple[Hashable, bool, int]] = []
        with s.cond:
            if s.busy < s.capacity and not self._order:
                s.take(key)
            else:
                me = (key, next(self._ids))
                self._order.append(me)
                s.waiting[key] += 1
                changes += s.changes(key)
                s.cond.release()
                try:
                    s.tell(changes)
                finally:
                    s.cond.acquire()
                changes = []
                while not (s.busy < s.capacity and self._chosen() == me):
                    s.cond.wait()
                self._order.remove(me)
                s.waiting[key] -= 1
                s.take(key)
                changes += s.changes(key)
                s.cond.notify_all()  # the next waiter may fit too
        s.tell(changes)

    def _chosen(self) -> tuple[Hashable, int]:
        keys = list(dict.fromkeys(k for k, _ in self._order))
        key = self._s.next_key(keys)
        return next(item for item in self._order if item[0] == key)

    def release(self, key: Hashable) -> None:
        s = self._s
        with s.cond:
            s.give_back(key)
            changes = s.changes(key)
            s.cond.notify_all()
        s.tell(changes)

    def hold(self, key: Hashable) -> _Held:
        return _Held(self, key)


class _Held:
    def __init__(self, slots: FairSlots, key: Hashable):
        self.slots, self.key = slots, key

    def __enter__(self) -> None:
        self.slots.acquire(self.key)

    def __exit__(self, *exc: object) -> None:
        self.slots.release(self.key)


class FairPool:
    """A thread pool whose queue is served fairly across keys instead of first in, first out."""

    def __init__(self, workers: int, *, name: str = "fgo-task", fair: bool = True):
        self._s = _Share(workers, fair, None)
        self._jobs: dict[Hashable, deque[tuple[Future, Callable[..., Any], tuple]]] = {}
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
                         for i in range(self._s.capacity)]
        for t in self._threads:
            t.start()

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        with self._s.cond:
            if self._closed:
                raise RuntimeError("pool is shut down")
            self._jobs.setdefault(key, deque()).append((fut, fn, args))
            self._s.cond.notify()
        return fut

    def _work(self) -> None:
        s = self._s
        while True:
            with s.cond:
                while not self._jobs and not self._closed:
                    s.cond.wait()
                if not self._jobs:
                    return
                key = s.next_key(list(self._jobs))
                fut, fn, args = self._jobs[key].popleft()
                if not self._jobs[key]:
                    del self._jobs[key]
                s.take(key)
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn(*args))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(exc)
            finally:
                with s.cond:
                    s.give_back(key)

    def shutdown(self, *, cancel_futures: bool = True) -> None:
        with self._s.cond:
            self._closed = True
            if cancel_futures:
                for q in self._jobs.values():
                    for fut, _, _ in q:
                        fut.cancel()
                self._jobs.clear()
            self._s.cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join()
