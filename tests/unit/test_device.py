"""Device selection: the real CPU path here, GPU success/fallback paths with a faked tf.config."""
from __future__ import annotations

from dataclasses import FrozenInstanceError
from types import SimpleNamespace

import pytest

from cxrviewer.core.model import device
from cxrviewer.core.model.device import DeviceInfo, configure_devices

tf = pytest.importorskip("tensorflow")

FAKE_GPU = SimpleNamespace(name="/physical_device:GPU:0", device_type="GPU")


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Forget the per-process cache so each test configures again."""
    monkeypatch.setattr(device, "_configured", None)
    monkeypatch.delenv(device.FORCE_CPU_ENV, raising=False)


@pytest.fixture
def hidden(monkeypatch):
    """Record set_visible_devices calls instead of changing the real process."""
    calls = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda devices, kind=None: calls.append((devices, kind)))
    return calls


def test_cpu_on_this_machine(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    info = configure_devices()
    assert info == DeviceInfo("CPU", "", "no GPU found")
    assert info.label == "CPU"
    assert configure_devices() is info  # cached for the process


def test_real_call_does_not_fail():
    info = configure_devices()
    assert info.kind in ("CPU", "GPU") and info.label


def test_gpu_with_memory_growth(monkeypatch, hidden):
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [FAKE_GPU])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu, on)))
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda gpu: {"device_name": "Fake RTX"})
    info = configure_devices()
    assert info.kind == "GPU" and info.label == "GPU: Fake RTX"
    assert grown == [(FAKE_GPU, True)] and hidden == []


def test_gpu_error_falls_back_to_cpu_and_says_why(monkeypatch, hidden):
    def broken(gpu, on):
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [FAKE_GPU])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", broken)
    info = configure_devices()
    assert info.kind == "CPU" and info.label == "CPU"
    assert "CUDA driver version is insufficient" in info.detail
    assert hidden == [([], "GPU")]


def test_gpu_that_cannot_be_hidden_is_reported_as_still_in_use(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Physical devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [FAKE_GPU])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", broken)
    monkeypatch.setattr(tf.config, "set_visible_devices", broken)
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [FAKE_GPU])
    info = configure_devices()
    assert info.kind == "GPU" and "could not be switched off" in info.detail


def test_force_cpu_env(monkeypatch, hidden):
    monkeypatch.setenv(device.FORCE_CPU_ENV, "1")
    info = configure_devices()
    assert info.kind == "CPU" and device.FORCE_CPU_ENV in info.detail
    assert hidden == [([], "GPU")]


def test_device_info_is_frozen():
    info = DeviceInfo("GPU", "")
    assert info.label == "GPU"
    with pytest.raises(FrozenInstanceError):
        info.kind = "CPU"  # type: ignore[misc]
