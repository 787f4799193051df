# Two commands do all the set-up: `make run` and `make test`.
# Each creates .venv with a Python >= 3.12 if missing, installs the project, then runs.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test test-slow fuzz bench lint format clean golden docs

# Find an interpreter >= 3.12 without relying on the shell's PATH order.
PYTHON_BOOT := $(shell for p in python3.13 python3.12 python3 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)

$(PY):
	@test -n "$(PYTHON_BOOT)" || { echo "critmin needs Python >= 3.12 (python3.12 or python3.13 on PATH, or pyenv 3.12)"; exit 1; }
	$(PYTHON_BOOT) -m venv $(VENV)

# `make run` installs the package alone; tests, lint and benchmarks add the dev extra (which
# includes the optional cluster launchers, Ray and Submitit, so their tests run).
# pip -qq: errors only (a clean install prints nothing); `make run` shows results, not install logs
PIP_QUIET := --quiet --quiet

$(STAMP): $(PY) pyproject.toml
	@echo "installing critmin into $(VENV) (about a minute the first time)"
	@$(PY) -m pip install $(PIP_QUIET) --upgrade pip
	@$(PY) -m pip install $(PIP_QUIET) -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	@$(PY) -m pip install $(PIP_QUIET) -e ".[dev]"
	@touch $(DEV_STAMP)

run: $(STAMP)
	$(VENV)/bin/critmin compare

test: $(DEV_STAMP)
	$(PY) -m pytest

# the slow tests (full validation scorecard, README's make-run block, bigger fuzz): CI runs them too
test-slow: $(DEV_STAMP)
	$(PY) -m pytest -m slow

fuzz: $(DEV_STAMP)  ## explore new random bad inputs (N examples; CI replays a fixed sample)
	CRITMIN_FUZZ_EXAMPLES=$${N:-300} $(PY) -m pytest -m slow tests/test_fuzz_input.py -k bigger

bench: $(DEV_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

# README.md's example outputs, regenerated from the model (docs/generate_readme.py; the
# `compare` block runs the default comparison, ~3 minutes). BLOCKS="crisis trace" for some only.
# docs/ODD.md's parameter table, regenerated from configs/parameters.csv (docs/generate_odd.py).
docs: $(STAMP)
	$(PY) docs/generate_odd.py
	$(PY) docs/generate_readme.py $(BLOCKS)
	$(PY) docs/generate_worlds.py

clean:
	rm -rf $(VENV) outputs .pytest_cache

# Regenerate the golden-output digests on purpose; the reason goes into tests/golden/CHANGELOG.md
golden: $(DEV_STAMP)
	@test -n "$(WHY)" || { echo 'usage: make golden WHY="why the numbers move"'; exit 2; }
	$(PY) tests/golden_outputs.py --why "$(WHY)"
