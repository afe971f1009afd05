"""`cxrviewer render INPUT -o OUT.png [--size PX] [--frame N] [--overlay ...]`: the image as the
viewer first shows it (default window and polarity, `imaging.default_display`), as a file.

With `--overlay`, the same steps as the viewer: `model_input` → `ModelEngine.predict_and_cam`
→ raw CAM → `cam_index_image` (at the image's size) → `core.xai.overlay_style.overlay_rgba`
(heat map or contour lines, threshold, colour map) → `core.xai.overlay.blend` on the default
display image. The class and its probability are printed on one line, so the picture is never
read without the number it belongs to.

`--read-first` renders what a trainee sees before making a call: the plain display image
(no model is run, no map) with a "read first — AI hidden" caption band under it.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cxrviewer.commands._base import (
    EXIT_OK,
    CliError,
    fraction,
    frame_index,
    load_engine,
    positive_float,
    positive_int,
    subcommand,
)
from cxrviewer.core.errors import printable_name
from cxrviewer.core.xai.overlay_style import DEFAULT_COLORMAP, DEFAULT_OPACITY, DEFAULT_THRESHOLD

# the method names of core.xai.cam, spelled out so that building the parser imports no numpy
METHOD_NAMES = ("gradcam", "gradcam++", "hirescam", "cam")
READ_FIRST_CAPTION = "Read first - AI hidden until you record your call"
CAPTION_BAND_GRAY = 24
CAPTION_TEXT_GRAY = 235

if TYPE_CHECKING:
    import numpy as np

    from cxrviewer.core.types import XrayImage

log = logging.getLogger(__name__)


def _colormap(text: str) -> str:
    from cxrviewer.core.xai.overlay import COLORMAPS

    if text not in COLORMAPS:
        raise argparse.ArgumentTypeError(f"unknown colour map {text!r}; choose one of {', '.join(COLORMAPS)}")
    return text


def add_overlay_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--overlay` options of `cxrviewer render`."""
    group = parser.add_argument_group("AI heat map (with --overlay)")
    group.add_argument("--overlay", action="store_true", help="blend the AI heat map over the image")
    group.add_argument("--model", default=None, metavar="NAME",
                       help="registered model name or model folder (default: the default model)")
    group.add_argument("--class", dest="class_label", default=None, metavar="LABEL",
                       help="class the map explains (default: the model's call, by its card's threshold rule)")
    group.add_argument("--method", choices=METHOD_NAMES, default="gradcam", help="map method (default gradcam)")
    group.add_argument("--layer", default=None, metavar="NAME",
                       help="convolutional layer (default: the model card's CAM layer)")
    group.add_argument("--alpha", type=fraction, default=DEFAULT_OPACITY, metavar="A",
                       help=f"overlay opacity 0–1 (default {DEFAULT_OPACITY})")
    group.add_argument("--colormap", type=_colormap, default=DEFAULT_COLORMAP, metavar="NAME",
                       help=f"jet, inferno, viridis, hot, magma or turbo (default {DEFAULT_COLORMAP})")
    group.add_argument("--threshold", type=fraction, default=DEFAULT_THRESHOLD, metavar="T",
                       help=f"parts of the map below T (0–1) stay transparent (default {DEFAULT_THRESHOLD})")
    group.add_argument("--contours", action="store_true", help="draw contour lines instead of a filled map")
    group.add_argument("--absolute-max", type=positive_float, default=None, metavar="X",
                       help="absolute scale: raw map value X is the top colour (default: per-image min–max)")
    group.add_argument("--read-first", action="store_true",
                       help="the read-first state before the call: no AI result, no map, a caption saying so")


def overlay_requested(args: argparse.Namespace) -> bool:
    """True when --overlay was given; complains about overlay options given without it."""
    if getattr(args, "overlay", False):
        return True
    given = [option for option, value in (
        ("--model", args.model), ("--class", args.class_label), ("--layer", args.layer),
        ("--contours", args.contours), ("--absolute-max", args.absolute_max),
        ("--read-first", getattr(args, "read_first", False)),
    ) if value]
    if given:
        raise CliError(f"{given[0]} needs --overlay")
    return False


def render_with_overlay(image: XrayImage, args: argparse.Namespace) -> np.ndarray:
    """RGB uint8 (H, W, 3): the default display with the heat map blended as in the viewer."""

    from cxrviewer.core.imaging import default_display
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.xai.cam import METHOD_LABELS
    from cxrviewer.core.xai.overlay import blend, cam_index_image
    from cxrviewer.core.xai.overlay_style import CONTOURS, HEATMAP, overlay_rgba

    engine = load_engine(args.model)
    class_index = None
    if args.class_label is not None:
        labels = {label.upper(): index for index, label in enumerate(engine.labels)}
        if args.class_label.upper() not in labels:
            raise CliError(f"model {engine.name} has no class {args.class_label!r} "
                           f"(classes: {', '.join(engine.labels)})")
        class_index = labels[args.class_label.upper()]
    probabilities, cam = engine.predict_and_cam(
        model_input(image, engine.input_size), class_index, args.layer, args.method
    )
    shown = engine.called_class(probabilities) if class_index is None else class_index   # what the map explains
    mode = "per_image" if args.absolute_max is None else "absolute"
    index = cam_index_image(cam, image.shape, mode, args.absolute_max)
    rgba = overlay_rgba(index, args.colormap, args.threshold, CONTOURS if args.contours else HEATMAP)
    rgb = blend(default_display(image), rgba, args.alpha)
    label = engine.labels[shown]
    print(f"heat map for {label} — p = {float(probabilities[shown]):.2f}  "
          f"({METHOD_LABELS[args.method]}, layer {args.layer or engine.default_layer}, model {engine.name})",
          flush=True)
    log.info("overlay for %s: %s", image.path, dict(zip(engine.labels, map(float, probabilities))))
    return rgb


def add_caption_band(gray: np.ndarray, caption: str = READ_FIRST_CAPTION) -> np.ndarray:
    """`gray` (8-bit, 2-D) with a dark band below it holding `caption`; the image rows are unchanged."""
    import cv2
    import numpy as np

    width = gray.shape[1]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.6
    (text_width, text_height), baseline = cv2.getTextSize(caption, font, scale, 1)
    if text_width > width - 12:   # a narrow image: shrink the text to fit
        scale *= max(width - 12, 1) / text_width
        (text_width, text_height), baseline = cv2.getTextSize(caption, font, scale, 1)
    band = np.full((text_height + baseline + 14, width), CAPTION_BAND_GRAY, np.uint8)
    cv2.putText(band, caption, (6, 7 + text_height), font, scale, CAPTION_TEXT_GRAY, 1, cv2.LINE_AA)
    return np.vstack([gray, band])


def fit_longest_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an 8-bit image so its longest side is `size` pixels, keeping the aspect ratio."""
    import cv2

    rows, columns = image.shape[:2]
    scale = size / max(rows, columns)
    new_rows = max(1, round(rows * scale))
    new_columns = max(1, round(columns * scale))
    if (new_rows, new_columns) == (rows, columns):
        return image
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (new_columns, new_rows), interpolation=interpolation)


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode by the file's suffix (PNG when it has none) and write; works with any path."""
    import cv2

    suffix = path.suffix.lower() or ".png"
    if suffix not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        raise CliError(f"{printable_name(path.name)}: cannot write {printable_name(suffix)} files; use .png")
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise CliError(f"{printable_name(path.name)}: the image could not be encoded as {printable_name(suffix)}")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as exc:
        raise CliError(f"{printable_name(path.name)}: cannot write the output file ({exc.strerror or exc})") from exc


def _configure_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="DICOM, PNG, JPEG, TIFF or BMP file")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output image (PNG; .jpg/.tif/.bmp also work)")
    parser.add_argument("--frame", type=frame_index, default=0,
                        help="frame of a multi-frame file, counted from 0 (default 0)")
    parser.add_argument("--size", type=positive_int, default=None, metavar="PX",
                        help="scale so that the longest side is PX pixels (aspect ratio kept)")
    add_overlay_arguments(parser)


@subcommand("render", help="write the image as the viewer first shows it (8-bit gray PNG)",
            configure=_configure_render)
def run_render(args: argparse.Namespace) -> int:
    """Load, apply the default window and polarity (imaging.default_display), resize, write.

    Risky files (DICOM, TIFF, huge rasters) decode in a killable child with the viewer's deadline
    and memory cap (`core.decode_pool`), so a hostile file ends in one line, not a hang."""
    from cxrviewer.core.decode_pool import load_image_isolated
    from cxrviewer.core.imaging import default_display

    image = load_image_isolated(args.input, frame=args.frame, pool="view")
    read_first = overlay_requested(args) and args.read_first
    if overlay_requested(args) and not read_first:
        import cv2

        display = cv2.cvtColor(render_with_overlay(image, args), cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    else:
        display = default_display(image)     # read first: the trainee sees the film alone
    if args.size is not None:
        display = fit_longest_side(display, args.size)
    if read_first:
        display = add_caption_band(display)
        print(READ_FIRST_CAPTION.replace(" - ", " — "), flush=True)
    write_image(args.output, display)
    log.info("rendered %s -> %s (%s)", args.input, args.output, "x".join(map(str, display.shape)))
    return EXIT_OK
