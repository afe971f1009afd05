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
