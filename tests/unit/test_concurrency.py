"""core/concurrency.py: the one latest-wins executor (no Qt)."""
from __future__ import annotations

import threading

import pytest

from cxrviewer.core.concurrency import LatestWinsExecutor, Outcome, Ticket


@pytest.fixture
def executor():
    made: list[LatestWinsExecutor] = []

    def make(**kwargs) -> LatestWinsExecutor:
        made.append(LatestWinsExecutor(**kwargs))
        return made[-1]

    yield make
    for item in made:
        assert item.shutdown(5.0)


def test_a_job_runs_and_its_result_reaches_the_callback(executor) -> None:
    results: list[Outcome] = []
    pool = executor(on_done=results.append)
    ticket = pool.submit("image", lambda t: t.id * 10)
    assert pool.wait_idle(5.0)
    assert [(o.ticket, o.value, o.error) for o in results] == [(ticket, ticket.id * 10, None)]
    assert pool.is_current(ticket)   # still the lane's newest: the GUI side may check again


def test_a_newer_job_supersedes_the_queued_one_which_never_runs(executor) -> None:
    gate = threading.Event()
    ran: list[str] = []
    results: list[object] = []
    pool = executor(on_done=lambda o: results.append(o.value))
    busy = threading.Event()
    pool.submit("blocker", lambda t: busy.set() or gate.wait(5.0))
    assert busy.wait(5.0)
    first = pool.submit("image", lambda t: ran.append("first") or "first")
    second = pool.submit("image", lambda t: ran.append("second") or "second")
    assert first.cancelled() and not pool.is_current(first) and pool.is_current(second)
    assert pool.pending() == 1   # the lane keeps only its newest job
    gate.set()
    assert pool.wait_idle(5.0)
    assert ran == ["second"] and results == [True, "second"]


def test_a_running_job_that_is_superseded_is_told_and_its_result_dropped(executor) -> None:
    started = threading.Event()
    results: list[object] = []
    stale: list[object] = []
    pool = executor(on_done=lambda o: results.append(o.value), on_stale=lambda o: stale.append(o.value))

    def slow(ticket: Ticket) -> str:
        started.set()
        for _ in range(500):
            if ticket.cancelled():
                return "stopped early"
            threading.Event().wait(0.01)
        return "ran to the end"

    old = pool.submit("image", slow)
    assert started.wait(5.0)
    new = pool.submit("image", lambda t: "new")
    assert old.cancelled() and not new.cancelled()
    assert pool.wait_idle(10.0)
    assert results == ["new"] and stale == ["stopped early"]


def test_lanes_are_independent_and_run_in_submission_order(executor) -> None:
    order: list[str] = []
    pool = executor()
    for name in ("a", "b", "c"):
        pool.submit(name, lambda t, n=name: order.append(n))
    assert pool.wait_idle(5.0)
    assert order == ["a", "b", "c"]


def test_cancel_and_cancel_all_drop_everything_queued(executor) -> None:
    gate = threading.Event()
    ran: list[str] = []
    pool = executor()
    busy = threading.Event()
    pool.submit("blocker", lambda t: busy.set() or gate.wait(5.0))
    assert busy.wait(5.0)
    one = pool.submit("one", lambda t: ran.append("one"))
    pool.submit("two", lambda t: ran.append("two"))
    pool.cancel("one")
    assert one.cancelled() and pool.pending() == 1
    pool.cancel_all()
    assert pool.pending() == 0
    gate.set()
    assert pool.wait_idle(5.0)
    assert ran == []
    pool.submit("three", lambda t: ran.append("three"))
    assert pool.wait_idle(5.0) and ran == ["three"]


def test_an_exception_is_delivered_not_lost_and_the_worker_survives(executor) -> None:
    results: list[Outcome] = []
    pool = executor(on_done=results.append)

    def broken(ticket: Ticket) -> None:
        raise ValueError("bad file")

    pool.submit("image", broken)
    pool.submit("other", lambda t: "fine")
    assert pool.wait_idle(5.0)
    assert isinstance(results[0].error, ValueError) and results[0].value is None
    assert results[1].value == "fine" and results[1].error is None


def test_a_failing_callback_does_not_stop_the_worker(executor) -> None:
    seen: list[object] = []

    def callback(outcome: Outcome) -> None:
        seen.append(outcome.value)
        raise RuntimeError("callback bug")

    pool = executor(on_done=callback)
    pool.submit("a", lambda t: 1)
    pool.submit("b", lambda t: 2)
    assert pool.wait_idle(5.0)
    assert seen == [1, 2]


def test_a_per_job_callback_replaces_the_default(executor) -> None:
    default: list[object] = []
    own: list[object] = []
    pool = executor(on_done=lambda o: default.append(o.value))
    pool.submit("a", lambda t: "mine", on_done=lambda o: own.append(o.value))
    assert pool.wait_idle(5.0)
    assert own == ["mine"] and default == []


def test_several_workers_run_jobs_at_once(executor) -> None:
    both = threading.Barrier(2, timeout=5.0)
    pool = executor(workers=2)
    results: list[int] = []
    for lane in ("x", "y"):
        pool.submit(lane, lambda t: both.wait(), on_done=lambda o: results.append(o.value))
    assert pool.wait_idle(10.0)
    assert sorted(results) == [0, 1]   # the barrier passed: both ran at the same time


def test_thread_setup_runs_on_each_worker_thread(executor) -> None:
    names: list[str] = []
    pool = executor(thread_setup=lambda: names.append(threading.current_thread().name), name="thumbs")
    pool.submit("a", lambda t: None)
    assert pool.wait_idle(5.0)
    assert names == ["thumbs-1"]


def test_submit_after_shutdown_is_refused(executor) -> None:
    pool = executor()
    pool.submit("a", lambda t: None)
    assert pool.shutdown(5.0)
    with pytest.raises(RuntimeError):
        pool.submit("a", lambda t: None)
