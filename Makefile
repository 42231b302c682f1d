# Kindred Map: `make run` starts the dashboard, `make test` runs every test (GNU make).
# Both first build .venv from pyproject.toml; it is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-pyproject

.PHONY: venv run test lint boundaries

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

# kindred-map dashboard = streamlit run app.py, after the imports and layer loads.
run: $(STAMP)
	$(BIN)/python -c "from kindred_map import assets; assets.install_static()"
	$(BIN)/kindred-map dashboard

# pytest exit code 5 means "no tests collected": a failure, never a pass.
test: $(STAMP)
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: FAILED, pytest collected no tests" >&2; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

boundaries: $(STAMP)
	$(BIN)/kindred-map build-boundaries
