# Two commands: `make run` (embedded Tickmark with demo data) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format install install-dev lock bench clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# constraints.txt pins every transitive dependency to the versions the tests ran with, so a
# fresh machine installs exactly what was tested; `make lock` refreshes it after a change.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt .
	touch $(STAMP)

$(STAMP)-dev: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt '.[dev]'
	touch $(STAMP) $(STAMP)-dev

install: $(STAMP)
install-dev: $(STAMP)-dev

# `make run PORT=8100` (and HOST=0.0.0.0): PUBLIC_BASE_URL follows, so provider callbacks
# reach this server and ticks move (unless PUBLIC_BASE_URL is set explicitly).
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(PY) manage.py run_embedded --addr $(HOST):$(PORT)

test: $(STAMP)-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest $(PYTEST_ARGS)

format: $(STAMP)-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: $(STAMP)-dev
	$(PY) -m pip install --quiet '.[dev]'
	{ echo "# Every installed package, pinned (make lock). Used as pip constraints by make install."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^tickmark'; } > constraints.txt

bench: $(STAMP)-dev
	$(PY) bench/run.py

clean:
	rm -rf var/tickmark.sqlite3* var/staticfiles
