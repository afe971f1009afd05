"""The import-linter contracts in pyproject.toml hold (core never imports Qt, the UI or the trainer)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    command = [str(lint_imports)] if lint_imports.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run(
        [*command, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert "include_external_packages=True" not in output, (
        "pyproject.toml [tool.importlinter] needs `include_external_packages = true` "
        "because the contracts forbid external packages (PySide6)"
    )
    assert result.returncode == 0, output
    assert "broken" not in output.split("Contracts:")[-1].replace("0 broken", ""), output


def test_the_layers_contract_is_there_and_nothing_allows_indirect_imports():
    import pytest

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contracts = config["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert [(c["containers"], c["layers"]) for c in layers] == [
        (["cxrviewer"], ["cli", "commands", "ui", "state", "teaching", "core"])]
    assert not any(c.get("allow_indirect_imports") for c in contracts)
    core = next(c for c in contracts if c.get("source_modules") == ["cxrviewer.core"])
    assert {"PySide6", "cxrviewer.ui", "trainer"} <= set(core["forbidden_modules"])
    trainer = next(c for c in contracts if c.get("source_modules") == ["trainer"])
    assert {"PySide6", "cxrviewer.ui", "cxrviewer.state", "cxrviewer.commands", "cxrviewer.cli"} <= \
        set(trainer["forbidden_modules"])


def _imports_of(folder: str, forbidden: tuple[list[str], ...]) -> list[str]:
    """"file: module" for every import (also inside functions) under `folder` of a forbidden package."""
    import ast

    problems = []
    for path in sorted((REPO_ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            problems += [f"{path.relative_to(REPO_ROOT)}: {name}" for name in names if name.split(".")[:2] in forbidden]
    return problems


def test_core_never_imports_teaching_state_or_commands():
    """The layers contract's core rule, read straight from the sources (no import-linter needed)."""
    assert _imports_of("cxrviewer/core", (["cxrviewer", "teaching"], ["cxrviewer", "state"], ["cxrviewer", "commands"],
                                          ["cxrviewer", "ui"], ["cxrviewer", "cli"])) == []


def test_the_trainer_never_imports_the_commands_the_ui_or_the_state():
    """The trainer builds on core alone (it scores external data with core.model.batch, not `predict`)."""
    assert _imports_of("trainer", (["cxrviewer", "commands"], ["cxrviewer", "ui"], ["cxrviewer", "state"],
                                   ["cxrviewer", "cli"])) == []
