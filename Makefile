# `make test` and `make demo` work on a fresh clone: each creates .venv if missing and installs what
# it needs (a stamp file records the install so repeated runs skip pip).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: test demo bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.examples: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[examples]"
	touch $@

test: $(VENV)/.dev $(VENV)/.examples
	$(PY) -m pytest -q

demo: $(VENV)/.examples
	$(PY) examples/manipulation_detection.py

bench: $(VENV)/.dev
	$(PY) benchmarks/conv.py

lint: $(VENV)/.dev
	$(PY) -m ruff check --select F,E9 lucid tests examples benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
