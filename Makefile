# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export RECSYS_HOME ?= $(CURDIR)/var
DEMO   := $(RECSYS_HOME)/demo
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install demo run test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> creating the virtualenv $(VENV) and installing recsys with its dependencies"
	@echo "    (a minute or two the first time; pip names each package as it goes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The bundled demo retailer: generated deterministically, ingested and trained once.
$(RECSYS_HOME)/.demo-ready: $(STAMP)
	@echo "==> the demo retailer: generate, ingest, train (about a minute; once, under $(RECSYS_HOME))"
	$(BIN)/recsys demo-data --customers 5000 --items 600 --out $(DEMO)
	$(BIN)/recsys ingest catalog $(DEMO)/catalog.csv
	$(BIN)/recsys ingest customers $(DEMO)/customers.csv
	$(BIN)/recsys ingest transactions $(DEMO)/transactions.csv.gz
	$(BIN)/recsys train --model popular
	$(BIN)/recsys train
	touch $@

demo: $(RECSYS_HOME)/.demo-ready

run: demo
	@echo "==> serving on http://$(HOST):$(PORT) (another port: make run PORT=8080; Ctrl-C stops)"
	$(BIN)/recsys serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check recsys training api tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(RECSYS_HOME) .pytest_cache .mypy_cache .ruff_cache
