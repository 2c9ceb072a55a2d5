# The two commands of the README's quick start. Each sets up what it needs by itself.
#   make site   create .venv, install distillgen, build articles/ into build/
#   make test   the same set-up plus test tools and Chromium, then the whole test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: site test lint clean

site: $(VENV)/.installed
	$(BIN)/distillgen build articles -o build

test: $(VENV)/.installed-test
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(BIN)/ruff check distillgen tests benchmarks
	$(BIN)/python -m pytest -q

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[test,ray]'
	touch $@

clean:
	rm -rf build .venv
