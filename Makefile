# The two commands of the README's quick start. Each sets up what it needs by itself.
#   make site       create .venv, install distillgen, build articles/ into build/ (its figures
#                   come from the cache shipped in articles/.distillgen/cache)
#   make test       the same set-up plus test tools and Chromium, then the whole test suite
# And for maintainers:
#   make test-full  the test suite plus the example site computed from nothing
#   make cache      compute the shipped cache again (after a change to an engine or a key)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# pip installs without compiling every module it unpacks (--no-compile: torch and Ray are
# thousands of modules, half a minute of a fresh install), and Python compiles the few
# hundred a run imports on first use, once: so it must be allowed to keep what it compiled.
unexport PYTHONDONTWRITEBYTECODE
# The first step of either install: the virtual environment, with a current pip.
NEW_VENV = $(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip
# Two test workers (pytest-xdist), one per core of CI's 2: a test waiting on a browser, a Ray
# runtime or a subprocess leaves its core to the other. A file's tests stay on one worker, so
# its module fixtures (an atlas, a cluster) are built once.
PYTEST := $(BIN)/python -m pytest -q --durations=20 -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: site test test-full cache chromium clean

site: $(VENV)/.installed
	$(BIN)/distillgen build articles -o build

test: $(VENV)/.installed-test chromium
	$(BIN)/ruff check distillgen tests benchmarks
	$(BIN)/mypy
	$(PYTEST)

test-full: $(VENV)/.installed-test chromium
	$(BIN)/ruff check distillgen tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=20 -m "full or not full"  # one process: the cold build wants both cores

cache: $(VENV)/.installed
	rm -rf articles/.distillgen/cache
	$(BIN)/distillgen build articles -o build --strict

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(NEW_VENV)
	$(BIN)/pip install -q --no-compile -c constraints.txt -e .
	touch $@

# One pip run for everything the tests need (a second run after .installed's would resolve
# and build the package again: about half a minute of a fresh `make test`).
$(VENV)/.installed-test: pyproject.toml constraints.txt
	$(NEW_VENV)
	$(BIN)/pip install -q --no-compile -c constraints.txt -e '.[test,ray]'
	touch $(VENV)/.installed $@

clean:
	rm -rf build .venv
