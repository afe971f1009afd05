"""Run every benchmark in one process and print a table (or, with --json, one JSON object).

    python bench/run.py                 # full sizes (≈ 10–20 min on 2 busy cores)
    python bench/run.py --quick         # tiny sizes, for the smoke test (no meaningful timings)
    python bench/run.py --json --model resources/models/pneumonia3

Each figure is the median of several runs after warm-up; each ratio is taken against a
baseline measured in the same run, round by round (see bench/timing.py), so it stays
meaningful on a loaded machine where absolute times do not. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import Timing, paired_ratio  # noqa: E402

SECTIONS = ("startup", "ai", "dicom", "overlay", "model", "folder", "train", "memory")
FIGURES: dict[str, str] = {   # name → unit, in table order
    "window_shown_s": "s",
    "window_shown_frozen_s": "s",
    "import_tensorflow_s": "s",
    "ai_ready_s": "s",
    "tensorflow_ready_s": "s",
    "layer_change_s": "s",
    "model_switch_s": "s",
    "max_gui_stall_ms": "ms",
    "quit_s": "s",
    "bundle_mb": "MiB",
    "forward_ms": "ms",
    "viewer_forward_ms": "ms",
    "predict_cam_ms": "ms",
    "onnxruntime_ms": "ms",
    "cam_index_image_ms_3000px": "ms",
    "recolour_ms_3000px": "ms",
    "viewer_recolour_ms_3000px": "ms",
    "reblend_ms_3000px": "ms",
    "memcpy_ms_3000px": "ms",
    "opacity_change_recolours": "count",
    "dicom_open_ms": "ms",
    "dicom_pixel_array_ms": "ms",
    "dicom_fastest_plugin_ms": "ms",
    "predict_folder_img_per_s": "img/s",
    "batched_forward_img_per_s": "img/s",
    "predict_startup_s": "s",
    "train_step_img_per_s": "img/s",
    "fit_img_per_s": "img/s",
    "rss_first_mb": "MiB",
    "rss_after_images_mb": "MiB",
    "rss_growth_mb": "MiB",
}
RATIOS: dict[str, str] = {    # name → what it divides
    "window_shown_vs_import_tensorflow": "launch→painted / import tensorflow",
    "ai_ready_vs_import_tensorflow": "launch→first prediction drawn (bundled model) / import tensorflow",
    "predict_cam_vs_forward": "run_request (preprocess+predict+Grad-CAM) / bare forward",
    "forward_vs_onnxruntime": "viewer forward (ModelEngine.predict) / bare ONNX Runtime session",
    "reblend_vs_memcpy": "recolour+blend / copy of the RGBA buffer",
    "viewer_recolour_vs_memcpy": "viewer threshold/colour change / copy of the full-size RGBA buffer",
    "dicom_open_vs_decode": "load_image / dcmread().pixel_array",
    "dicom_open_vs_fastest_decode": "load_image / fastest plugin decode",
    "predict_folder_vs_batched_forward": "cxrviewer predict img/s / bare batched forward img/s",
    "train_step_vs_fit": "trainer pipeline img/s / plain model.fit img/s",
}
TARGETS: dict[str, tuple[str, float]] = {
    "window_shown_s": ("<", 1.5),
    "ai_ready_vs_import_tensorflow": ("<=", 1.0),
    "layer_change_s": ("<=", 3.0),
    "model_switch_s": ("<=", 6.0),
    "max_gui_stall_ms": ("<=", 50.0),
    "quit_s": ("<=", 1.0),
    "predict_cam_vs_forward": ("<=", 1.3),
    "forward_vs_onnxruntime": ("<=", 1.5),
    "opacity_change_recolours": ("==", 0),
    "viewer_recolour_ms_3000px": ("<=", 15.0),
    "recolour_ms_3000px": ("<=", 15.0),
    "dicom_open_vs_decode": ("<=", 1.3),
    "predict_folder_vs_batched_forward": (">=", 0.8),
    "rss_growth_mb": ("<", 300.0),
}


@dataclass(frozen=True)
class Settings:
    quick: bool
    runs: int
    startup_runs: int
    overlay_size: int
    folder_images: int
    folder_runs: int
    memory_images: int
    memory_size: int
    request_image_size: int
    train_input_size: int
    train_steps: int
    train_batch: int
    train_runs: int

    @classmethod
    def make(cls, quick: bool, repeat: int | None) -> Settings:
        if quick:
            return cls(True, repeat or 3, repeat or 1, 300, 6, 1, 6, 256, 256, 32, 2, 4, 1)
        return cls(False, repeat or 15, repeat or 5, 3000, 200, 2, 200, 2000, 2000, 64, 4, 8, 2)


class Report:
    """Collects figures, ratios, notes and skip reasons; renders the table and the JSON."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.figures: dict[str, float | None] = dict.fromkeys(FIGURES)
        self.ratios: dict[str, float | None] = dict.fromkeys(RATIOS)
        self.ratios_best: dict[str, float | None] = dict.fromkeys(RATIOS)
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        self.config: dict[str, Any] = {}

    def figure(self, name: str, value: float | None) -> None:
        assert name in FIGURES, name
        self.figures[name] = None if value is None else float(value)

    def ratio(self, name: str, candidate: Timing, baseline: Timing) -> None:
        """candidate/baseline: the median of same-round ratios, and the ratio of the best runs."""
        assert name in RATIOS, name
        value = paired_ratio(candidate, baseline)
        best = candidate.best / baseline.best if baseline.best > 0 else math.nan
        self.ratios[name] = float(value) if math.isfinite(value) else None
        self.ratios_best[name] = float(best) if math.isfinite(best) else None

    def skip(self, names: list[str], reason: str) -> None:
        for name in names:
            self.skipped[name] = reason

    def judged(self, name: str) -> str:
        if name not in TARGETS or self.settings.quick:
            return ""
        value = self.figures.get(name, self.ratios.get(name))
        if value is None:
            return "n/a"
        op, limit = TARGETS[name]
        ok = {"<": value < limit, "<=": value <= limit, ">=": value >= limit, "==": value == limit}[op]
        return "ok" if ok else "MISSED"

    def as_json(self) -> dict[str, Any]:
        return {
            "machine": machine(),
            "settings": self.settings.__dict__,
            "config": self.config,
            "figures": self.figures,
            "ratios": self.ratios,
            "ratios_best": self.ratios_best,
            "targets": {name: f"{op} {limit:g}" for name, (op, limit) in TARGETS.items()},
            "verdicts": {name: self.judged(name) for name in TARGETS} if not self.settings.quick else {},
            "skipped": self.skipped,
            "notes": self.notes,
        }

    def table(self) -> str:
        rows = [("figure", "value", "unit", "target", "")]
        for name, unit in FIGURES.items():
            rows.append((name, _fmt(self.figures[name]), unit, _target(name), self.judged(name)))
        rows.append(("", "", "", "", ""))
        rows.append(("ratio", "median", "best", "target", ""))
        for name in RATIOS:
            rows.append((name, _fmt(self.ratios[name]), _fmt(self.ratios_best[name]), _target(name),
                         self.judged(name)))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        m = machine()
        head = [f"cxrviewer benchmarks ({'QUICK: tiny sizes, timings meaningless' if self.settings.quick else 'full'})",
                f"{m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, TF {m['tensorflow']}"]
        tail = [f"{name}: skipped — {reason}" for name, reason in self.skipped.items()]
        tail += [f"note: {note}" for note in self.notes]
        tail += [f"{name}: {meaning}" for name, meaning in RATIOS.items()]
        return "\n".join(head + [""] + lines + [""] + tail)


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value == int(value) and abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}"


def _target(name: str) -> str:
    if name not in TARGETS:
        return ""
    op, limit = TARGETS[name]
    return f"{op} {limit:g}"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    memory = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
        with open("/proc/meminfo", encoding="utf-8") as handle:
            kib = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal"))
            memory = round(kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    versions = {}
    for module in ("tensorflow", "keras", "onnxruntime"):
        loaded = sys.modules.get(module)
        versions[module] = getattr(loaded, "__version__", None) if loaded else None
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_gib": memory, "python": platform.python_version(),
            "platform": platform.platform(), **versions}


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ sections

def run_startup(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import startup

    result = startup.run(settings.startup_runs)
    report.config["window_shown"] = result.how
    report.figure("window_shown_s", result.window.median)
    report.figure("import_tensorflow_s", result.import_tensorflow.median)
    report.ratio("window_shown_vs_import_tensorflow", result.window, result.import_tensorflow)
    if result.tensorflow_loaded_before_paint:
        report.notes.append("TensorFlow was already imported when the window first painted (it must not be)")
    report.config["tensorflow_loaded_before_paint"] = result.tensorflow_loaded_before_paint
    if result.frozen_window is not None:
        report.figure("window_shown_frozen_s", result.frozen_window.median)
    else:
        report.skip(["window_shown_frozen_s"], result.frozen_skip_reason)


def run_ai(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import ai_session

    result = ai_session.run(max(1, settings.startup_runs // 2) if not settings.quick else 1)
    report.figure("ai_ready_s", result.ai_ready.median)
    report.figure("tensorflow_ready_s", result.tensorflow_ready.median)
    report.figure("layer_change_s", result.layer_change.median)
    report.figure("model_switch_s", result.model_switch.median)
    report.figure("max_gui_stall_ms", result.max_gui_stall_ms)
    report.figure("quit_s", result.quit.median)
    report.ratio("ai_ready_vs_import_tensorflow", result.ai_ready, result.import_tensorflow)
    report.config["ai_session_image"] = result.image
    report.config["gui_stall_ms_by_phase"] = {k: round(v, 1) for k, v in result.stall_by_phase_ms.items()}
    if result.gui_imported_tensorflow:
        report.notes.append("the GUI process imported TensorFlow during the AI session (it must not)")
    bundle = ROOT / "dist" / "cxrviewer"
    if bundle.is_dir():
        report.figure("bundle_mb", sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 2**20)
    else:
        report.skip(["bundle_mb"], "no dist/cxrviewer: run `make package` first")


def run_dicom(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import dicom_bench
    from bench.data import shared_dicom

    path = None if settings.quick else shared_dicom()
    if path is None:
        path = dicom_bench.write_synthetic_dicom(scratch / "synthetic.dcm", 256 if settings.quick else 2000)
        report.notes.append(f"DICOM figures use a synthetic uncompressed file ({path.name}), not ../shared")
    result = dicom_bench.run(path, settings.runs)
    timings = result.timings
    report.figure("dicom_open_ms", timings["open"].median * 1e3)
    report.figure("dicom_pixel_array_ms", timings["pixel_array"].median * 1e3)
    report.figure("dicom_fastest_plugin_ms", timings["fastest_plugin"].median * 1e3)
    report.ratio("dicom_open_vs_decode", timings["open"], timings["pixel_array"])
    report.ratio("dicom_open_vs_fastest_decode", timings["open"], timings["fastest_plugin"])
    report.config["dicom_file"] = result.file
    report.config["dicom_fastest_plugin"] = result.fastest_plugin


def run_overlay(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import overlay_bench

    result = overlay_bench.run(settings.overlay_size, settings.runs)
    timings = result.timings
    report.config["overlay_size_px"] = result.size
    report.figure("cam_index_image_ms_3000px", result.index_image.median * 1e3)
    report.figure("recolour_ms_3000px", timings["recolour"].median * 1e3)
    report.figure("reblend_ms_3000px", timings["reblend"].median * 1e3)
    report.figure("memcpy_ms_3000px", timings["memcpy"].median * 1e3)
    report.ratio("reblend_vs_memcpy", timings["reblend"], timings["memcpy"])
    if "viewer_recolour" in timings:
        report.figure("viewer_recolour_ms_3000px", timings["viewer_recolour"].median * 1e3)
        report.figure("opacity_change_recolours", result.opacity_recolours)
        report.ratio("viewer_recolour_vs_memcpy", timings["viewer_recolour"], timings["memcpy"])
    else:
        report.skip(["viewer_recolour_ms_3000px", "opacity_change_recolours", "viewer_recolour_vs_memcpy"],
                    result.viewer_skip_reason)


def run_model(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import model_bench
    from bench.data import shared_dicom, synthetic_xray

    path = None if settings.quick else shared_dicom()
    if path is not None:
        from cxrviewer.core.io import load_image

        image, label = load_image(path), path.name
    else:
        image = synthetic_xray(settings.request_image_size)
        label = f"synthetic {settings.request_image_size} px"
    result = model_bench.request_benchmark(model.folder, image, label, settings.runs, scratch)
    timings = result.timings
    report.config["request_image"] = f"{label} ({image.pixels.shape[1]}×{image.pixels.shape[0]})"
    report.figure("forward_ms", timings["forward"].median * 1e3)
    report.figure("viewer_forward_ms", timings["viewer_forward"].median * 1e3)
    report.figure("predict_cam_ms", timings["predict_cam"].median * 1e3)
    report.ratio("predict_cam_vs_forward", timings["predict_cam"], timings["forward"])
    if "onnxruntime" in timings:
        report.figure("onnxruntime_ms", timings["onnxruntime"].median * 1e3)
        report.ratio("forward_vs_onnxruntime", timings["viewer_forward"], timings["onnxruntime"])
    else:
        report.skip(["onnxruntime_ms", "forward_vs_onnxruntime"], result.onnx_skip_reason)


def run_folder(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import model_bench
    from bench.data import real_radiographs, write_synthetic_pngs

    files = [] if settings.quick else real_radiographs(settings.folder_images)
    source = "chest X-ray JPEGs from ../shared/data/chest_xray"
    if not files:
        size = 64 if settings.quick else 1500
        files = write_synthetic_pngs(scratch / "folder_source", settings.folder_images, size)
        source = f"synthetic {size} px PNGs"
    result = model_bench.folder_benchmark(model.folder, files, scratch, settings.folder_runs)
    report.config["folder"] = f"{len(files)} {source}, batch {model_bench.BATCH_SIZE}, via {result.path}"
    report.figure("predict_folder_img_per_s", 1.0 / result.command.median)
    report.figure("batched_forward_img_per_s", 1.0 / result.bare.median)
    report.figure("predict_startup_s", result.startup_s if math.isfinite(result.startup_s) else None)
    if not math.isfinite(result.startup_s):
        report.skip(["predict_startup_s"], "; ".join(result.notes) or "`cxrviewer predict` unavailable")
    report.ratio("predict_folder_vs_batched_forward", result.bare, result.command)
    report.notes.extend(result.notes)


def run_train(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import train_bench

    result = train_bench.run(settings.quick, settings.train_runs, settings.train_steps, settings.train_batch,
                             settings.train_input_size)
    report.config["train"] = (f"{result.description}, {result.images_per_epoch} images/epoch, "
                              f"batch {settings.train_batch}")
    report.figure("train_step_img_per_s", 1.0 / result.trainer.median)
    report.figure("fit_img_per_s", 1.0 / result.plain.median)
    report.ratio("train_step_vs_fit", result.plain, result.trainer)


def run_memory(report: Report, settings: Settings, scratch: Path, model: Any) -> None:
    from bench import memory

    result = memory.run(scratch, settings.memory_images, settings.memory_size)
    report.config["memory"] = f"{result.images} synthetic {result.size}×{result.size} PNGs via MainWindow.show_index"
    report.figure("rss_first_mb", result.rss_first_mb)
    report.figure("rss_after_images_mb", result.rss_last_mb)
    report.figure("rss_growth_mb", result.growth_mb)


RUNNERS: dict[str, Callable[[Report, Settings, Path, Any], None]] = {
    "startup": run_startup, "ai": run_ai, "dicom": run_dicom, "overlay": run_overlay, "model": run_model,
    "folder": run_folder, "train": run_train, "memory": run_memory,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and a tiny model (smoke test)")
    parser.add_argument("--model", type=Path, help="a model folder (e.g. resources/models/pneumonia3); "
                        "default: an untrained DenseNet121 at 192 px exported to a temporary folder")
    parser.add_argument("--repeat", type=int, help="timed runs per figure (default 15, quick 3)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(SECTIONS)
        if unknown:
            parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.model is not None and not (args.model / "model.json").is_file():
        parser.error(f"{args.model}: not a model folder (no model.json)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.make(args.quick, args.repeat)
    sections = args.only.split(",") if args.only else list(SECTIONS)
    report = Report(settings)
    with tempfile.TemporaryDirectory(prefix="cxrbench-") as folder:
        scratch = Path(folder)
        os.environ["CXRVIEWER_LOG_DIR"] = str(scratch / "logs")   # never the user's own log folder
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        model = None
        if {"model", "folder"} & set(sections):
            from bench.models import prepare, quiet_tensorflow

            quiet_tensorflow()
            progress("preparing the model")
            model = prepare(scratch, settings.quick, args.model)
            report.config["model"] = model.description
        for section in sections:
            progress(f"{section}…")
            started = time.perf_counter()
            RUNNERS[section](report, settings, scratch, model)
            progress(f"{section} done in {time.perf_counter() - started:.0f} s")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        print(report.table(), file=sys.stderr)   # for the person watching; stdout stays one JSON object
    else:
        print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
