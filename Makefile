# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   creates .venv, installs gansim, runs the main job (the SPECT demo) on the built-in data
#   make test   creates .venv, installs gansim with its test extras, runs the test suite
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of this torch lies on local disk on our machines; a bare `pip install torch`
# would download a multi-GB CUDA build. Users elsewhere get any torch>=2.2 from pyproject.toml.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test test-all bench venv install install-test clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, only when it is missing, so the pin above is what gets installed
$(VENV)/.torch: | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH_PIN)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/gansim demo spect -o demo-output --force

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

test-all: $(VENV)/.installed-test
	$(PY) -m pytest -q -m "slow or not slow"

bench: $(VENV)/.installed-test
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
