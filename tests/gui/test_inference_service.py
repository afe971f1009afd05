"""InferenceService: the worker process behind Qt signals — newest request wins, failures surface,
the GUI process never imports TensorFlow, clean shutdown. (Protocol details: tests/unit/test_inference_client.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from cxrviewer.core.model.runtime import image_key
from cxrviewer.ui.workers.inference_service import COMPARE_LANE, MAIN_LANE, InferenceService, ModelInfo
from tests.model_factory import TINY_LABELS, build_tiny_classifier, make_model_folder, make_xray, tamper_weights

LOAD_TIMEOUT_MS = 120_000   # TensorFlow import + warm-up on a busy 2-core machine
RESULT_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    model = build_tiny_classifier(3, 32, seed=0)
    make_model_folder(root, "tiny", model=model)
    make_model_folder(root, "pneumonia3", model=build_tiny_classifier(3, 32, seed=1))
    tampered = make_model_folder(root.parent / "tampered_models", "tampered", model=model)
    tamper_weights(tampered)
    return root


@pytest.fixture
def service(qtbot, models_root):
    service = InferenceService(models_root=models_root)
    yield service
    service.shutdown()


@pytest.fixture
def ready(qtbot, service) -> InferenceService:
    with qtbot.waitSignal(service.model_ready, timeout=LOAD_TIMEOUT_MS):
        service.switch_model("tiny")
    return service


def _collect(service: InferenceService) -> dict[str, list]:
    seen: dict[str, list] = {"predictions": [], "cams": [], "failures": []}
    service.prediction_ready.connect(seen["predictions"].append)
    service.cam_ready.connect(seen["cams"].append)
    service.request_failed.connect(lambda rid, msg: seen["failures"].append((rid, msg)))
    return seen


def test_importing_the_service_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import cxrviewer.ui.workers.inference_service\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_model_loads_and_reports_its_info(qtbot, service):
    loading, infos = [], []
    service.model_loading.connect(loading.append)
    service.model_ready.connect(infos.append)
    with qtbot.waitSignal(service.model_ready, timeout=LOAD_TIMEOUT_MS):
        service.switch_model("tiny")
    info = infos[0]
    assert loading == ["tiny"]
    assert isinstance(info, ModelInfo) and service.current_model is info
    assert info.name == "tiny" and info.labels == TINY_LABELS
    assert info.conv_layers[0] == "relu" == info.default_layer == info.dense_cam_layer
    assert info.device in ("CPU",) or info.device.startswith("GPU")
    assert "cam" in info.methods


def test_default_model_is_pneumonia3(qtbot, service):
    with qtbot.waitSignal(service.model_ready, timeout=LOAD_TIMEOUT_MS) as blocker:
        service.load_default_model()
    assert blocker.args[0].name == "pneumonia3"


def test_a_request_returns_prediction_and_cam(qtbot, ready):
    seen = _collect(ready)
    image = make_xray(64, seed=1)
    with qtbot.waitSignal(ready.cam_ready, timeout=RESULT_TIMEOUT_MS):
        request_id = ready.request(image, class_index=2, method="gradcam++", layer="conv2_relu")
    prediction, cam = seen["predictions"][0], seen["cams"][0]
    assert prediction.request_id == cam.request_id == request_id
    assert prediction.image_key == cam.image_key == image_key(image)
    assert cam.class_index == 2 and cam.method == "gradcam++" and cam.layer == "conv2_relu"
    assert cam.cam.shape == (16, 16)
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)


def test_latest_of_twenty_quick_requests_wins(qtbot, ready):
    seen = _collect(ready)
    images = [make_xray(64, seed=i) for i in range(20)]
    ids = [ready.request(image) for image in images]   # no event processing in between
    qtbot.waitUntil(lambda: any(c.request_id == ids[-1] for c in seen["cams"]), timeout=RESULT_TIMEOUT_MS)
    qtbot.wait(200)  # give anything else still queued a chance to (wrongly) arrive
    assert [p.request_id for p in seen["predictions"]] == [ids[-1]]
    assert [c.request_id for c in seen["cams"]] == [ids[-1]]
    assert seen["predictions"][0].image_key == image_key(images[-1])
    assert seen["failures"] == []


def test_a_compare_request_does_not_supersede_the_main_request(qtbot, ready):
    """Two lanes: each gets its own answer; the main lane's signals carry only the main answer."""
    seen = _collect(ready)
    lanes: list[tuple[str, int, int | None]] = []
    ready.answered.connect(lambda lane, p, c: lanes.append((lane, p.request_id, None if c is None else c.request_id)))
    main_image, compare_image = make_xray(64, seed=11), make_xray(64, seed=12)
    main_id = ready.request(main_image)
    compare_id = ready.request(compare_image, lane=COMPARE_LANE)   # asked right after, no events between
    qtbot.waitUntil(lambda: len(lanes) == 2, timeout=RESULT_TIMEOUT_MS)
    qtbot.wait(200)
    assert sorted(lanes) == sorted([(MAIN_LANE, main_id, main_id), (COMPARE_LANE, compare_id, compare_id)])
    assert [p.request_id for p in seen["predictions"]] == [main_id]
    assert [p.image_key for p in seen["predictions"]] == [image_key(main_image)]
    assert ready.latest_request_id == main_id and ready.latest_request_id_in(COMPARE_LANE) == compare_id


def test_newest_wins_within_the_compare_lane(qtbot, ready):
    seen = _collect(ready)
    lanes: list[tuple[str, int]] = []
    ready.answered.connect(lambda lane, p, c: lanes.append((lane, p.request_id)))
    ids = [ready.request(make_xray(64, seed=i), lane=COMPARE_LANE) for i in range(8)]
    qtbot.waitUntil(lambda: (COMPARE_LANE, ids[-1]) in lanes, timeout=RESULT_TIMEOUT_MS)
    qtbot.wait(200)
    assert lanes == [(COMPARE_LANE, ids[-1])]
    assert seen["predictions"] == [] and seen["cams"] == []     # the main lane heard nothing


def test_a_compare_failure_is_reported_on_its_lane_only(qtbot, ready):
    seen = _collect(ready)
    with qtbot.waitSignal(ready.lane_failed, timeout=RESULT_TIMEOUT_MS) as blocker:
        ready.request(make_xray(64), class_index=0, method="cam", layer="conv1_relu", lane=COMPARE_LANE)
    assert blocker.args[0] == COMPARE_LANE and "global average pooling" in blocker.args[2]
    qtbot.wait(100)
    assert seen["failures"] == []


def test_invalid_request_surfaces_as_request_failed(qtbot, ready):
    with qtbot.waitSignal(ready.request_failed, timeout=RESULT_TIMEOUT_MS) as blocker:
        ready.request(make_xray(64), class_index=0, method="cam", layer="conv1_relu")
    assert "global average pooling" in blocker.args[1]


def test_tampered_weights_fail_with_the_checksum_message(qtbot, service, models_root):
    folder = models_root.parent / "tampered_models" / "tampered"
    with qtbot.waitSignal(service.model_failed, timeout=LOAD_TIMEOUT_MS) as blocker:
        service.switch_model(str(folder))
    assert "weights of model tampered do not match their recorded checksum (file changed or corrupt)" in blocker.args[0]
    assert service.current_model is None
    with qtbot.waitSignal(service.request_failed, timeout=RESULT_TIMEOUT_MS) as blocker:
        service.request(make_xray(64))
    assert "No AI model is loaded" in blocker.args[1] and "checksum" in blocker.args[1]


def test_unknown_model_name_fails_clearly(qtbot, service):
    with qtbot.waitSignal(service.model_failed, timeout=LOAD_TIMEOUT_MS) as blocker:
        service.switch_model("no-such-model")
    assert "no model named 'no-such-model'" in blocker.args[0]


def test_switching_models_makes_old_results_stale(qtbot, ready):
    seen = _collect(ready)
    ready.request(make_xray(64, seed=4))
    with qtbot.waitSignal(ready.model_ready, timeout=LOAD_TIMEOUT_MS) as blocker:
        ready.switch_model("pneumonia3")
    assert blocker.args[0].name == "pneumonia3"
    with qtbot.waitSignal(ready.cam_ready, timeout=RESULT_TIMEOUT_MS):
        new_id = ready.request(make_xray(64, seed=4))
    assert [p.request_id for p in seen["predictions"]] == [new_id]
    assert seen["predictions"][0].model_name == "pneumonia3"


def test_shutdown_ends_the_worker_process(qtbot, ready):
    assert ready.is_running()
    pid = ready.worker_pid
    assert ready.shutdown() is True
    assert not ready.is_running() and ready.worker_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert ready.shutdown() is True  # idempotent
    with qtbot.assertNotEmitted(ready.prediction_ready, wait=100):
        ready.request(make_xray(64))


@pytest.mark.slow
def test_the_gui_process_never_imports_tensorflow_while_the_worker_runs_it(bundled_models):
    """Bundled model: an ONNX answer, then a heat map at another layer (TensorFlow, in the worker)."""
    code = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication, QTimer
from cxrviewer.ui.workers.inference_service import InferenceService
from tests.model_factory import make_xray
app = QCoreApplication([])
service = InferenceService()
seen = []
def on_cam(cam):
    seen.append(cam.layer)
    if len(seen) == 1:
        service.request(make_xray(256, seed=1), layer="pool4_relu")
    else:
        app.quit()
service.cam_ready.connect(on_cam)
service.model_ready.connect(lambda info: service.request(make_xray(256, seed=1)))
service.request_failed.connect(lambda rid, msg: (print(msg), app.exit(3)))
service.model_failed.connect(lambda msg: (print(msg), app.exit(5)))
service.switch_model("pneumonia3")
QTimer.singleShot(240_000, lambda: app.exit(4))
status = app.exec()
service.shutdown()
assert status == 0, status
assert seen == ["relu", "pool4_relu"], seen
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def test_the_workers_log_reaches_the_viewers_log(qtbot, caplog) -> None:
    import logging

    with caplog.at_level(logging.INFO):
        service = InferenceService(models_root=Path("/nonexistent-models"))
        try:
            with qtbot.waitSignal(service.model_failed, timeout=60_000) as blocker:
                service.switch_model("")
        finally:
            service.shutdown()
    assert "no AI models found in /nonexistent-models" in blocker.args[0]
    assert any(r.name == "cxrviewer.core.inference.client" and "worker started" in r.getMessage()
               for r in caplog.records)


@pytest.mark.slow
def test_the_explanation_audit_runs_in_the_worker_and_is_cached(qtbot, bundled_models):
    """Bundled pneumonia3 on a synthetic film: curves of 11 points, a verdict, three method pairs."""
    service = InferenceService()
    try:
        with qtbot.waitSignal(service.model_ready, timeout=LOAD_TIMEOUT_MS):
            service.switch_model("pneumonia3")
        image = make_xray(256, seed=4)
        with qtbot.waitSignal(service.audit_ready, timeout=RESULT_TIMEOUT_MS) as ready:
            service.request_audit(image, 1, "gradcam", "relu")
        result = ready.args[0].result
        assert len(result.deletion) == len(result.insertion) == 11 and result.class_label == "BACTERIAL"
        assert set(result.method_agreement) == {"gradcam vs gradcam++", "gradcam vs hirescam", "gradcam++ vs hirescam"}
        assert result.verdict().startswith("Removing the hottest 20 % of the map changes p(BACTERIAL)")
        with qtbot.waitSignal(service.audit_ready, timeout=1000) as again:
            assert service.request_audit(image, 1, "gradcam", "relu") == -1     # from the cache, queued
        assert again.args[0].result is result
    finally:
        service.shutdown()
