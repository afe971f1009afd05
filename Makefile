# cxrviewer — two commands on a fresh machine:
#   make run    create .venv if missing, install, launch the viewer
#   make test   create .venv if missing, install dev extras + Debian packages for GUI tests, run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test system-deps package bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m cxrviewer

system-deps:
	bash tools/install-system-deps.sh

test: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

package: $(STAMP)
	$(PY) -m pip install --quiet "pyinstaller>=6.5"
	$(PY) -m PyInstaller --noconfirm --clean build_spec.spec

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf build dist .pytest_cache
