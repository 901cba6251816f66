# ISP Support — the two commands are `make run` and `make test` (see README.md).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt install clean messages

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ISP Support needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing ISP Support and its dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Serve the whole product on http://127.0.0.1:$(PORT) (default 8000) with embedded defaults.
run: $(STAMP)
	@VENV=$(VENV) scripts/serve

## Run the whole test suite (embedded defaults; set DATABASE_URL / REDIS_URL for the real services).
test: $(STAMP)
	@$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

fmt: $(STAMP)
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

## Refresh locale/pt_BR from the code and compile it (needs GNU gettext: apt-get install gettext).
messages: $(STAMP)
	@DEBUG=true $(BIN)/python manage.py makemessages -l pt_BR --ignore '.venv/*' --ignore 'tests/*' --ignore 'var/*' --ignore 'bench/*'
	@DEBUG=true $(BIN)/python manage.py makemessages -d djangojs -l pt_BR --ignore '.venv/*' --ignore 'tests/*' --ignore 'var/*' --ignore 'bench/*'
	@DEBUG=true $(BIN)/python manage.py compilemessages -l pt_BR

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
