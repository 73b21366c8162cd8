# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# openapi-python-client (for the generated-client test) in a venv of its own: it pins typer<0.28
CLIENTGEN := $(VENV)/openapi-client/.installed

.PHONY: demo test lint typecheck unit bench clean docs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,api,tui,redis,celery,rq]'
	touch $(STAMP)

$(CLIENTGEN): constraints-openapi-client.txt | $(STAMP)
	$(PYTHON) -m venv $(VENV)/openapi-client
	$(VENV)/openapi-client/bin/pip install --quiet -c constraints-openapi-client.txt openapi-python-client
	touch $(CLIENTGEN)

demo: $(STAMP)
	$(BIN)/jobbudget demo --database-url sqlite:///jobbudget-demo.db

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(CLIENTGEN)
	$(BIN)/pytest -q -n 2 --dist loadfile  # both cores of the CI machine; a file stays on one worker (its module fixtures)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

docs: $(STAMP) ; $(BIN)/python -m jobbudget.api.docgen

clean:
	rm -rf $(VENV) jobbudget-demo.db* .mypy_cache .ruff_cache .pytest_cache
