"""Headless subcommands that need the model or the window: `predict`, `screenshot`, and the
`--overlay` part of `render`. Each module registers itself with `cxrviewer.cli.subcommand`
when `cxrviewer.cli` imports it; heavy imports (TensorFlow, Qt) stay inside run functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cxrviewer.core.model.engine import ModelEngine


def load_engine(name_or_folder: str | None) -> "ModelEngine":
    """The model to run: a registered name, a model folder, or (None) the default model — in the
    same engine as the viewer's worker (ONNX Runtime first, TensorFlow for other layers).

    Every failure is a CxrError with a one-line reason, so the command exits with status 2.
    """
    from cxrviewer.cli import CliError
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.registry import default_model_name, models_root, resolve_model_folder, scan_models

    if not name_or_folder:
        scan = scan_models()
        name_or_folder = default_model_name([entry.card for entry in scan.models])
        if not name_or_folder:
            details = "; ".join(problem.message for problem in scan.problems)
            raise CliError(f"no AI models found in {models_root()}" + (f" ({details})" if details else ""))
    try:
        folder = resolve_model_folder(name_or_folder)
    except LookupError as exc:
        raise CliError(str(exc.args[0] if exc.args else exc)) from exc
    return ModelEngine.open(folder, trace_lazily=True)
