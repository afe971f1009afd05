"""AiSession policy with a fake engine: one request per change, stale results dropped, the gates."""
from __future__ import annotations

import pytest

from cxrviewer.core.types import CamResult
from cxrviewer.state.ai import AiSession, Held, nice_ceiling
from cxrviewer.state.overlay import CamTarget
from tests.state_fakes import FakeEngine, cam, image, model, prediction

BORDERLINE = (0.165, 0.37, 0.465)   # pneumonia 0.835 < 0.85: the call is NORMAL, the top class VIRAL


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def session(engine: FakeEngine) -> AiSession:
    s = AiSession(engine)
    s.set_model(model())
    return s


def answer(session: AiSession, engine: FakeEngine, probabilities=(0.05, 0.15, 0.8), class_index: int = 2,
           flagged: bool = False) -> CamResult:
    """The engine answers the newest request: a prediction, then the map of `class_index`."""
    request_id, _key, _cls, _method, _layer = engine.requests[-1]
    img = session.image
    assert img is not None
    session.accept_prediction(prediction(request_id, img, probabilities, flagged=flagged))
    result = cam(request_id, img, class_index)
    session.accept_cam(result)
    return result


def test_an_image_sends_one_request_and_a_class_change_exactly_one_more(session, engine) -> None:
    session.set_image(image())
    assert len(engine.requests) == 1 and engine.requests[0][2] is None      # "Model's call": class None
    answer(session, engine)
    session.overlay.set_target(CamTarget(0, "gradcam", "conv"))
    assert len(engine.requests) == 2 and engine.requests[1][2] == 0
    session.overlay.set_opacity(0.9)                 # cheap changes never go back to the model
    session.overlay.set_colormap("jet")
    session.overlay.set_normalisation("absolute")
    assert len(engine.requests) == 2 and session.requests_sent == 2


def test_a_cached_map_sends_no_request(session, engine) -> None:
    session.set_image(image())
    answer(session, engine)
    session.overlay.set_target(CamTarget(0, "gradcam", "conv"))
    request_id = engine.last_id
    session.accept_cam(cam(request_id, image(), 0))
    session.overlay.set_target(CamTarget(None, "gradcam", "conv"))   # back to the call: cached
    assert len(engine.requests) == 2 and engine.cancels >= 1
    assert session.shown_cam() is not None and session.shown_cam().class_index == 2


def test_a_stale_result_is_never_applied(session, engine) -> None:
    first, second = image("NORMAL/a.png"), image("VIRAL/b.png")
    session.set_image(first)
    old_id = engine.last_id
    session.set_image(second)
    drawn: list[CamResult] = []
    session.cam_arrived.connect(drawn.append)
    assert not session.accept_prediction(prediction(old_id, first))
    assert not session.accept_cam(cam(old_id, first, 2))
    assert session.current_prediction() is None and session.shown_cam() is None and drawn == []
    other_model = prediction(engine.last_id, second, model_name="other")
    assert not session.accept_prediction(other_model)
    assert session.accept_prediction(prediction(engine.last_id, second))
    assert session.accept_cam(cam(engine.last_id, second, 2)) and len(drawn) == 1


def test_a_map_for_a_target_the_user_has_left_is_kept_but_not_drawn(session, engine) -> None:
    session.set_image(image())
    answer(session, engine)
    session.overlay.set_target(CamTarget(0, "gradcam", "conv"))
    late = engine.last_id
    session.overlay.set_target(CamTarget(1, "gradcam", "conv"))      # picked another class meanwhile
    assert not session.accept_cam(cam(late, image(), 0))              # not the pending id any more
    assert session.shown_cam().class_index == 2


def test_the_map_of_the_call_not_the_top_class_on_a_borderline_image(session, engine) -> None:
    session.set_image(image())
    answer(session, engine, BORDERLINE, class_index=2)    # the worker explained the top class (VIRAL)
    assert len(engine.requests) == 2 and engine.requests[1][2] == 0   # ... so the call's map is asked once
    assert session.shown_cam() is None
    session.accept_cam(cam(engine.last_id, image(), 0))
    assert session.shown_cam().class_index == 0 and session.heatmap().held is Held.NOTHING
    assert session.current_call().label == "NORMAL"


def test_a_map_of_another_class_is_held_until_shown_anyway_or_picked(session, engine) -> None:
    session.set_image(image())
    answer(session, engine)                                           # call VIRAL, map VIRAL: shown
    assert session.heatmap().allowed
    session.overlay.set_target(CamTarget(None, "gradcam", "conv"))    # unchanged: nothing
    # the map of NORMAL arrives for "Model's call" → still wanted? No: it is another class
    session.overlay.set_target(CamTarget(0, "gradcam", "conv"))       # picked by hand: shown at once
    session.accept_cam(cam(engine.last_id, image(), 0))
    state = session.heatmap()
    assert state.allowed and state.shown_anyway and state.below_threshold


def test_gate_hides_call_and_map_of_a_flagged_image_until_show_anyway(session, engine) -> None:
    session.set_image(image())
    answer(session, engine, flagged=True)
    state = session.heatmap()
    assert session.outside_held() and state.held is Held.OUTSIDE_DATA and not state.allowed
    assert session.shown_cam() is not None                            # computed, held back
    assert session.shown_call() is None and session.current_call() is not None   # no call shown either
    assert session.show_anyway()
    state = session.heatmap()
    assert state.allowed and state.outside_shown_anyway and not session.outside_held()
    assert session.shown_call() == session.current_call()
    session.set_image(image("VIRAL/other.png"))                       # the choice is per image
    answer(session, engine, flagged=True)
    assert session.heatmap().held is Held.OUTSIDE_DATA


def test_read_first_hides_results_that_keep_arriving(session, engine) -> None:
    session.set_results_hidden(True)
    session.set_image(image())
    answer(session, engine)
    assert session.current_prediction() is not None and session.heatmap().held is Held.READ_FIRST
    assert session.shown_call() is None
    session.set_results_hidden(False)
    assert session.heatmap().allowed and len(engine.requests) == 1   # shown from what is cached


def test_no_image_cancels_and_new_weights_forget_old_results(session, engine) -> None:
    session.set_image(image())
    answer(session, engine)
    session.set_image(None)
    assert engine.cancels == 1 and session.shown_cam() is None and session.pending() == {}
    session.set_model(model(sha="b" * 64))                           # same name, retrained
    session.set_image(image())
    assert len(engine.requests) == 2                                  # nothing cached survives


def test_a_failed_request_clears_only_when_pending(session, engine) -> None:
    session.set_image(image())
    failures: list[str] = []
    session.request_failed.connect(failures.append)
    assert not session.fail_request(999, "old")
    assert session.fail_request(engine.last_id, "worker said no") and failures == ["worker said no"]


def test_absolute_scale_is_fixed_from_the_first_map() -> None:
    assert [nice_ceiling(v) for v in (0.0, 0.37, 1.0, 2.2, 3.1, 7.0)] == [1.0, 0.5, 1.0, 2.5, 5.0, 10.0]
    session = AiSession(FakeEngine())
    session.set_model(model())
    first = cam(1, image(), 2)                                        # max 3.0
    assert session.absolute_max_for(first) == 5.0
    assert session.absolute_max_for(cam(2, image(), 0)) == 5.0        # same model/method/layer: kept
