"""`cxrviewer predict` and `cxrviewer render --overlay` in-process, with tiny random-weight models."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer import cli
from cxrviewer.core.imaging import default_display
from cxrviewer.core.io import load_image
from cxrviewer.core.model.batch import prefetched
from cxrviewer.core.model.preprocessing import model_input
from cxrviewer.core.model.runtime import InferenceEngine, load_classifier
from cxrviewer.core.xai.overlay import blend, cam_index_image
from cxrviewer.core.xai.overlay_style import CONTOURS, HEATMAP, overlay_rgba
from tests.model_factory import build_tiny_classifier, make_model_folder

KEYS = {"path", "model", "labels", "probabilities", "call", "call_rule", "top", "pneumonia_probability", "ood"}




@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_models")
    make_model_folder(root, "pneumonia3", model=build_tiny_classifier(3, 32, seed=0))
    make_model_folder(root, "binary", labels=("CLEAR", "OPAQUE"), model=build_tiny_classifier(2, 32, seed=2))
    return root


@pytest.fixture(autouse=True)
def models_env(monkeypatch, models_root) -> Path:
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))
    return models_root


@pytest.fixture(scope="module")
def engine(models_root) -> InferenceEngine:
    return InferenceEngine(load_classifier(models_root / "pneumonia3"))


def write_png(path: Path, seed: int, shape: tuple[int, int] = (70, 90)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = cv2.GaussianBlur(rng.integers(0, 255, shape).astype(np.uint8), (9, 9), 3)
    assert cv2.imwrite(str(path), pixels)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "study"
    for number in range(4):
        write_png(root / f"img_{number}.png", number)
    write_png(root / "deeper" / "img_9.png", 9, (40, 40))
    (root / "broken.png").write_bytes(b"this is not a png")
    return root


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    status = cli.main(["predict", *argv])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def test_folder_with_a_bad_file_gives_json_lines_an_error_line_and_exit_1(capsys, folder, engine) -> None:
    status, lines, err = run(capsys, str(folder), "--json")
    assert status == 1 and err == ""
    records = [json.loads(line) for line in lines]
    assert [Path(r["path"]).name for r in records] == [
        "broken.png", "img_0.png", "img_1.png", "img_2.png", "img_3.png", "img_9.png"]
    bad = records[0]
    assert set(bad) == {"path", "error"} and "broken.png" in bad["error"]
    good = records[1:]
    expected = engine.predict_images([load_image(Path(r["path"])) for r in good])   # the same preprocessing
    for record, row in zip(good, expected):
        assert set(record) == KEYS
        assert record["model"] == "pneumonia3" and record["labels"] == ["NORMAL", "BACTERIAL", "VIRAL"]
        probabilities = record["probabilities"]
        assert list(probabilities) == record["labels"]
        np.testing.assert_allclose(list(probabilities.values()), row, atol=2e-6)
        assert record["top"] == max(probabilities, key=probabilities.get)
        assert record["pneumonia_probability"] == pytest.approx(
            probabilities["BACTERIAL"] + probabilities["VIRAL"], abs=2e-6)
        # the call follows the card's operating threshold on the pneumonia probability
        threshold = engine.card.operating_threshold
        subtype = max(("BACTERIAL", "VIRAL"), key=probabilities.get)
        assert record["call"] == (subtype if record["pneumonia_probability"] >= threshold else "NORMAL")
        assert record["call_rule"].startswith("pneumonia probability (BACTERIAL + VIRAL) ≥ ")


def test_json_call_differs_from_top_on_a_borderline_image() -> None:
    from cxrviewer.commands.predict import json_record, text_line
    from cxrviewer.core.model.batch import ScoredFile

    line = ScoredFile(Path("person1022_virus.jpeg"), "pneumonia3", ("NORMAL", "BACTERIAL", "VIRAL"),
                      (0.165, 0.37, 0.465), ("BACTERIAL", "VIRAL"), operating_threshold=0.8507)
    record = json_record(line)
    assert record["top"] == "VIRAL" and record["call"] == "NORMAL"
    assert "0.8507" in record["call_rule"]
    assert "call NORMAL (pneumonia probability 0.83 < threshold 0.85)  top VIRAL" in text_line(line)


def test_batch_size_does_not_change_the_results(capsys, folder) -> None:
    _, big, _ = run(capsys, str(folder), "--json", "--batch-size", "16")
    _, small, _ = run(capsys, str(folder), "--json", "--batch-size", "2")
    assert len(big) == len(small) == 6
    for a, b in zip(map(json.loads, big), map(json.loads, small)):
        assert a["path"] == b["path"]
        if "error" not in a:
            np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()),
                                       atol=2e-6)


def test_readable_lines_without_json_and_exit_0_when_all_good(capsys, folder) -> None:
    (folder / "broken.png").unlink()
    status, lines, _ = run(capsys, str(folder / "img_0.png"), str(folder / "deeper"))
    assert status == 0
    assert lines[0].startswith("# model pneumonia3") and "not for clinical use" in lines[0]
    assert len(lines) == 3
    assert lines[1].startswith(f"{folder / 'img_0.png'}  call ") and "  top " in lines[1]
    assert "NORMAL" in lines[1] and "%" in lines[1] and "pneumonia" in lines[1]


def test_missing_inputs_and_empty_folders_are_error_lines(capsys, folder, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    status, lines, _ = run(capsys, str(tmp_path / "nope.png"), str(empty), str(folder / "img_1.png"), "--json")
    records = [json.loads(line) for line in lines]
    assert status == 1
    assert "error" in records[0] and "nope.png" in records[0]["error"]
    assert records[1] == {"path": str(empty), "error": "empty: no images found in this folder"}
    assert records[2]["top"] in ("NORMAL", "BACTERIAL", "VIRAL")


def test_a_model_without_pneumonia_classes_has_no_pneumonia_probability(capsys, folder) -> None:
    status, lines, _ = run(capsys, str(folder / "img_2.png"), "--model", "binary", "--json")
    record = json.loads(lines[0])
    assert status == 0
    assert record["model"] == "binary" and record["labels"] == ["CLEAR", "OPAQUE"]
    assert "pneumonia_probability" not in record


def test_unknown_model_is_one_line_and_exit_2(capsys, folder) -> None:
    status, lines, err = run(capsys, str(folder), "--model", "nope")
    assert status == 2 and lines == []
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("cxrviewer: error: no model named 'nope'") and "binary, pneumonia3" in err


def test_prefetch_keeps_order_and_stays_within_its_depth() -> None:
    lock = threading.Lock()
    running, seen_max = [0], [0]

    def slow_square(value: int) -> int:
        with lock:
            running[0] += 1
            seen_max[0] = max(seen_max[0], running[0])
        time.sleep(0.01 * (value % 3))
        with lock:
            running[0] -= 1
        return value * value

    results = list(prefetched(list(range(20)), slow_square, workers=2, depth=4))
    assert results == [v * v for v in range(20)]
    assert 1 <= seen_max[0] <= 2


# ----------------------------------------------------------------------------- render --overlay
def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_render_overlay_is_the_viewers_blend(capsys, tmp_path, engine) -> None:
    source = write_png(tmp_path / "in.png", 5, (60, 80))
    out = tmp_path / "out.png"
    assert cli.main(["render", str(source), "-o", str(out), "--overlay", "--class", "viral",
                     "--alpha", "0.6", "--colormap", "inferno", "--threshold", "0.3"]) == 0
    image = load_image(source)
    probabilities, cam = engine.predict_and_cam(model_input(image, engine.input_size), 2)
    expected = blend(default_display(image), overlay_rgba(cam_index_image(cam, image.shape), "inferno", 0.3,
                                                          HEATMAP), 0.6)
    np.testing.assert_allclose(read_rgb(out).astype(int), expected.astype(int), atol=2)
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"heat map for VIRAL — p = {probabilities[2]:.2f}")

    big = write_png(tmp_path / "big.png", 6, (300, 400))
    image = load_image(big)
    contours = tmp_path / "contours.png"
    assert cli.main(["render", str(big), "-o", str(contours), "--overlay", "--contours"]) == 0
    rgb = read_rgb(contours)
    coloured = (rgb.max(axis=2).astype(int) - rgb.min(axis=2)) > 30
    assert 0 < coloured.mean() < 0.3     # lines, not a filled map
    _, cam_top = engine.predict_and_cam(model_input(image, engine.input_size))
    lines = overlay_rgba(cam_index_image(cam_top, image.shape), "jet", 0.2, CONTOURS)
    assert coloured[lines[..., 3] == 0].mean() < 0.05


def test_overlay_options_need_overlay_and_bad_values_are_one_line(capsys, tmp_path) -> None:
    source = write_png(tmp_path / "in.png", 1)
    out = tmp_path / "out.png"
    assert cli.main(["render", str(source), "-o", str(out), "--contours"]) == 2
    assert capsys.readouterr().err.strip() == "cxrviewer: error: --contours needs --overlay"
    assert cli.main(["render", str(source), "-o", str(out), "--overlay", "--class", "FOO"]) == 2
    assert "has no class 'FOO'" in capsys.readouterr().err
    assert cli.main(["render", str(source), "-o", str(out), "--overlay", "--method", "cam",
                     "--layer", "conv1_relu"]) == 2
    assert "only works on the layer feeding global average pooling" in capsys.readouterr().err
    assert cli.main(["render", str(source), "-o", str(out), "--overlay", "--alpha", "2"]) == 2
    assert not out.exists()


def test_render_offers_every_cam_method() -> None:
    from cxrviewer.commands.render import METHOD_NAMES
    from cxrviewer.core.xai.cam import METHODS

    assert METHOD_NAMES == METHODS      # spelled out there so that building the parser imports no numpy


def test_every_json_line_carries_the_out_of_distribution_verdict(tmp_path, monkeypatch, capsys):
    """A gated model: a blank image and a NaN-free radiograph-like image, both with an `ood` object."""
    pytest.importorskip("tf2onnx", reason="tf2onnx (dev extra) exports the ONNX model")
    import cv2

    from cxrviewer.cli import main
    from tests.model_factory import make_gated_model_folder

    root = tmp_path / "models"
    make_gated_model_folder(root, "tiny")
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(root))
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "blank.png"), np.zeros((128, 128), np.uint8))
    cv2.imwrite(str(images / "film.png"), (np.indices((128, 128)).sum(0) % 256).astype(np.uint8))
    assert main(["predict", "--json", str(images)]) == 0
    records = {Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    blank = records["blank.png"]["ood"]
    assert blank["flagged"] is True and "blank" in blank["reason"] and blank["score"] is None
    film = records["film.png"]["ood"]
    assert set(film) == {"flagged", "score", "threshold", "reason"} and isinstance(film["score"], float)
    assert main(["predict", str(images / "blank.png")]) == 0
    assert "OUTSIDE TRAINING DATA: it is blank" in capsys.readouterr().out


@pytest.mark.slow
def test_call_follows_the_card_threshold_on_real_radiographs(bundled_models, capsys) -> None:
    """The bundled pneumonia3 on real Guangzhou images: every line's call is the card's rule applied to
    its own probabilities (and the pneumonia probability decides NORMAL vs pneumonia)."""
    from cxrviewer.cli import main
    from cxrviewer.core.model.card import ModelCard
    from cxrviewer.core.model_call import model_call
    from tests.shared_data import shared_images

    paths = shared_images(6)
    if not paths:
        pytest.skip("../shared not present: real-data check skipped")
    card = ModelCard.read(bundled_models / "pneumonia3")
    assert main(["predict", "--json", "--model", "pneumonia3", *map(str, paths)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(paths)
    for line in lines:
        probabilities = [line["probabilities"][label] for label in card.labels]
        expected = model_call(card.labels, probabilities, card.operating_threshold)
        assert line["call"] == expected.label, line
        pneumonia = line["pneumonia_probability"]
        assert (line["call"] == "NORMAL") == (pneumonia < card.operating_threshold), line
