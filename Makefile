# Everything runs from a project virtualenv that these targets create: a fresh machine
# needs nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast lint demo bench dist clean

$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --ignore-requires-python 'arcsecond==4.5.0'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check oort_lib tests bench oort_sync.py

demo: $(STAMP)
	bash contrib/demo.sh

bench: $(STAMP)
	bash bench/run.sh

# The sdist and the wheel, in dist/ (`pipx install dist/oort_sync-*.whl` installs the
# wheel). Built with this virtualenv's setuptools: no download.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) demo .bench build dist *.egg-info
