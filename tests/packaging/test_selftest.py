"""`cxrviewer selftest` from source, with a tiny random-weight model in $CXRVIEWER_MODELS_DIR."""
from __future__ import annotations

import importlib.util
import json
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer import cli
from cxrviewer.commands import selftest
from cxrviewer.core.model.registry import MODELS_DIR_ENV
from tests.model_factory import make_model_folder, tamper_weights

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "resources" / "selftest"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _network_not_blocked(monkeypatch) -> None:
    monkeypatch.delenv(selftest.BLOCK_NETWORK_ENV, raising=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    make_model_folder(root, name="tiny", input_size=32)
    return root


@pytest.fixture
def no_models(tmp_path, monkeypatch) -> Path:
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv(MODELS_DIR_ENV, str(empty))
    return empty


def copy_fixtures(tmp_path: Path) -> Path:
    target = tmp_path / "selftest"
    shutil.copytree(FIXTURES, target)
    return target


def by_name(report: selftest.SelftestReport) -> dict[str, selftest.Check]:
    return {check.name: check for check in report.checks}


def test_selftest_passes_with_a_model(models, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(MODELS_DIR_ENV, str(models))
    preview = tmp_path / "overlay.png"

    status = cli.main(["selftest", "--save-overlay", str(preview)])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "self-test passed" in out
    assert "source checkout" in out
    for entry in MANIFEST["fixtures"]:
        line = next(line for line in out.splitlines() if f"decode {entry['kind']} " in line)
        assert "PASS" in line and entry["file"] in line
    for name in ("model", "predict + Grad-CAM", "overlay render"):
        assert any(line.split()[:1] == ["PASS"] and name in line for line in out.splitlines()), name
    assert "sha256" in out and "verified" in out
    assert "plugins pydicom, pylibjpeg agree" in out      # RLE through pylibjpeg-rle's entry point
    image = cv2.imread(str(preview), cv2.IMREAD_COLOR)
    rows, columns = MANIFEST["references"]["gray16"]["shape"]
    assert image.shape == (rows * selftest.PREVIEW_SCALE + selftest.CAPTION_HEIGHT, columns * selftest.PREVIEW_SCALE, 3)
    heat = image[: rows * selftest.PREVIEW_SCALE]
    assert np.abs(heat[..., 2].astype(int) - heat[..., 0].astype(int)).max() > 50, "no coloured overlay"


def test_without_a_model_it_fails_and_says_so(no_models, capsys):
    status = cli.main(["selftest"])

    out = capsys.readouterr().out
    assert status == 1
    assert "no bundled model" in out and str(no_models) in out
    assert "NOT RUN" in out and "needs the model" in out
    assert "self-test FAILED" in out


def test_changed_weights_fail_the_checksum(models, tmp_path, monkeypatch):
    root = tmp_path / "models"
    shutil.copytree(models, root)
    tamper_weights(root / "tiny")
    monkeypatch.setenv(MODELS_DIR_ENV, str(root))

    report = selftest.run_selftest()

    assert not report.passed
    model = by_name(report)["model"]
    assert model.status == selftest.FAIL and "checksum" in model.detail


def test_a_changed_pixel_is_detected(no_models, tmp_path):
    folder = copy_fixtures(tmp_path)
    pixels = cv2.imread(str(folder / "png16.png"), cv2.IMREAD_UNCHANGED)
    pixels[10, 10] += 1
    assert cv2.imwrite(str(folder / "png16.png"), pixels)

    checks = by_name(selftest.run_selftest(fixtures_dir=folder))

    assert checks["decode PNG 16-bit"].status == selftest.FAIL
    assert "differ from the reference" in checks["decode PNG 16-bit"].detail
    assert checks["decode PNG 8-bit"].status == selftest.PASS


def test_a_missing_decoder_plugin_is_reported(no_models, tmp_path):
    folder = copy_fixtures(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rle = next(entry for entry in manifest["fixtures"] if entry["file"] == "dicom_rle.dcm")
    rle["required_plugins"] = [*rle["required_plugins"], "libjpeg-gpl"]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    check = by_name(selftest.run_selftest(fixtures_dir=folder))[f"decode {rle['kind']}"]

    assert check.status == selftest.FAIL and "libjpeg-gpl" in check.detail


def test_lossy_files_are_compared_within_a_tolerance(no_models, tmp_path):
    folder = copy_fixtures(tmp_path)
    reference = cv2.imread(str(folder / "png8.png"), cv2.IMREAD_UNCHANGED)
    ok, encoded = cv2.imencode(".jpg", 255 - reference)      # same size, wrong content
    (folder / "jpeg8.jpg").write_bytes(encoded.tobytes())

    check = by_name(selftest.run_selftest(fixtures_dir=folder))["decode JPEG"]

    assert check.status == selftest.FAIL and "gray levels" in check.detail


def test_missing_fixtures_fail_the_resources_check(no_models, tmp_path):
    folder = copy_fixtures(tmp_path)
    (folder / "dicom_j2k.dcm").unlink()

    report = selftest.run_selftest(fixtures_dir=folder)

    assert by_name(report)["resources"].status == selftest.FAIL
    assert "dicom_j2k.dcm" in by_name(report)["resources"].detail
    assert not report.passed


def test_block_network_refuses_internet_sockets_only(monkeypatch):
    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, getattr(socket, name))   # restored after the test

    selftest.block_network()

    with pytest.raises(OSError, match="blocked"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OSError, match="blocked"):
        socket.getaddrinfo("localhost", 80)
    left, right = socket.socketpair()          # local (AF_UNIX) sockets keep working
    left.close()
    right.close()


def _generator():
    spec = importlib.util.spec_from_file_location("make_selftest_fixtures", ROOT / "tools" / "make_selftest_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_fixtures_are_what_the_script_makes(tmp_path):
    """Same manifest (reference pixel hashes, kinds, syntaxes); bytes may differ with codec versions."""
    generated = _generator().write_fixtures(tmp_path / "fresh")

    assert generated == MANIFEST
    for entry in MANIFEST["fixtures"]:
        size = (FIXTURES / entry["file"]).stat().st_size
        assert size < 32 * 1024, f"{entry['file']} is {size} bytes: keep self-test fixtures tiny"
