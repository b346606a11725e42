# One-command workflows. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The exact torch build installed first (a CPU wheel on the course machines). GPU users:
#   make setup TORCH_SPEC="torch"   (or any CUDA build; the package accepts any torch >= 2.1)
TORCH_SPEC ?= torch==2.13.0
# The dataset cache (ML-100K is downloaded there on first use); CI sets it to the shared mirror.
export SEMINAR_DATA_DIR ?= $(HOME)/.cache/seminar_lib

.PHONY: help setup test test-fast nbval notebooks course grade grade-class release lab bench gpu-check clean

help:
	@echo "make setup      create $(VENV) with torch ($(TORCH_SPEC)) and seminar_lib[dev]"
	@echo "make test       run the whole test suite (unit, doctests, notebooks when present)"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make nbval      re-execute the committed notebooks and compare their outputs (nbval)"
	@echo "make notebooks  regenerate the committed notebooks' outputs (smoke profile, CPU)"
	@echo "make course     the instructor's batch run of every notebook + leaderboard (ARGS=\"--profile full --device cuda\")"
	@echo "make grade      grade a submission in a sandbox: SUBMISSION=path ASSIGNMENT=hw1_metrics_knn"
	@echo "make grade-class  grade a class: CLASS=dir ASSIGNMENT=name [WORKERS=2] [OUTPUT=dir]"
	@echo "make release    the student copy of the repository (without homework/*/private) in RELEASE=dir"
	@echo "make lab        start JupyterLab at the repository root, on START.md"
	@echo "make bench      run the benchmark scripts under bench/ (bench/scale.py: its ML-1M size; KION: see README)"
	@echo "make gpu-check  on a CUDA machine: pytest -m gpu, the smoke course on cuda, epochs CUDA vs CPU (< 10 min)"

setup: $(BIN)/python
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	@# the notebooks' kernel, with the CPU code paths pinned for outputs that reproduce on any x86-64 machine
	$(BIN)/python -m seminar_lib.cpu_kernels --install-kernel
	@# JupyterLab's defaults for students (no news pop-up, progress in the status bar, Markdown rendered)
	$(BIN)/python -m seminar_lib.lab_settings
	@# build matplotlib's font cache now, not inside the first notebook (it would print to stderr there)
	$(BIN)/python -c "import matplotlib.pyplot"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# nbval re-executes every committed notebook and compares its outputs with the committed ones
NBVAL := -p no:python --nbval --nbval-current-env --nbval-sanitize-with seminar_lib/nbval_sanitize.cfg \
	--nbval-cell-timeout 900 -p no:cacheprovider -o addopts="" -o testpaths=""

# Two workers: every notebook and model test pins torch to one thread, so two run side by side on two cores.
WORKERS ?= 2

test:
	TQDM_DISABLE=1 $(BIN)/python -m pytest -n $(WORKERS)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(MAKE) --no-print-directory nbval; fi

# one process per notebook: xdist hands each worker two notebooks at the start, so with two workers the three long
# ones (04-06) could share one; each kernel pins torch to one thread, and the two cores are shared among them
NBVAL_WORKERS ?= $(words $(wildcard notebooks/*.ipynb))

nbval:
	TQDM_DISABLE=1 $(BIN)/python -m pytest $(NBVAL) -n $(NBVAL_WORKERS) --dist loadscope notebooks/

# the course notebooks, then the homework reference solutions' notebooks (the grader's full-marks fixtures)
notebooks:
	TQDM_DISABLE=1 $(BIN)/python -m seminar_lib.course run --write-back
	TQDM_DISABLE=1 $(BIN)/python -m seminar_lib.course write-back homework/*/private/reference/*.ipynb

test-fast:
	TQDM_DISABLE=1 $(BIN)/python -m pytest -n $(WORKERS) -m "not slow and not gpu and not network"

course:
	$(BIN)/python -m seminar_lib.course run $(ARGS)

# The paths reach the recipes as environment variables and are quoted there ("$$SUBMISSION"), never spliced
# into the command line by make, so a name such as 'x`touch INJECTED`' is a path, not a command.
export SUBMISSION ASSIGNMENT CLASS OUTPUT WORKERS

grade:
	@test -n "$$SUBMISSION" -a -n "$$ASSIGNMENT" || { echo "usage: make grade SUBMISSION=path ASSIGNMENT=name"; exit 2; }
	@test -e "$$SUBMISSION" -o -L "$$SUBMISSION" || { echo "make grade: no submission at '$$SUBMISSION'"; exit 2; }
	$(BIN)/python -m seminar_lib.grade "$$SUBMISSION" --assignment "$$ASSIGNMENT" $(ARGS)

grade-class:
	@test -n "$$CLASS" -a -n "$$ASSIGNMENT" || { echo "usage: make grade-class CLASS=dir ASSIGNMENT=name [WORKERS=2] [OUTPUT=dir]"; exit 2; }
	@test -d "$$CLASS" || { echo "make grade-class: no folder at '$$CLASS'"; exit 2; }
	$(BIN)/python -m seminar_lib.grade --class "$$CLASS" --assignment "$$ASSIGNMENT" --workers "$$WORKERS" $${OUTPUT:+--output "$$OUTPUT"} $(ARGS)

RELEASE ?= ../recsys-course-student
release:
	mkdir -p "$(RELEASE)" && git archive --format=tar HEAD | tar -x -C "$(RELEASE)"
	@echo "student copy written to $(RELEASE) (homework/*/private excluded)"

# JupyterLab at the repository root (notebooks/, homework/, your work/ and the library's sources), on START.md.
# As root (a container), Jupyter refuses to start without --allow-root.
lab:
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/START.md \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

# every benchmark script (bench/rectools_metrics.py runs inside bench/metrics.py, in a RecTools environment;
# bench/gpu_epochs.py needs CUDA and runs in gpu-check); RECTOOLS_PYTHON=/tmp/rectools-venv/bin/python adds RecTools
RECTOOLS_PYTHON ?=
bench:
	@for script in bench/*.py; do \
		case $$script in bench/rectools_metrics.py|bench/gpu_epochs.py) continue;; esac; \
		args=""; [ $$script = bench/metrics.py ] && [ -n "$(RECTOOLS_PYTHON)" ] && args="--rectools-python $(RECTOOLS_PYTHON)"; \
		echo "== $$script $$args"; TQDM_DISABLE=1 $(BIN)/python $$script $$args || exit 1; done

gpu-check:
	PY=$(BIN)/python bench/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
