"""`cxrviewer selftest`: prove that this installation works, offline, end to end.

`run_selftest` is the one implementation (tests and the frozen-app check call it); the
`selftest` subcommand at the bottom only prints its report. Exit status 0 when every check
passes, 1 otherwise (the report says which check failed and why).

The same code runs from a source checkout, an installed wheel and the frozen (PyInstaller)
app, which is where it matters most: a decoder plugin whose entry-point metadata was not
bundled, a missing Qt plugin or font, or a model file that changed only break there.

Checks, in order (each one line in the report)::

    resources      resources/ found: font, icon, self-test manifest
    decode <kind>  each fixture in resources/selftest/ through load_image; lossless files must
                   give exactly the reference pixels (sha256 in the manifest), lossy ones stay
                   within a tolerance; compressed DICOMs are also decoded by EVERY available
                   pydicom plugin, and the plugins the app ships must be among them
    model          the bundled (or $CXRVIEWER_MODELS_DIR) default model: sha256 of the weights and
                   of the ONNX export verified, loaded in the engine the viewer uses
    predict + CAM  one prediction and one Grad-CAM on a fixture, through the app's run_request
    worker process the viewer's inference worker process (multiprocessing, also in the frozen
                   app): the same answer as in-process, then a heat map at another layer
                   (TensorFlow in the worker), then a stop within the grace period
    overlay        CAM → colour → blend, composited by Qt on the offscreen platform and compared
                   with the numpy blend; a caption drawn with the bundled font
    licenses       (frozen app only) THIRD_PARTY_LICENSES ships next to the executable

A check that needs the model is reported as not run when there is no model, and the
self-test fails then ("no bundled model"). Nothing here opens a network connection; with
$CXRVIEWER_BLOCK_NETWORK=1 any attempt to open an internet socket raises instead.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import __version__
from cxrviewer.commands._base import EXIT_INTERNAL, EXIT_OK, subcommand
from cxrviewer.core.resources import resource_path, resources_dir

log = logging.getLogger(__name__)

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"
MANIFEST_FILE = "manifest.json"
LICENSES_FILE = "THIRD_PARTY_LICENSES"
BLOCK_NETWORK_ENV = "CXRVIEWER_BLOCK_NETWORK"
CAM_FIXTURE = "dicom_explicit_le.dcm"     # the image the prediction and Grad-CAM run on
OVERLAY_OPACITY = 0.5
OVERLAY_THRESHOLD = 0.2
OVERLAY_COLORMAP = "jet"
MAX_COMPOSITE_DIFFERENCE = 3              # gray levels between Qt's and numpy's compositing
CAPTION_HEIGHT = 28
PREVIEW_SCALE = 4


class SelftestFailure(Exception):
    """A check failed; the message says what and is printed in the report."""


@dataclass(frozen=True)
class Check:
    """One line of the report: the check, PASS / FAIL / NOT RUN, why, and how long it took."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class SelftestReport:
    """The environment lines and the result of every check, in order."""

    environment: tuple[str, ...]
    checks: tuple[Check, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.status == PASS for check in self.checks)

    def format(self) -> str:
        width = max(len(check.name) for check in self.checks) if self.checks else 0
        lines = list(self.environment)
        for check in self.checks:
            lines.append(f"  {check.status:<7}  {check.name:<{width}}  {check.detail}  ({check.seconds:.2f} s)")
        failed = [check for check in self.checks if check.status != PASS]
        if failed:
            lines.append(f"self-test FAILED: {len(failed)} of {len(self.checks)} checks did not pass "
                         f"({', '.join(check.name for check in failed)}) in {self.seconds:.1f} s")
        else:
            lines.append(f"self-test passed: {len(self.checks)} checks in {self.seconds:.1f} s")
        return "\n".join(lines)


@dataclass
class _Context:
    """What earlier checks hand to later ones (single thread, never shared)."""

    fixtures_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    verified: dict[str, np.ndarray] = field(default_factory=dict)   # reference name → exact pixels
    engine: Any = None
    model_folder: Any = None
    prediction: Any = None
    cam: Any = None
    cam_image: Any = None
    preview: Any = None                                            # QImage, for --save-overlay


# --------------------------------------------------------------------------- environment

def install_mode() -> str:
    """"frozen app", "source checkout" or "installed package"."""
    if getattr(sys, "frozen", False) or hasattr(sys, "_MEIPASS"):
        return "frozen app"
    package = Path(__file__).resolve().parents[1]   # cxrviewer/
    return "source checkout" if (package.parent / "pyproject.toml").is_file() else "installed package"


class _BlockedSocket(socket.socket):
    """A socket class that refuses internet families (AF_UNIX stays usable, as with `unshare -n`)."""

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access is blocked (${BLOCK_NETWORK_ENV}=1)")
        super().__init__(family, type, proto, fileno)


def block_network() -> None:
    """Make every later attempt to open an internet socket or resolve a name raise OSError."""

    def refuse(*_args: object, **_kwargs: object) -> Any:
        raise OSError(f"network access is blocked (${BLOCK_NETWORK_ENV}=1)")

    socket.socket = _BlockedSocket  # type: ignore[misc]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]
    socket.gethostbyname = refuse  # type: ignore[assignment]


def network_state() -> str:
    """A short description of the network the self-test runs with (for the report)."""
    blocked = " (Python sockets blocked)" if os.environ.get(BLOCK_NETWORK_ENV) == "1" else ""
    try:
        names = sorted(name for _index, name in socket.if_nameindex())
    except OSError:
        return f"unknown{blocked}"
    if names == ["lo"]:
        return f"loopback only{blocked}"
    return f"interfaces {', '.join(names)}{blocked}"


def environment_lines(fixtures_dir: Path) -> tuple[str, ...]:
    from cxrviewer.core.model.registry import models_root

    return (
        f"cxrviewer {__version__} self-test — {install_mode()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}",
        f"resources: {resources_dir()}",
        f"models:    {models_root()}",
        f"fixtures:  {fixtures_dir}",
        f"network:   {network_state()}",
    )


# --------------------------------------------------------------------------- checks

def check_resources(context: _Context) -> str:
    """The manifest, the bundled font and icon are where resources_dir() says."""
    missing = [str(path) for path in (resource_path("fonts", "DejaVuSans.ttf"), resource_path("icons", "cxrviewer.svg"))
               if not path.is_file()]
    manifest_path = context.fixtures_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        missing.append(str(manifest_path))
    if missing:
        raise SelftestFailure(f"missing: {', '.join(missing)}")
    try:
        context.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        fixtures = context.manifest["fixtures"]
        context.manifest["references"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SelftestFailure(f"{manifest_path.name} cannot be read: {exc}") from exc
    absent = [entry["file"] for entry in fixtures if not (context.fixtures_dir / entry["file"]).is_file()]
    if absent:
        raise SelftestFailure(f"fixtures listed but missing: {', '.join(absent)}")
    return f"font, icon, {len(fixtures)} fixtures"


def _digest(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _as_reference_dtype(pixels: np.ndarray, reference: dict[str, Any]) -> np.ndarray | None:
    """Integral pixels in the reference dtype's range, cast to it; None when they cannot be."""
    dtype = np.dtype(reference["dtype"])
    values = np.asarray(pixels)
    if values.ndim != 2 or list(values.shape) != list(reference["shape"]):
        return None
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.array_equal(values, np.rint(values)):
            return None
    info = np.iinfo(dtype)
    if values.min() < info.min or values.max() > info.max:
        return None
    return values.astype(dtype)


def _compare(pixels: np.ndarray, entry: dict[str, Any], context: _Context, source: str) -> str:
    """Check decoded pixels against the fixture's reference; return a short verdict."""
    name = entry["reference"]
    reference = context.manifest["references"][name]
    if entry.get("lossless", True):
        exact = _as_reference_dtype(pixels, reference)
        if exact is None:
            raise SelftestFailure(
                f"{source} gave {np.asarray(pixels).dtype} {tuple(np.shape(pixels))}, "
                f"not the {reference['dtype']} {tuple(reference['shape'])} reference pixels"
            )
        if _digest(exact) != reference["sha256"]:
            raise SelftestFailure(f"{source} decoded pixels differ from the reference")
        context.verified.setdefault(name, exact)
        return "exact"
    target = context.verified.get(name)
    if target is None:
        raise SelftestFailure(f"no verified {name} reference to compare {source} with")
    values = np.asarray(pixels, dtype=np.float64)
    if values.shape != target.shape:
        raise SelftestFailure(f"{source} gave shape {values.shape}, expected {target.shape}")
    error = float(np.mean(np.abs(values - target)))
    limit = float(entry.get("max_mean_abs_error", 2.0))
    if error > limit:
        raise SelftestFailure(f"{source} differs from the reference by {error:.2f} gray levels (limit {limit})")
    return f"mean error {error:.2f}"


def check_plugins(path: Path, entry: dict[str, Any], context: _Context) -> str:
    """Decode a compressed DICOM with every available pydicom plugin; the shipped ones must be there."""
    import pydicom
    from pydicom.pixels import as_pixel_options, get_decoder

    uid = entry["transfer_syntax"]
    decoder = get_decoder(uid)
    available = tuple(decoder.available_plugins)
    required = tuple(entry.get("required_plugins", ()))
    missing = [name for name in required if name not in available]
    if missing:
        why = "; ".join(decoder.missing_dependencies) or "not installed or its metadata is missing"
        raise SelftestFailure(f"decoder plugin(s) {', '.join(missing)} unavailable ({why})")
    ds = pydicom.dcmread(path)
    for plugin in available:
        try:
            array, _meta = decoder.as_array(ds, decoding_plugin=plugin, **as_pixel_options(ds))
        except Exception as exc:  # noqa: BLE001 - a plugin that breaks is exactly what we look for
            raise SelftestFailure(f"plugin {plugin} failed: {type(exc).__name__}: {exc}") from exc
        _compare(array, entry, context, f"plugin {plugin}")
    return f"plugins {', '.join(available)} agree"


def check_fixture(entry: dict[str, Any], context: _Context) -> str:
    from cxrviewer.core.io import load_image

    path = context.fixtures_dir / entry["file"]
    image = load_image(path)
    verdict = _compare(image.pixels, entry, context, "load_image")
    detail = f"{entry['file']} {image.shape[1]}x{image.shape[0]}, {verdict}"
    if entry.get("transfer_syntax") and entry.get("required_plugins"):
        detail += f"; {check_plugins(path, entry, context)}"
    if entry["file"] == CAM_FIXTURE:
        context.cam_image = image
    return detail


def check_model(context: _Context, model_name: str | None) -> str:
    """Find the default model, verify its sha256, load it and build the inference engine."""
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.registry import model_folder
    from cxrviewer.core.model.runtime import read_card, verify_weights

    try:
        folder = model_folder(model_name)
    except LookupError as exc:
        reason = str(exc.args[0] if exc.args else exc)
        if model_name:
            raise SelftestFailure(reason) from exc
        raise SelftestFailure(f"no bundled model: {reason}; build with a model in resources/models/ "
                              "or set CXRVIEWER_MODELS_DIR") from exc
    card = read_card(folder)
    verify_weights(folder, card)   # ModelEngine.open verifies again; this names the step in the report
    context.engine = engine = ModelEngine.open(folder)
    context.model_folder = folder
    return (f"{card.name}: sha256 {card.weights_sha256[:12]}… verified, {len(card.labels)} labels, "
            f"{card.input_size} px; {engine.runtime} on {engine.device}")


def check_prediction(context: _Context) -> str:
    from cxrviewer.core.model.runtime import InferenceRequest, run_request
    from cxrviewer.core.xai.cam import GRADCAM

    if context.cam_image is None:
        raise SelftestFailure(f"{CAM_FIXTURE} was not decoded")
    engine = context.engine
    prediction, cam = run_request(engine, InferenceRequest(1, context.cam_image, method=GRADCAM))
    probabilities = np.asarray(prediction.probabilities)
    if probabilities.shape != (len(engine.labels),) or not np.all((probabilities >= 0) & (probabilities <= 1)):
        raise SelftestFailure(f"invalid probabilities {prediction.probabilities}")
    if engine.head_activation == "softmax" and abs(float(probabilities.sum()) - 1.0) > 1e-3:
        raise SelftestFailure(f"softmax probabilities sum to {probabilities.sum():.4f}")
    if cam is None:
        raise SelftestFailure("the Grad-CAM map is missing")
    raw = np.asarray(cam.cam)
    if raw.ndim != 2 or not np.all(np.isfinite(raw)) or raw.min() < 0:
        raise SelftestFailure("the Grad-CAM map is not 2-D, not finite or negative")
    context.prediction, context.cam = prediction, cam
    top = prediction.top_index
    return (f"{CAM_FIXTURE}: {prediction.labels[top]} {probabilities[top]:.3f}; "
            f"Grad-CAM on {cam.layer} {raw.shape[1]}x{raw.shape[0]}, max {raw.max():.3g}")


def check_worker_process(context: _Context, timeout_s: float = 300.0) -> str:
    """The viewer's worker process answers like the in-process engine, at another layer too, and stops."""
    import queue

    from cxrviewer.core.inference.client import InferenceClient
    from cxrviewer.core.inference.protocol import Answer, ModelFailed, ModelReady, RequestFailed, WorkerLost

    events: queue.Queue = queue.Queue()
    client = InferenceClient(events.put)
    started = time.perf_counter()

    def wait(kind: type) -> Any:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if not client.accept(event):
                continue
            if isinstance(event, (ModelFailed, RequestFailed, WorkerLost)):
                raise SelftestFailure(f"the worker process reported: {getattr(event, 'message', event)}")
            if isinstance(event, kind):
                return event
        raise SelftestFailure(f"the worker process gave no {kind.__name__} within {timeout_s:.0f} s")

    try:
        client.start()
        client.switch_model(str(context.model_folder))
        wait(ModelReady)
        client.request(context.cam_image)
        first = wait(Answer)
        ready_s = time.perf_counter() - started
        expected = np.asarray(context.prediction.probabilities)
        difference = float(np.abs(np.asarray(first.prediction.probabilities) - expected).max())
        if difference > 1e-5:
            raise SelftestFailure(f"the worker's probabilities differ from the in-process ones by {difference:.2g}")
        other = next((layer for layer in context.engine.conv_layers if layer != context.engine.default_layer), None)
        detail = ""
        if other is not None:
            client.request(context.cam_image, layer=other)
            answer = wait(Answer)
            if answer.cam is None or answer.cam.layer != other or not np.all(np.isfinite(answer.cam.cam)):
                raise SelftestFailure(f"no heat map at layer {other} from the worker")
            detail = f"; heat map at {other} {answer.cam.cam.shape[1]}x{answer.cam.cam.shape[0]}"
        pid = client.worker_pid
    finally:
        stop_started = time.perf_counter()
        client.shutdown()
        stop_s = time.perf_counter() - stop_started
    return f"pid {pid}: first answer {ready_s:.1f} s after start, same probabilities{detail}; stopped in {stop_s:.2f} s"


def _qimage_rgb(image: Any) -> np.ndarray:
    """(H, W, 3) uint8 copy of a QImage's pixels."""
    from PySide6.QtGui import QImage

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def _qimage(array: np.ndarray, fmt: Any) -> Any:
    """A QImage owning a copy of a C-contiguous uint8 array (gray (H, W) or RGBA (H, W, 4))."""
    from PySide6.QtGui import QImage

    data = np.ascontiguousarray(array)
    height, width = data.shape[:2]
    return QImage(data.data, width, height, data.strides[0], fmt).copy()


def _ensure_gui_application() -> Any:
    """The running Qt application, or a new QApplication on the offscreen platform (no display needed).

    A QApplication rather than a QGuiApplication, so that widgets can still be made later in
    the same process (tests).
    """
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    app = QCoreApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QApplication([sys.argv[0] if sys.argv else "cxrviewer", "-platform", "offscreen"])
    return app


def check_overlay(context: _Context) -> str:
    """Composite the CAM on the image with Qt and compare with the numpy blend; add a caption."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter

    from cxrviewer.core.imaging import default_display
    from cxrviewer.core.xai.overlay import blend, cam_index_image, colorize, colormap_lut

    app = _ensure_gui_application()
    display = default_display(context.cam_image)
    rgba = colorize(cam_index_image(context.cam.cam, display.shape), colormap_lut(OVERLAY_COLORMAP), OVERLAY_THRESHOLD)
    expected = blend(display, rgba, OVERLAY_OPACITY)

    height, width = display.shape
    composite = QImage(width, height, QImage.Format.Format_RGB32)
    painter = QPainter(composite)
    painter.drawImage(0, 0, _qimage(display, QImage.Format.Format_Grayscale8))
    painter.setOpacity(OVERLAY_OPACITY)
    painter.drawImage(0, 0, _qimage(rgba, QImage.Format.Format_RGBA8888))
    painter.end()
    rendered = _qimage_rgb(composite)
    difference = int(np.abs(rendered.astype(np.int16) - expected.astype(np.int16)).max())
    if difference > MAX_COMPOSITE_DIFFERENCE:
        raise SelftestFailure(f"Qt's composite differs from the numpy blend by {difference} gray levels")

    from cxrviewer.ui.shell.app import load_bundled_font

    family = load_bundled_font(app)
    if family is None:
        raise SelftestFailure(f"the bundled font {resource_path('fonts', 'DejaVuSans.ttf')} could not be loaded")
    preview = QImage(width * PREVIEW_SCALE, height * PREVIEW_SCALE + CAPTION_HEIGHT, QImage.Format.Format_RGB32)
    preview.fill(QColor("white"))
    painter = QPainter(preview)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawImage(QRect(0, 0, width * PREVIEW_SCALE, height * PREVIEW_SCALE), composite)
    painter.setPen(QColor("black"))
    painter.setFont(QFont(family, 9))
    prediction = context.prediction
    label = f"{prediction.labels[prediction.top_index]} {max(prediction.probabilities):.2f} · Grad-CAM"
    caption = QRect(4, height * PREVIEW_SCALE, width * PREVIEW_SCALE - 8, CAPTION_HEIGHT)
    painter.drawText(caption, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), label)
    painter.end()
    strip = _qimage_rgb(preview)[height * PREVIEW_SCALE:]
    if int((strip.min(axis=2) < 128).sum()) < 20:
        raise SelftestFailure(f"no text was drawn with the bundled font {family}")
    context.preview = preview
    platform_name = app.platformName() if hasattr(app, "platformName") else "?"
    return (f"Qt {platform_name}: {width}x{height} composite matches blend (max diff {difference}); "
            f"caption in {family}")


def check_licenses() -> str:
    path = Path(sys.executable).resolve().parent / LICENSES_FILE
    if not path.is_file() or path.stat().st_size == 0:
        raise SelftestFailure(f"{path} is missing or empty")
    entries = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("== "))
    return f"{LICENSES_FILE}: {entries} distributions listed"


# --------------------------------------------------------------------------- runner

def _run(name: str, step: Callable[[], str], checks: list[Check]) -> bool:
    start = time.perf_counter()
    try:
        detail = step()
        status = PASS
    except Exception as exc:  # noqa: BLE001 - every failure becomes a line in the report
        log.info("self-test check %r failed", name, exc_info=True)
        detail = str(exc) if isinstance(exc, SelftestFailure) else f"{type(exc).__name__}: {exc}"
        status = FAIL
    checks.append(Check(name, status, " ".join(detail.split()), time.perf_counter() - start))
    return status == PASS


def run_selftest(
    model_name: str | None = None,
    fixtures_dir: str | os.PathLike[str] | None = None,
    save_overlay: str | os.PathLike[str] | None = None,
) -> SelftestReport:
    """Run every check and return the report; never raises for a failed check."""
    start = time.perf_counter()
    if os.environ.get(BLOCK_NETWORK_ENV) == "1":
        block_network()
    context = _Context(Path(fixtures_dir) if fixtures_dir is not None else resource_path("selftest"))
    environment = environment_lines(context.fixtures_dir)
    checks: list[Check] = []
    if _run("resources", lambda: check_resources(context), checks):
        entries = sorted(context.manifest["fixtures"], key=lambda entry: not entry.get("lossless", True))
        for entry in entries:
            _run(f"decode {entry['kind']}", functools.partial(check_fixture, entry, context), checks)
    else:
        checks.append(Check("decode", NOT_RUN, "needs the self-test fixtures"))

    model_ok = _run("model", lambda: check_model(context, model_name), checks)
    if model_ok and _run("predict + Grad-CAM", lambda: check_prediction(context), checks):
        _run("overlay render", lambda: check_overlay(context), checks)
        _run("worker process", lambda: check_worker_process(context), checks)
    else:
        reason = "needs the model" if not model_ok else "needs a prediction"
        if not model_ok:
            checks.append(Check("predict + Grad-CAM", NOT_RUN, reason))
        checks.append(Check("overlay render", NOT_RUN, reason))
        checks.append(Check("worker process", NOT_RUN, reason))
    if install_mode() == "frozen app":
        _run("licenses", check_licenses, checks)

    if save_overlay is not None and context.preview is not None:
        target = Path(save_overlay)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not context.preview.save(str(target)):
            checks.append(Check("save overlay", FAIL, f"could not write {target}"))
    return SelftestReport(environment, tuple(checks), time.perf_counter() - start)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="model to test (default: the bundled default model, or the one in "
                             "$CXRVIEWER_MODELS_DIR)")
    parser.add_argument("--save-overlay", type=Path, default=None, metavar="PNG",
                        help="also write the rendered overlay (with its caption) to this PNG")


@subcommand("selftest", help="check models, decoders, inference and rendering offline; exit 0 if all pass",
            configure=_configure)
def run_selftest_command(args: argparse.Namespace) -> int:
    report = run_selftest(model_name=args.model, save_overlay=args.save_overlay)
    print(report.format(), flush=True)
    return EXIT_OK if report.passed else EXIT_INTERNAL
