# The two set-up commands of the README:
#   make demo   install Interchange and run the demo on the embedded memory:// backend
#   make test   install Interchange with every extra, bring up RabbitMQ, Kafka and Redis
#               (compose/with-brokers), then run lint, types and the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit install brokers brokers-down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/interchange demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy reads the installed namespace (interchange, interchange.contracts, interchange.adapters)
# from a tree of links, since it cannot follow the editable install's import hook.
typecheck: $(STAMP)
	tools/typing-tree build/typing
	MYPYPATH=build/typing $(BIN)/mypy -p interchange

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/conformance

# The official AsyncAPI parser, from npm, for the test that validates our documents.
# No lockfile is kept: it would only record where the packages were downloaded from.
ASYNCAPI := tools/asyncapi/node_modules/@asyncapi/parser
$(ASYNCAPI): tools/asyncapi/package.json
	cd tools/asyncapi && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $(ASYNCAPI)

# Starts the native brokers first when no URLs are given and no Docker engine answers. Here
# brokers are required: a test that finds none fails instead of skipping.
test: lint typecheck $(ASYNCAPI)
	INTERCHANGE_REQUIRE_BROKERS=1 compose/with-brokers $(BIN)/pytest

brokers:
	compose/native/up

brokers-down:
	compose/native/down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
