"""ReadFirstFlow transitions: no reveal before recording, confidence required, a re-read supersedes."""
from __future__ import annotations

from pathlib import Path

import pytest

from cxrviewer.state.read_first import ReadFirstFlow, ReadState
from cxrviewer.teaching.reads import ReadCall, ReadRecord, ReadStore, compare_read
from tests.state_fakes import LABELS, cam, image, prediction


@pytest.fixture
def store(tmp_path: Path):
    s = ReadStore(tmp_path / "reads.sqlite3")
    yield s
    s.close()


def test_a_call_needs_a_set_confidence_and_nothing_reveals_before_recording(store) -> None:
    flow = ReadFirstFlow(store)
    flow.set_image(image("VIRAL/a.png"))
    assert flow.state is ReadState.UNREAD and not flow.ai_visible()
    flow.choose("viral")
    assert flow.state is ReadState.READING and not flow.can_record() and flow.record() is None
    early = compare_read(ReadCall("viral", 50), "tiny", LABELS, (0.1, 0.2, 0.7))
    assert not flow.reveal(early) and flow.state is ReadState.READING   # cannot reveal before recording
    flow.set_prediction(prediction(1, image("VIRAL/a.png")))
    assert flow.last_comparison is None and not flow.ai_visible()       # a result alone reveals nothing
    flow.set_confidence(70)
    call = flow.record()
    assert call == ReadCall("viral", 70) and flow.ai_visible()
    assert flow.state is ReadState.REVEALED and flow.last_comparison.agrees_with_model


def test_recording_waits_for_the_result_and_saves_once(store) -> None:
    flow = ReadFirstFlow(store)
    saved: list[ReadRecord] = []
    flow.read_saved.connect(saved.append)
    img = image("BACTERIAL/b.png")
    flow.set_image(img)
    flow.set_model("tiny", LABELS, 0.85)
    flow.choose("bacterial")
    flow.set_confidence(80)
    flow.set_point(20, 20)
    flow.record()
    assert flow.state is ReadState.RECORDED and saved == []
    flow.set_prediction(prediction(1, img))
    assert flow.state is ReadState.REVEALED and saved == []             # a point: the map is needed too
    flow.set_cam(cam(1, img, 2))
    flow.set_hot_scale("absolute", 3.0)
    assert len(saved) == 1 and saved[0].known_label == "BACTERIAL" and saved[0].point_heat is not None
    assert flow.choose("viral") is None and flow.recorded.call == "bacterial"   # locked in


def test_a_re_read_of_the_same_image_supersedes_the_first(store) -> None:
    flow = ReadFirstFlow(store)
    img = image("NORMAL/c.png")
    flow.set_prediction(prediction(1, img))          # a cached result may come before the image
    for call in ("normal", "viral"):
        flow.set_image(img)
        assert flow.state is ReadState.UNREAD and flow.draft.call is None
        flow.choose(call)
        flow.set_confidence(60)
        flow.record()
    assert [r.call for r in store.records()] == ["viral"]
    assert [r.call for r in store.records_for_image(img.sha256)] == ["normal", "viral"]


def test_read_first_off_shows_the_ai_and_records_nothing(store) -> None:
    flow = ReadFirstFlow(store, enabled=False)
    flow.set_image(image())
    assert flow.ai_visible() and flow.export_state() is None
    flow.set_enabled(True)
    assert not flow.ai_visible() and flow.export_state() == "before reveal"
    flow.set_enabled(False)
    flow.choose("normal")
    flow.set_confidence(50)
    flow.record()
    flow.set_prediction(prediction(1, image()))
    assert store.records() == []


def test_choices_follow_the_model_only_while_calling(store) -> None:
    flow = ReadFirstFlow(store)
    flow.set_model("covid3", ("COVID-19", "NORMAL", "VIRAL"), 0.19)
    assert flow.choices == ("covid-19", "normal", "viral", "other")
    flow.choose("covid-19")
    flow.set_model("pneumonia3", LABELS, 0.85)
    assert flow.choices == ("normal", "bacterial", "viral", "other") and flow.draft.call is None
    with pytest.raises(ValueError):
        flow.choose("covid-19")


def test_an_image_without_a_hash_is_not_saved_and_says_so(tmp_path) -> None:
    import dataclasses

    flow = ReadFirstFlow(lambda: ReadStore(tmp_path / "r.sqlite3"))
    problems: list[str] = []
    flow.problem.connect(problems.append)
    img = dataclasses.replace(image(), sha256="")
    flow.set_image(img)
    flow.set_prediction(prediction(1, img))
    flow.choose("normal")
    flow.set_confidence(40)
    flow.record()
    assert problems and "content hash" in problems[0]


def test_a_read_of_an_image_flagged_outside_the_training_data_is_saved_with_the_flag(store) -> None:
    import dataclasses

    from cxrviewer.core.types import OodVerdict

    flow = ReadFirstFlow(store)
    flagged, plain = image("NORMAL/adult.png"), image("NORMAL/child.png")
    for img, verdict in ((flagged, OodVerdict(True, 1.3, 1.0, "unlike its training images")),
                         (plain, OodVerdict(False, 0.4, 1.0, ""))):
        flow.set_image(img)
        flow.set_prediction(dataclasses.replace(prediction(1, img), ood=verdict))
        flow.choose("normal")
        flow.set_confidence(60)
        flow.record()
    assert flow.last_comparison is not None and not flow.last_comparison.outside_training_data
    by_hash = {r.image_sha256: r.outside_training_data for r in store.records()}
    assert by_hash == {flagged.sha256: True, plain.sha256: False}
