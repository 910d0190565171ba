# Two commands on a fresh machine:  make run  (open the app)  ·  make test  (the whole suite, headless)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch comes first, pinned. From the public index on Linux x86_64 this is the CUDA build (the torch
# wheel and ~18 NVIDIA library wheels, roughly 3 GB): right for an NVIDIA GPU. CPU-only Linux machine:
#   make run TORCH='torch==2.13.0 --index-url <PyTorch's CPU wheel index, the URL ending in /whl/cpu>'
# (about 0.2 GB). macOS and Windows get a CPU (+ Apple GPU) build from the public index anyway.
TORCH  ?= torch==2.13.0

.PHONY: run test test-quick lint bench screenshot bundle clean

$(BIN)/python:
	@$(PYTHON) scripts/check_system.py --before-venv
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
	@$(BIN)/python scripts/check_system.py
	$(BIN)/python -m desktop_app

test: $(VENV)/.installed-test
	@$(BIN)/python scripts/check_system.py --offscreen
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

# The inner loop while working: everything but the tests marked slow (CI runs them all, with `make test`)
test-quick: $(VENV)/.installed-test
	@$(BIN)/python scripts/check_system.py --offscreen
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" --durations=10

lint: $(VENV)/.installed-test
	$(BIN)/ruff check desktop_app tests

bench: $(VENV)/.installed
	$(BIN)/diffuse-studio bench

# Pictures of the real window, Create and Gallery tabs, on a 1366x768 virtual screen with a window
# manager (apt-get install -y xvfb openbox): out/screenshot.png, out/screenshot-gallery.png
screenshot: $(VENV)/.installed
	@$(BIN)/python scripts/check_system.py
	PYTHON=$(BIN)/python scripts/screenshot.sh out/screenshot.png

# The one-folder PyInstaller bundle with the built-in model: dist/diffuse-studio/ (see packaging/README.md)
bundle: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[bundle]"
	PYTHON=$(BIN)/python bash packaging/build.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
