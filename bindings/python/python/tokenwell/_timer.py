"""The idle timer: wakes each account at its engine's ``next_wakeup()``, so
refresh-ahead, retries and outage grace happen while no caller is active.

One daemon thread serves every account in the process: it never keeps the
process alive, and it holds accounts weakly, so an account nobody references
is no longer woken. Each ``schedule`` returns a ticket; the account ignores a
wake whose ticket is not its latest (re-arming or ``close()`` cancel that
way, without touching the heap). After ``fork`` the child starts its own
thread at the first ``schedule``; entries copied from the parent stay.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import weakref
from typing import Any, List, Optional, Protocol, Tuple

__all__ = ["Wakeable", "schedule"]

log = logging.getLogger("tokenwell")


class Wakeable(Protocol):
    def _on_idle_timer(self, ticket: int) -> None: ...


class _Scheduler:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[Tuple[float, int, "weakref.ref[Any]"]] = []
        self._tickets = itertools.count(1)
        self._thread: Optional[threading.Thread] = None

    def after_fork_in_child(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._thread = None

    def schedule(self, target: Wakeable, delay: float) -> int:
        with self._cond:
            ticket = next(self._tickets)
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), ticket, weakref.ref(target)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tokenwell-idle-timer", daemon=True)
                self._thread.start()
            self._cond.notify()
        return ticket

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, ticket, ref = heapq.heappop(self._heap)
                        break
                    cond.wait(self._heap[0][0] - now if self._heap else None)
            target = ref()
            if target is None:
                continue
            try:
                target._on_idle_timer(ticket)
            except Exception:  # one account's failure must not stop the others' timers
                log.exception("tokenwell: the idle timer's wakeup failed")
            del target


_SCHEDULER = _Scheduler()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SCHEDULER.after_fork_in_child)


def schedule(target: Wakeable, delay: float) -> int:
    """Wakes ``target._on_idle_timer(ticket)`` after ``delay`` seconds; returns the ticket."""
    return _SCHEDULER.schedule(target, delay)
