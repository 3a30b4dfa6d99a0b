# Set-up is part of every target: a fresh machine needs only `make lab` or `make test`.
VENV ?= .venv
PYTHON ?= python3
# On x86_64 these lie on this workplace's disk; elsewhere pip downloads them.
TORCH ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin

.PHONY: install lab test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-cache-dir $(TORCH)
	$(BIN)/python -m pip install --quiet --no-cache-dir -e '.[test,spark,web]'
	touch $@

lab: install
	$(BIN)/idia lab --preset standard --out lab

# One pytest worker per core; tests that share a costly fixture run on one worker (tests/conftest.py).
test: install
	$(BIN)/python -m pytest -q -n auto --dist loadgroup --no-loadscope-reorder

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/bench_text_encoding.py --names 100

clean:
	rm -rf $(VENV) lab .pytest_cache
