# StartupWebApp deployment: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help venv templates check test lint bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (once)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(INSTALLED) ## create .venv with the pinned dependencies

templates: $(INSTALLED) ## generate output/ from templates/ and params/, then cfn-lint it
	@$(BIN)/python generate.py

check: $(INSTALLED) ## fail if output/ is stale
	@$(BIN)/python generate.py --check

test: $(INSTALLED) ## run every test: pytest (goldens, cfn-lint, checkov, sandbox), ruff
	$(BIN)/python -m pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint: $(INSTALLED) ## ruff check and format check only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(INSTALLED) ## print performance figures (medians)
	@$(BIN)/python bench.py

clean: ## remove the virtual environment and caches (not output/)
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
