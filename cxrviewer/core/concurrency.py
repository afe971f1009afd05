"""One latest-wins executor for every background job of the viewer (Qt-free).

After napari's layer slicer: work is submitted to a *lane* (a hashable key: "image", a file
path, …); a newer submission to the same lane supersedes the older one. A superseded job that
has not started is dropped from the queue; one that is running is told so through its
`Ticket` (it may look at `ticket.cancelled()` and stop early) and its result is dropped, never
delivered. Jobs of different lanes run in submission order on a small pool of daemon threads.

The result callback runs on the worker thread; a Qt user re-emits it on the GUI thread through
a queued signal (the thin bridge in ui/) and checks `is_current` once more there, because a
newer request may have been made while the result was in flight.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Ticket:
    """One submitted job: its id, its lane, and whether it has been superseded or cancelled."""

    __slots__ = ("id", "lane", "_cancelled")

    def __init__(self, job_id: int, lane: Hashable) -> None:
        self.id = job_id
        self.lane = lane
        self._cancelled = threading.Event()

    def cancelled(self) -> bool:
        """True once a newer job of the same lane was submitted, or the lane was cancelled."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def __repr__(self) -> str:
        return f"Ticket({self.id}, {self.lane!r}{', cancelled' if self.cancelled() else ''})"


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a finished, still-current job produced: a value, or the exception it raised."""

    ticket: Ticket
    value: T | None = None
    error: BaseException | None = None


@dataclass
class _Job:
    ticket: Ticket
    fn: Callable[[Ticket], Any]
    on_done: Callable[[Outcome[Any]], None] | None


class LatestWinsExecutor:
    """`submit(lane, fn)` → Ticket; `fn(ticket)` runs on a worker thread unless superseded first.

    `on_done(outcome)` (per job, else the executor's default) is called on the worker thread
    only for a job that is still current when it finishes; `on_stale(outcome)`, when given,
    receives the results that were superseded while running (e.g. to fill a cache).
    """

    def __init__(self, workers: int = 1, name: str = "cxrviewer-worker",
                 on_done: Callable[[Outcome[Any]], None] | None = None,
                 on_stale: Callable[[Outcome[Any]], None] | None = None,
                 thread_setup: Callable[[], None] | None = None) -> None:
        self._workers = max(int(workers), 1)
        self._name = name
        self._on_done = on_done
        self._on_stale = on_stale
        self._thread_setup = thread_setup
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._queue: OrderedDict[Hashable, _Job] = OrderedDict()   # lane → its one pending job
        self._latest: dict[Hashable, Ticket] = {}                   # lane → newest ticket
        self._running = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- submitting -------------------------------------------------------------------------
    def submit(self, lane: Hashable, fn: Callable[[Ticket], T],
               on_done: Callable[[Outcome[T]], None] | None = None) -> Ticket:
        """Queue `fn` on `lane`, superseding that lane's pending and running jobs."""
        with self._cond:
            if self._stopping:
                raise RuntimeError(f"{self._name}: the executor has been shut down")
            ticket = Ticket(next(self._ids), lane)
            previous = self._latest.get(lane)
            if previous is not None:
                previous.cancel()
            self._queue.pop(lane, None)
            self._queue[lane] = _Job(ticket, fn, on_done)
            self._latest[lane] = ticket
            self._start_threads_locked()
            self._cond.notify()
        return ticket

    def is_current(self, ticket: Ticket) -> bool:
        """True while `ticket` is its lane's newest job and has not been cancelled."""
        with self._cond:
            return self._latest.get(ticket.lane) is ticket and not ticket.cancelled()

    def cancel(self, lane: Hashable) -> None:
        """Supersede the lane's pending and running job (nothing of it will be delivered)."""
        with self._cond:
            self._queue.pop(lane, None)
            ticket = self._latest.pop(lane, None)
        if ticket is not None:
            ticket.cancel()

    def cancel_all(self) -> None:
        with self._cond:
            self._queue.clear()
            tickets = list(self._latest.values())
            self._latest.clear()
        for ticket in tickets:
            ticket.cancel()

    def pending(self) -> int:
        """Jobs queued and not yet started."""
        with self._cond:
            return len(self._queue)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until nothing is queued or running; False when `timeout_s` passed first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def shutdown(self, wait_s: float = 10.0) -> bool:
        """Cancel everything and stop the threads; True when they all ended within `wait_s`."""
        self.cancel_all()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + wait_s
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        return not any(thread.is_alive() for thread in threads)

    # -- workers ----------------------------------------------------------------------------
    def _start_threads_locked(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self._workers and len(self._threads) < len(self._queue) + self._running:
            thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads) + 1}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            _, job = self._queue.popitem(last=False)
            self._running += 1
            return job

    def _work(self) -> None:
        if self._thread_setup is not None:
            try:
                self._thread_setup()
            except Exception:  # noqa: BLE001 - e.g. a priority the OS refuses: run anyway
                log.debug("thread setup of %s failed", self._name, exc_info=True)
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _run(self, job: _Job) -> None:
        ticket = job.ticket
        if ticket.cancelled():
            return
        try:
            outcome: Outcome[Any] = Outcome(ticket, value=job.fn(ticket))
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller, never lost in a thread
            if not isinstance(exc, Exception):
                raise
            log.debug("job %r raised", ticket, exc_info=True)
            outcome = Outcome(ticket, error=exc)
        callback = job.on_done or self._on_done
        if self.is_current(ticket):
            if callback is not None:
                self._call(callback, outcome)
        elif self._on_stale is not None:
            self._call(self._on_stale, outcome)

    def _call(self, callback: Callable[[Outcome[Any]], None], outcome: Outcome[Any]) -> None:
        try:
            callback(outcome)
        except Exception:  # noqa: BLE001 - a broken callback must not kill the worker thread
            log.exception("result callback of %s failed", self._name)
