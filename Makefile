# Two commands on a fresh machine:  make run  (open the app)  ·  make test  (the whole suite, headless)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch comes first, pinned, so pip does not pick a multi-GB build the project does not need here.
# Override for a CUDA machine, e.g.:  make run TORCH='torch==2.13.0 --index-url <your CUDA wheel index>'
TORCH  ?= torch==2.13.0

.PHONY: run test test-quick lint bench screenshot bundle clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m desktop_app

test: $(VENV)/.installed-test
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

# The inner loop while working: everything but the tests marked slow (CI runs them all, with `make test`)
test-quick: $(VENV)/.installed-test
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" --durations=10

lint: $(VENV)/.installed-test
	$(BIN)/ruff check desktop_app tests

bench: $(VENV)/.installed
	$(BIN)/diffuse-studio bench

# A picture of the real window under Xvfb (apt-get install xvfb): out/screenshot.png
screenshot: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/screenshot.sh out/screenshot.png

# The one-folder PyInstaller bundle with the built-in model: dist/diffuse-studio/ (see packaging/README.md)
bundle: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[bundle]"
	PYTHON=$(BIN)/python bash packaging/build.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
