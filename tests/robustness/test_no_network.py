"""Nothing touches the network at run time: a full GUI session and the CLI, watched by a guard.

The session runs in a fresh process (network_session.py) with the guard installed before
anything is imported, so TensorFlow's import, the model's loading and warm-up, Qt start-up,
DICOM decoding, the AI panel's prediction, a heat map, the About dialog and the CLI's
`render` and `selftest` are all covered. Any socket opened from Python, any name look-up,
and any inet socket left open at the OS level fails the test.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.model_factory import make_model_folder
from tests.shared_data import shared_dir

from .hostile import dicom, encode, save
from .netguard import NetworkGuard, open_inet_sockets

REPO = Path(__file__).resolve().parents[2]


def test_the_guard_sees_attempts_and_open_sockets() -> None:
    """The guard can fail: real attempts are recorded and refused, open sockets are found."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        if Path("/proc/self/fd").is_dir():
            assert open_inet_sockets(), "an open UDP socket was not seen"
    finally:
        udp.close()
    assert not open_inet_sockets()

    guard = NetworkGuard().install()
    try:
        for attempt in (
            lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
            lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).connect(("::1", 9)),
            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 9)),
            lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).bind(("0.0.0.0", 0)),
            lambda: urllib.request.urlopen("http://example.invalid/", timeout=1),
            lambda: socket.getaddrinfo("localhost", 80),
        ):
            with pytest.raises(OSError):
                attempt()
        probe = socket.socket(socket.AF_INET6)   # like urllib3's IPv6 probe: allowed, recorded
        probe.bind(("::1", 0))
        probe.close()
    finally:
        guard.uninstall()
    found = "\n".join(guard.attempts)
    for name in ("create_connection", "socket.connect", "socket.sendto", "socket.bind", "getaddrinfo"):
        assert name in found, name
    assert len(guard.sockets) == 4 and "AF_INET6" in guard.sockets[-1]
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()   # uninstalled: sockets work again


@pytest.fixture(scope="module")
def offline_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("offline")
    models = root / "models"
    make_model_folder(models, "pneumonia3")
    images: list[Path] = []
    folder = shared_dir()
    for name in ("cr_chest_mono2_jpeg_baseline.dcm", "cr_chest_mono1_j2k_lossy.dcm"):
        if folder is not None and (folder / "dicom" / name).is_file():
            images.append(folder / "dicom" / name)
    if not images:
        images.append(save(dicom(), root / "synthetic.dcm"))
    png = root / "plain.png"
    png.write_bytes(encode(".png", np.full((64, 64), 100, np.uint8)))
    images.append(png)
    return models, images


def test_full_gui_session_and_cli_open_no_socket(offline_inputs, tmp_path) -> None:
    models, images = offline_inputs
    report = tmp_path / "network.json"
    env = {**os.environ, "CXRVIEWER_MODELS_DIR": str(models), "CXRVIEWER_LOG_DIR": str(tmp_path / "logs"),
           "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.robustness.network_session", str(models), *map(str, images),
         "--out", str(report)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=1200, check=False,
    )
    assert result.returncode == 0 and report.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    seen = json.loads(report.read_text(encoding="utf-8"))
    assert seen["error"] == "", seen["error"]
    assert seen["tensorflow_imported"], "the session never imported TensorFlow: it proves little"
    assert any("InferenceService: heat map" in step for step in seen["steps"]), seen["steps"]
    assert any(step.startswith("cli render: exit 0") for step in seen["steps"]), seen["steps"]
    assert seen["attempts"] == [], "network attempts:\n" + "\n".join(seen["attempts"])
    assert seen["open_sockets"] == [], seen["open_sockets"]
    # Sockets created without network use: only urllib3's import-time IPv6 probe (see netguard.py).
    unexpected = [s for s in seen["sockets"] if "urllib3/util/connection.py" not in s]
    assert unexpected == [], "\n".join(unexpected)
