"""The worker-process protocol with a fake engine: newest wins, cancel, stale drop, worker death,
a failed switch keeps the previous model, a crash loop gives up, shutdown always ends the process."""
from __future__ import annotations

import os
import queue
import signal
import time
from pathlib import Path

import pytest

from cxrviewer.core.inference.client import InferenceClient
from cxrviewer.core.inference.protocol import (
    COMPARE_LANE,
    MAIN_LANE,
    Answer,
    ModelFailed,
    ModelReady,
    RequestFailed,
    WorkerLost,
)
from cxrviewer.core.inference.worker import WorkerOptions
from tests.fake_engine import FACTORY, INPUT_SIZE, runs
from tests.model_factory import make_xray

TIMEOUT_S = 60.0


class Harness:
    """A client whose events are accepted on the test's thread, as the GUI thread would."""

    def __init__(self, root: Path, max_restarts: int = 3) -> None:
        self.root = root
        self.events: queue.Queue = queue.Queue()
        self.client = InferenceClient(self.events.put, WorkerOptions(str(root), FACTORY, preload_tensorflow=False),
                                      max_restarts=max_restarts)
        self.client.start()
        self.accepted: list[object] = []

    def wait_for(self, kind: type, timeout: float = TIMEOUT_S, where=lambda event: True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if self.client.accept(event):
                self.accepted.append(event)
                if isinstance(event, kind) and where(event):
                    return event
        raise AssertionError(f"no {kind.__name__} within {timeout} s; accepted: {self.accepted}")

    def drain(self, seconds: float) -> list[object]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if self.client.accept(event):
                self.accepted.append(event)
        return self.accepted

    def load(self, name: str) -> ModelReady:
        self.client.switch_model(name)
        return self.wait_for(ModelReady)


@pytest.fixture
def harness(tmp_path):
    made = Harness(tmp_path)
    yield made
    made.client.shutdown()


def test_a_request_is_answered_with_the_models_input_size(harness):
    ready = harness.load("fake")
    assert ready.info.name == "fake" and ready.info.input_size == INPUT_SIZE
    assert harness.client.current_model == ready.info
    image = make_xray(64, seed=1)
    request_id = harness.client.request(image)
    answer = harness.wait_for(Answer)
    assert answer.request_id == request_id
    assert answer.prediction.model_name == "fake" and answer.cam is not None and answer.cam.cam.shape == (2, 2)


def test_a_request_made_while_the_model_loads_is_answered_once_it_is_ready(harness):
    harness.client.switch_model("slow-300")
    request_id = harness.client.request(make_xray(64, seed=2))
    harness.wait_for(ModelReady)
    assert harness.wait_for(Answer).request_id == request_id


def test_the_newest_of_twenty_quick_requests_wins_and_superseded_ones_never_run(harness):
    harness.load("slow-100")
    ids = [harness.client.request(make_xray(32, seed=i)) for i in range(20)]
    answer = harness.wait_for(Answer, where=lambda a: a.request_id == ids[-1])
    harness.drain(0.5)
    answered = [e.request_id for e in harness.accepted if isinstance(e, Answer)]
    assert answered == [ids[-1]] and answer.request_id == ids[-1]
    assert runs(harness.root) < 20


def test_a_result_for_a_superseded_request_is_dropped(harness):
    harness.load("slow-500")
    first = harness.client.request(make_xray(32, seed=1))
    time.sleep(0.2)   # the worker is computing `first`
    second = harness.client.request(make_xray(32, seed=2))
    harness.wait_for(Answer, where=lambda a: a.request_id == second)
    harness.drain(0.8)
    assert [e.request_id for e in harness.accepted if isinstance(e, Answer)] == [second]
    stale = Answer(first, None, None)   # were it to arrive, it is not accepted
    assert not harness.client.accept(stale)
    assert not harness.client.accept(RequestFailed(first, "old failure"))


def test_cancel_drops_the_request_in_flight(harness):
    harness.load("slow-300")
    harness.client.request(make_xray(32, seed=3))
    harness.client.cancel()
    harness.drain(1.0)
    assert not [e for e in harness.accepted if isinstance(e, (Answer, RequestFailed))]


def test_a_failing_request_is_reported_and_the_worker_keeps_answering(harness):
    harness.load("fake")
    bad = harness.client.request(make_xray(32), layer="no_such_layer")
    failed = harness.wait_for(RequestFailed)
    assert failed.request_id == bad and "no layer named 'no_such_layer'" in failed.message
    good = harness.client.request(make_xray(32))
    assert harness.wait_for(Answer).request_id == good


def test_a_killed_worker_is_replaced_and_the_request_answered(harness):
    harness.load("fake")
    first_pid = harness.client.worker_pid
    request_id = harness.client.request(make_xray(32, seed=5), layer="die")   # SIGKILLs the worker once
    lost = harness.wait_for(WorkerLost)
    assert lost.restarting and lost.exit_code == -signal.SIGKILL and "restarted" in lost.message
    ready = harness.wait_for(ModelReady)
    assert ready.info.name == "fake"
    answer = harness.wait_for(Answer)
    assert answer.request_id == request_id
    assert harness.client.worker_pid not in (None, first_pid)


def test_kill_9_from_outside_while_idle_restarts_with_the_same_model(harness):
    harness.load("slow-10")
    os.kill(harness.client.worker_pid, signal.SIGKILL)
    assert harness.wait_for(WorkerLost).restarting
    assert harness.wait_for(ModelReady).info.name == "slow-10"
    request_id = harness.client.request(make_xray(32))
    assert harness.wait_for(Answer).request_id == request_id


def test_a_failed_switch_keeps_the_previous_model_working(harness):
    previous = harness.load("fake").info
    harness.client.switch_model("fail")
    failed = harness.wait_for(ModelFailed)
    assert "simulated failure" in failed.message and failed.kept == "fake"
    assert harness.client.current_model == previous
    request_id = harness.client.request(make_xray(32))
    answer = harness.wait_for(Answer)
    assert answer.request_id == request_id and answer.prediction.model_name == "fake"


def test_a_first_load_that_fails_leaves_no_model(harness):
    harness.client.switch_model("fail")
    failed = harness.wait_for(ModelFailed)
    assert failed.kept == "" and harness.client.current_model is None
    harness.client.request(make_xray(32))
    assert "No AI model is loaded" in harness.wait_for(RequestFailed).message


def test_a_model_that_kills_its_worker_on_load_stops_being_restarted(tmp_path):
    made = Harness(tmp_path, max_restarts=2)
    try:
        made.client.switch_model("crash-on-load")
        final = made.wait_for(WorkerLost, where=lambda e: not e.restarting)
        assert "not restarted" in final.message and final.exit_code == 3
        restarts = [e for e in made.accepted if isinstance(e, WorkerLost) and e.restarting]
        assert len(restarts) == 2
        assert made.client.worker_pid is None
        made.load("fake")   # asking again starts a worker again
    finally:
        made.client.shutdown()


def test_shutdown_ends_a_worker_that_is_busy(harness):
    harness.load("slow-20000")
    harness.client.request(make_xray(32))
    time.sleep(0.3)
    pid = harness.client.worker_pid
    harness.client.shutdown(grace_s=0.2)
    assert harness.client.worker_pid is None
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)    # still a zombie only until joined; join happened in shutdown
            time.sleep(0.02)
        raise AssertionError(f"worker {pid} still exists")


def test_commands_after_shutdown_are_ignored(harness):
    harness.load("fake")
    harness.client.shutdown()
    harness.client.request(make_xray(32))
    assert harness.drain(0.3) and not [e for e in harness.accepted if isinstance(e, Answer)]


# -- lanes: newest-wins per lane ("main" for the viewer, "compare" for the compare pane) -------
def test_a_compare_request_does_not_supersede_a_main_request(harness):
    harness.load("slow-300")
    main = harness.client.request(make_xray(32, seed=1))
    time.sleep(0.1)   # the worker is computing `main`
    compare = harness.client.request(make_xray(32, seed=2), lane=COMPARE_LANE)
    answers = {}
    while len(answers) < 2:
        answer = harness.wait_for(Answer)
        answers[answer.lane] = answer.request_id
    assert answers == {MAIN_LANE: main, COMPARE_LANE: compare}
    assert harness.client.latest_request_id == main
    assert harness.client.latest_request_id_in(COMPARE_LANE) == compare


def test_newest_wins_within_the_compare_lane_and_main_is_still_answered(harness):
    harness.load("slow-100")
    main = harness.client.request(make_xray(32, seed=9))
    ids = [harness.client.request(make_xray(32, seed=i), lane=COMPARE_LANE) for i in range(10)]
    harness.wait_for(Answer, where=lambda a: a.lane == COMPARE_LANE and a.request_id == ids[-1])
    harness.drain(0.6)
    answered = [(e.lane, e.request_id) for e in harness.accepted if isinstance(e, Answer)]
    assert sorted(answered) == sorted([(MAIN_LANE, main), (COMPARE_LANE, ids[-1])])
    stale = Answer(ids[0], None, None, COMPARE_LANE)
    assert not harness.client.accept(stale)
    assert not harness.client.accept(Answer(ids[-1], None, None, MAIN_LANE))   # ids do not cross lanes


def test_cancelling_one_lane_leaves_the_other_answered(harness):
    harness.load("slow-200")
    main = harness.client.request(make_xray(32, seed=1))
    harness.client.request(make_xray(32, seed=2), lane=COMPARE_LANE)
    harness.client.cancel(COMPARE_LANE)
    harness.drain(1.2)
    answered = [(e.lane, e.request_id) for e in harness.accepted if isinstance(e, (Answer, RequestFailed))]
    assert answered == [(MAIN_LANE, main)]


def test_both_lanes_are_resent_after_the_worker_dies(harness):
    harness.load("fake")
    compare = harness.client.request(make_xray(32, seed=4), lane=COMPARE_LANE, layer="die")
    main = harness.client.request(make_xray(32, seed=5))
    assert harness.wait_for(WorkerLost).restarting
    harness.wait_for(Answer, where=lambda a: a.lane == COMPARE_LANE)   # the unanswered one is re-sent
    harness.wait_for(Answer, where=lambda a: a.lane == MAIN_LANE) if not any(
        isinstance(e, Answer) and e.lane == MAIN_LANE for e in harness.accepted) else None
    harness.drain(0.3)
    answered = sorted((e.lane, e.request_id) for e in harness.accepted if isinstance(e, Answer))
    assert answered == sorted([(MAIN_LANE, main), (COMPARE_LANE, compare)])   # each exactly once


def test_an_unknown_lane_is_refused(harness):
    with pytest.raises(ValueError, match="unknown inference lane"):
        harness.client.request(make_xray(32), lane="sideways")
