# `make test` and `make demo` work on a fresh clone: each creates .venv if missing and installs what
# it needs (a stamp file records the install so repeated runs skip pip).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: test demo bench lint docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# lucid with the dev tools and the examples' packages, then the optional torch oracle: where
# torch==2.13.0 cannot be installed the comparison tests skip, and pytest's header says why.
# (setuptools prints a banner for every editable install, a reminder for packages whose source
# folder shadows them; here that folder is the package, so the banner is filtered.)
INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q
$(VENV)/.installed: pyproject.toml | $(PY)
	$(INSTALL) -e ".[dev,examples,docs]"
	$(INSTALL) -e ".[export]" || \
		echo "note: onnx/onnxruntime could not be installed; the ONNX export tests will skip"
	$(INSTALL) -e ".[oracle]" || \
		echo "note: the torch oracle (torch==2.13.0) could not be installed; its tests will skip"
	$(INSTALL) --no-deps "selfeeg==0.2.2" || \
		echo "note: the selfeeg oracle (selfeeg==0.2.2) could not be installed; its tests will skip"
	# braindecode only next to the pinned CPU torch (alone it would pull the CUDA build)
	($(PY) -c "import torch" 2>/dev/null && $(INSTALL) -e ".[eeg-oracle]") || \
		echo "note: braindecode (the EEG models' oracle) was not installed; its tests will skip"
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -q

demo: $(VENV)/.installed
	$(PY) examples/manipulation_detection.py

# the whole benchmark (minutes; markdown on stdout); `benchmarks/run.py --quick` is < 60 s
bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

# the documentation site into site/ (open site/index.html); --strict: a broken link, a missing
# page or an exported name without docstring fails the build
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint: $(VENV)/.installed
	$(PY) -m ruff check lucid tests examples benchmarks docs/_hooks
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build site *.egg-info
