# Everything a fresh machine needs: `make run` (the whole pipeline on the demo data) and
# `make test`. Both create .venv and install the project first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_PERSONS ?= 50000
# The autoregressive network (`neural`), the model's default, with CART as its fallback should the
# gate refuse it (README, "The model"). FAMILY=cart runs sequential CART, FAMILY=gan our GAN.
FAMILY ?= neural
GAN_SECONDS ?= 420

export DAGSTER_HOME := $(CURDIR)/.dagster_home
export XDG_DATA_HOME := $(CURDIR)/.xdg
export DAGSTER_DISABLE_TELEMETRY := 1
export GX_ANALYTICS_ENABLED := false
export SDV_DISABLE_TELEMETRY := 1
export PYTHONUNBUFFERED := 1

.PHONY: install run test lint ui bench clean lock

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

# torch first and pinned: the pin takes the local CPU wheel; unpinned, pip pulls GBs of CUDA.
# Then every package at the version requirements.lock names, then the project itself without
# resolving again: a fresh machine gets the environment the tests passed in.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# After a change to pyproject.toml's dependencies: resolve them afresh and pin what was installed.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet torch==2.13.0
	.venv-lock/bin/python -m pip install --quiet ".[test]"
	{ echo "# Exact versions \`make install\` installs (pip install -r requirements.lock, then the project with --no-deps)."; \
	  echo "# Regenerate with \`make lock\` after changing pyproject.toml's dependencies."; \
	  .venv-lock/bin/python -m pip freeze --exclude synth_assets | sed 's/+cpu$$//' | sort -f; } > requirements.lock
	rm -rf .venv-lock

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

run: install
	$(BIN)/synth-assets run --demo-persons $(DEMO_PERSONS) --family $(FAMILY) --max-seconds $(GAN_SECONDS)

test: install
	$(BIN)/python -m pytest -n 2 --dist worksteal --timeout 900 synth_assets_tests

# The linter and the type checker, configured in pyproject.toml ([tool.ruff], [tool.mypy]).
lint: install
	$(BIN)/ruff check synth_assets synth_assets_tests bench
	$(BIN)/mypy

ui: install
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .dagster_home .xdg data/incoming data/truth data/warehouse data/models data/reports data/public
