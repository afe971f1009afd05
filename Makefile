# cxrviewer — two commands on a fresh machine:
#   make run    create .venv if missing, install, launch the viewer
#   make test   create .venv if missing, install dev extras + Debian packages for GUI tests, run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint system-deps package package-check bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m cxrviewer

system-deps:
	bash tools/install-system-deps.sh

# ruff (style, imports, likely bugs), mypy (strict on core/ and state/), import-linter (the layers
# cli > commands > ui > state > teaching > core; core and the trainer never import Qt)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache   # its cache has reported imports already deleted

test: $(STAMP) system-deps lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# One-folder app in dist/cxrviewer/ (run dist/cxrviewer/cxrviewer). Bundles resources/models/*;
# CXRVIEWER_BUNDLE_MODELS_DIR=DIR bundles the models in DIR instead (test builds only).
# Writes dist/cxrviewer/THIRD_PARTY_LICENSES and fails on GPL-only software.
package: $(STAMP)
	$(PY) -m pip install --quiet "pyinstaller>=6.5"
	$(PY) -m PyInstaller --noconfirm --clean build_spec.spec
	@du -sh dist/cxrviewer

# Build, then run the frozen self-test, then the frozen tests (self-test with networking
# blocked, GUI first paint, bundle contents and licences).
package-check: package
	QT_QPA_PLATFORM=offscreen dist/cxrviewer/cxrviewer selftest
	CXRVIEWER_TEST_FROZEN=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider tests/packaging/test_frozen.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) bench/run.py

clean:
	rm -rf build dist .pytest_cache
