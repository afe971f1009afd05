"""Choose where TensorFlow runs: a GPU with memory growth, else the CPU, and say why.

Call `configure_devices()` once, in the inference thread, before any model is built:
TensorFlow refuses device changes after it has initialised its devices. The result is
cached for the process, so calling it again (e.g. when switching models) is harmless.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

FORCE_CPU_ENV = "CXRVIEWER_FORCE_CPU"

_lock = threading.Lock()
_configured: DeviceInfo | None = None


@dataclass(frozen=True)
class DeviceInfo:
    """Where inference runs. `detail` says why (e.g. the GPU error that forced the CPU)."""

    kind: str            # "GPU" or "CPU"
    name: str = ""
    detail: str = ""

    @property
    def label(self) -> str:
        if self.kind == "GPU":
            return f"GPU: {self.name}" if self.name else "GPU"
        return "CPU"


def _gpu_name(tf: Any, gpu: Any) -> str:
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except Exception:  # details are cosmetic; never fail on them
        details = {}
    return str(details.get("device_name") or gpu.name)


def _hide_gpus(tf: Any, reason: str) -> DeviceInfo:
    try:
        tf.config.set_visible_devices([], "GPU")
    except Exception as exc:  # devices already initialised: report what is really in use
        log.warning("could not hide the GPUs after a GPU error: %s", exc)
        if tf.config.list_logical_devices("GPU"):
            return DeviceInfo("GPU", "", f"{reason}; the GPU could not be switched off ({exc})")
    log.warning("running on the CPU: %s", reason)
    return DeviceInfo("CPU", "", reason)


def _configure() -> DeviceInfo:
    import tensorflow as tf

    if os.environ.get(FORCE_CPU_ENV, "").strip() not in ("", "0"):
        return _hide_gpus(tf, f"{FORCE_CPU_ENV} is set")
    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception as exc:
        return _hide_gpus(tf, f"the GPU could not be queried ({exc})")
    if not gpus:
        return DeviceInfo("CPU", "", "no GPU found")
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        name = _gpu_name(tf, gpus[0])
    except Exception as exc:
        return _hide_gpus(tf, f"the GPU could not be set up ({type(exc).__name__}: {exc})")
    extra = f" (+{len(gpus) - 1} more)" if len(gpus) > 1 else ""
    return DeviceInfo("GPU", name, f"memory growth enabled on {len(gpus)} GPU(s){extra}")


def configure_devices() -> DeviceInfo:
    """Set up TensorFlow's devices once per process and return where inference will run."""
    global _configured
    with _lock:
        if _configured is None:
            _configured = _configure()
            log.info("inference device: %s (%s)", _configured.label, _configured.detail)
        return _configured
