"""Sanity checks for a heat map, on demand: does it depend on the model, and is it on the lungs?

1. Model randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS
   2018). The top `top_k` layers that carry weights — the Dense head, then the last conv
   block going down — are re-initialised as a fresh layer would be (kernels Glorot-uniform,
   biases 0, BatchNorm gamma 1 / beta 0 / moving mean 0 / moving variance 1) for the
   duration of the test, the same map is recomputed for the same class, and the Spearman
   rank correlation between the real and the randomised map is reported. A map that
   explains the MODEL changes a lot (low correlation); a map that barely changes is driven
   by the image (edges, contrast), not by what the model learned. Computed with the same
   `InferenceEngine.predict_and_cam` as the overlay, so the test checks the map shown.

2. Heat outside the lungs: the share of CAM mass that falls outside a rough lung mask — a
   "shortcut" warning when a model looks at labels, borders, shoulders or devices. The mask
   is deliberately simple (numpy + OpenCV, no learned segmentation); see `lung_mask`. It
   excludes the heart and mediastinum, so retrocardiac disease counts as "outside": read
   the share as a warning sign, not a measurement.

3. Honest display (`heatmap_gate`): a map of a class the model itself finds unlikely is
   hidden by default — per-image normalisation would make it look as hot as a confident
   one — with a one-click "show anyway".

TensorFlow/Keras are imported lazily, inside the functions that need them.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from cxrviewer.core.imaging import default_display
from cxrviewer.core.types import XrayImage, readonly
from cxrviewer.core.xai.cam import CAM, GRADCAM

if TYPE_CHECKING:
    from cxrviewer.core.model.runtime import InferenceEngine, LoadedModel

DEFAULT_TOP_K = 6              # DenseNet121: Dense head, final BN, conv5_block16 (2_conv, 1_bn, 1_conv, 0_bn)
SIMILAR_RANK_CORRELATION = 0.5  # |rho| at or above this: the map barely depends on the top layers
MASK_WORKING_SIZE = 256        # the lung mask is computed at most this many pixels on the long side
OUTSIDE_SHARE_WARNING = 0.5    # more than half the heat outside the lungs: shortcut warning
_INPUT_LAYERS = ("gray_to_rgb", "to_unit", "imagenet_norm")   # fixed preprocessing, never randomised


# ------------------------------------------------------------------------ honest display

@dataclass(frozen=True)
class HeatmapGate:
    """Whether a class's heat map is shown by default, and the sentence that says why.

    The model's call is `core.model_call.model_call` (the card's operating threshold on its
    score: the pneumonia probability for the pneumonia models, p(COVID-19) for covid3, else
    the top class). Only the called class's map is shown by default: any other map explains a
    class the model does not predict.
    """

    class_label: str
    probability: float
    threshold: float
    call: str = ""
    score_name: str = ""
    score: float = 0.0
    reason: str = ""

    @property
    def shown_by_default(self) -> bool:
        return self.class_label == self.call

    @property
    def message(self) -> str:
        p = f"p({self.class_label}) = {self.probability:.2f}"
        if self.shown_by_default:
            return f"{p}: the model's call ({self.reason})."
        return (f"Heat map hidden: {p}, but the model calls {self.call} ({self.reason}), so the map would "
                "explain a class the model does not predict.")

    @property
    def shown_anyway_message(self) -> str:
        """The note beside a map shown although it is not of the model's call."""
        return (f"Shown anyway: this map explains {self.class_label} (p = {self.probability:.2f}), but the model "
                f"calls {self.call} ({self.reason}).")


def operating_call(labels: Sequence[str], probabilities: Sequence[float], threshold: float) -> tuple[str, str, float]:
    """(call, score name, score): the model's decision at its operating threshold (`model_call`)."""
    from cxrviewer.core.model_call import model_call

    decided = model_call(labels, probabilities, threshold)
    return decided.label, decided.score_name, decided.score


def heatmap_gate(labels: tuple[str, ...] | list[str], probabilities: tuple[float, ...] | list[float],
                 class_index: int, operating_threshold: float) -> HeatmapGate:
    """The display decision for the map of class `class_index` (the card's operating threshold)."""
    from cxrviewer.core.model_call import model_call

    if not 0 <= class_index < len(labels) or len(labels) != len(probabilities):
        raise ValueError(f"class index {class_index} does not fit {len(labels)} labels / {len(probabilities)} "
                         "probabilities")
    decided = model_call(labels, probabilities, operating_threshold)
    return HeatmapGate(str(labels[class_index]), float(probabilities[class_index]), float(operating_threshold),
                       decided.label, decided.score_name, decided.score, decided.reason)


# ------------------------------------------------------------------------ rank correlation

def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(values)]))
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two equally shaped maps (ties averaged); None if one is flat.

    Pearson's r of the average ranks — the same number as scipy.stats.spearmanr, without
    making SciPy a run-time dependency of the viewer.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps differ in size: {np.shape(a)} vs {np.shape(b)}")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else None


# ------------------------------------------------------------------------ randomisation

def top_weighted_layers(model: Any, top_k: int = DEFAULT_TOP_K) -> tuple[str, ...]:
    """Names of the last `top_k` layers that carry weights, from the output down."""
    if top_k < 1:
        raise ValueError("randomise at least one layer")
    names: list[str] = []
    for layer in reversed(model.layers):
        if layer.weights and layer.name not in _INPUT_LAYERS:
            names.append(layer.name)
            if len(names) == top_k:
                break
    return tuple(names)


def _fresh_value(path: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """What a newly built Keras layer would hold in a variable called `path`."""
    leaf = path.rsplit("/", 1)[-1]
    if leaf in ("kernel", "depthwise_kernel") and len(shape) >= 2:
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)
    if leaf in ("gamma", "moving_variance"):
        return np.ones(shape, np.float32)
    if leaf in ("bias", "beta", "moving_mean"):
        return np.zeros(shape, np.float32)
    return (rng.standard_normal(shape) * 0.05).astype(np.float32)


@contextmanager
def randomised_weights(model: Any, layer_names: tuple[str, ...], seed: int = 0) -> Iterator[None]:
    """Re-initialise the named layers of `model` in place for the body; restore them after.

    In place rather than on a clone, so the engine's traced functions (which read the
    variables) compute the randomised map without a second model and a second trace —
    seconds instead of tens of seconds for a DenseNet on a CPU. The original weights are
    put back even when the body raises.
    """
    rng = np.random.default_rng(seed)
    saved: list[tuple[Any, np.ndarray]] = []
    try:
        for name in layer_names:
            for variable in model.get_layer(name).weights:
                saved.append((variable, np.array(variable.numpy(), copy=True)))
                shape = tuple(int(d) for d in variable.shape)
                variable.assign(_fresh_value(variable.path, shape, rng))
        yield
    finally:
        for variable, value in saved:
            variable.assign(value)


@dataclass(frozen=True)
class RandomisationResult:
    """Real vs. top-layers-randomised map for one image, class, method and layer."""

    model_name: str
    class_index: int
    class_label: str
    method: str
    layer: str
    randomised_layers: tuple[str, ...]
    rank_correlation: float | None      # Spearman; None when a map is flat (all zero)
    real_cam: np.ndarray
    randomised_cam: np.ndarray

    @property
    def similar(self) -> bool | None:
        """True when the map barely changed — the warning sign of the test."""
        if self.rank_correlation is None:
            return None
        return abs(self.rank_correlation) >= SIMILAR_RANK_CORRELATION

    @property
    def message(self) -> str:
        n = len(self.randomised_layers)
        if self.rank_correlation is None:
            return (f"With the top {n} layers randomised one of the maps is flat (empty), so no rank "
                    "correlation can be computed.")
        rho = self.rank_correlation
        if self.similar:
            return (f"Warning: with the top {n} layers randomised the map hardly changes (Spearman "
                    f"ρ = {rho:.2f}). It may show image structure rather than what the model learned.")
        return (f"Passed: with the top {n} layers randomised the map changes a lot (Spearman "
                f"ρ = {rho:.2f}), as a map that depends on the model should.")


def randomisation_test_on_input(
    loaded: LoadedModel,
    x: np.ndarray,
    class_index: int | None = None,
    layer: str | None = None,
    method: str = GRADCAM,
    top_k: int = DEFAULT_TOP_K,
    seed: int = 0,
    engine: InferenceEngine | None = None,
) -> RandomisationResult:
    """Run the cascading randomisation test on one preprocessed model input (`model_input`,
    what the worker process receives).

    `engine` (the loaded model's engine, e.g. the inference worker's) is reused when given.
    The class explained is `class_index`, else the real model's top class — the same for
    both maps. Call from the thread that owns TensorFlow and this model: the weights are
    changed in place while the randomised map is computed.
    """
    from cxrviewer.core.model.runtime import InferenceEngine

    real_engine = engine if engine is not None else InferenceEngine(loaded)
    # CAM equals Grad-CAM × h·w at the GAP input (same ranks), and Grad-CAM takes the Dense
    # weights from the graph, so it sees the randomised head.
    method = GRADCAM if method == CAM else method
    probabilities, real_cam = real_engine.predict_and_cam(x, class_index, layer, method)
    chosen = int(np.argmax(probabilities)) if class_index is None else int(class_index)
    layer_name = layer or real_engine.default_layer
    names = top_weighted_layers(loaded.model, top_k)
    with randomised_weights(loaded.model, names, seed):
        _, random_cam = real_engine.predict_and_cam(x, chosen, layer_name, method)
    return RandomisationResult(
        model_name=loaded.card.name,
        class_index=chosen,
        class_label=loaded.card.labels[chosen],
        method=method,
        layer=layer_name,
        randomised_layers=names,
        rank_correlation=spearman(real_cam, random_cam),
        real_cam=readonly(np.array(real_cam, dtype=np.float32)),
        randomised_cam=readonly(np.array(random_cam, dtype=np.float32)),
    )


# ------------------------------------------------------------------------ lung mask

def _odd(n: float) -> int:
    k = max(int(round(n)), 1)
    return k if k % 2 else k + 1


def lung_mask(display_u8: np.ndarray) -> np.ndarray:
    """A rough lung mask (bool, same shape) of an 8-bit frontal chest display image.

    The method, step by step (all at ≤ MASK_WORKING_SIZE px on the long side):

    1. Gaussian blur (σ ≈ 1 % of the size) to remove noise and fine texture.
    2. Otsu's threshold T, computed from the central region only (rows and columns 10–90 %):
       lungs are the large dark areas of a frontal film with lungs-dark polarity.
    3. Dark pixels (< T) are candidates, minus the air beside the body (pixels < T/2
       connected to the border, grown by ≈ 2 %) and minus a 4 % band along the border.
    4. A morphological opening (≈ 4 % disc) cuts thin bridges such as the trachea.
    5. Keep the two largest regions with 1–40 % of the image's area whose centroid lies in
       the lung zone (columns 12–88 %, rows 10–80 %). If there is none (a low-contrast film
       where lungs and soft tissue fall in one class), repeat 3–5 once with Otsu's threshold
       of the dark class alone.
    6. Fill holes (vessels, nodules, consolidation inside the lung), then dilate by ≈ 2 % so
       the pleural edge is inside the mask.

    Checked by eye on pediatric (Kermany), adult COVID-19, adult NIH and DICOM chest films:
    usually both lungs, sometimes a strip above the clavicles too; dense consolidation
    touching the chest wall can be left out.

    Returns all-False when nothing lung-like is found (e.g. a lateral view or another body
    part). Not a segmentation for measurement: it only supports the shortcut warning.
    """
    image = np.asarray(display_u8)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {image.shape}")
    height, width = image.shape
    scale = min(1.0, MASK_WORKING_SIZE / max(height, width))
    size = (max(int(round(width * scale)), 8), max(int(round(height * scale)), 8))
    small = cv2.resize(image.astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    h, w = small.shape
    sigma = 0.01 * max(h, w)
    blurred = cv2.GaussianBlur(small, (_odd(6 * sigma), _odd(6 * sigma)), sigma)

    central = blurred[int(0.1 * h): int(0.9 * h), int(0.1 * w): int(0.9 * w)]
    threshold = _otsu(central)
    labels, candidates = _lung_candidates(blurred, threshold)
    if not candidates:   # low-contrast film: lungs merged with soft tissue; split the dark class again
        labels, candidates = _lung_candidates(blurred, _otsu(central[central < threshold]))
    mask = np.zeros((h, w), np.uint8)
    for _, index in sorted(candidates, reverse=True)[:2]:
        mask[labels == index] = 1
    if mask.any():
        mask = _fill_holes(mask)
        radius = _odd(0.02 * max(h, w))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (radius, radius)))
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of a set of 8-bit values (0 when there are none)."""
    flat = np.ascontiguousarray(values, dtype=np.uint8).reshape(1, -1)
    if flat.size == 0:
        return 0.0
    threshold, _ = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(threshold)


def _lung_candidates(blurred: np.ndarray, threshold: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Steps 3–5 of `lung_mask`: (component labels, [(area, label)] of lung-like regions)."""
    h, w = blurred.shape
    dark: np.ndarray = (blurred < threshold).astype(np.uint8)
    dark[_outside_air(blurred, 0.5 * threshold)] = 0
    band_y, band_x = max(int(0.04 * h), 1), max(int(0.04 * w), 1)
    dark[:band_y], dark[-band_y:], dark[:, :band_x], dark[:, -band_x:] = 0, 0, 0, 0
    opening = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_odd(0.04 * max(h, w)),) * 2)
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, opening)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(dark, connectivity=4)
    candidates = []
    for index in range(1, count):
        area = int(stats[index, cv2.CC_STAT_AREA])
        cx, cy = centroids[index] / (w, h)
        if 0.01 * h * w <= area <= 0.4 * h * w and 0.12 <= cx <= 0.88 and 0.1 <= cy <= 0.8:
            candidates.append((area, index))
    return labels, candidates


def _outside_air(blurred: np.ndarray, threshold: float) -> np.ndarray:
    """Very dark pixels connected to the border (air beside the body), grown by ≈ 2 %."""
    h, w = blurred.shape
    very_dark = (blurred < threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(very_dark, connectivity=4)
    air: np.ndarray = np.zeros((h, w), np.uint8)
    for index in range(1, count):
        x, y, bw, bh, _ = stats[index]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            air[labels == index] = 1
    if air.any():
        grow = _odd(0.04 * max(h, w))
        air = cv2.dilate(air, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    return air.astype(bool)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set every background pixel not connected to the border to 1."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return (mask.astype(bool) | holes).astype(np.uint8)


@dataclass(frozen=True)
class LungHeatResult:
    """How much of a heat map lies outside the rough lung mask."""

    outside_share: float | None        # 0–1; None when there is no mask or no heat
    mask_fraction: float               # share of the image the mask covers
    mask: np.ndarray                   # bool (H, W) at the image size

    @property
    def warning(self) -> bool:
        return self.outside_share is not None and self.outside_share > OUTSIDE_SHARE_WARNING

    @property
    def message(self) -> str:
        if self.mask_fraction == 0:
            return ("No lung fields were found with the simple mask (lateral view, another body part, "
                    "or an unusual image), so the heat outside the lungs was not measured.")
        if self.outside_share is None:
            return "The heat map is empty, so there is no heat to locate."
        share = f"{self.outside_share * 100:.0f} %"
        if self.warning:
            return (f"Shortcut warning: {share} of the heat lies outside the lung fields — the model may "
                    "be looking at labels, borders, shoulders, devices or the heart rather than the lungs.")
        return f"{share} of the heat lies outside the (rough) lung fields."


def heat_outside_mask(cam: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of the CAM's mass (raw values ≥ 0, bilinearly upsampled to the mask) outside `mask`."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    heat = cv2.resize(np.maximum(np.asarray(cam, np.float32), 0.0), (mask.shape[1], mask.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    total = float(heat.sum())
    if not total > 0:
        return None
    return float(heat[~mask].sum() / total)


def lung_heat_check(image: XrayImage, cam: np.ndarray) -> LungHeatResult:
    """The lung-mask heat share of `cam` on `image` (the image as shown at its default window)."""
    mask = lung_mask(default_display(image))
    return LungHeatResult(
        outside_share=heat_outside_mask(cam, mask),
        mask_fraction=float(mask.mean()),
        mask=readonly(mask),
    )
