# One-command workflows. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The exact torch build installed first (a CPU wheel on the course machines). GPU users:
#   make setup TORCH_SPEC="torch"   (or any CUDA build; the package accepts any torch >= 2.1)
TORCH_SPEC ?= torch==2.13.0

.PHONY: help setup test test-fast lab bench clean

help:
	@echo "make setup      create $(VENV) with torch ($(TORCH_SPEC)) and seminar_lib[dev]"
	@echo "make test       run the whole test suite (unit, doctests, notebooks when present)"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make lab        start JupyterLab in notebooks/"
	@echo "make bench      run the benchmark scripts under bench/"

setup: $(BIN)/python
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (recsys course)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

test:
	TQDM_DISABLE=1 $(BIN)/python -m pytest

test-fast:
	TQDM_DISABLE=1 $(BIN)/python -m pytest -m "not slow and not gpu and not network"

lab:
	cd notebooks && ../$(BIN)/jupyter lab

bench:
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
