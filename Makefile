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
# make run PORT=8600 serves on another port (default 8501, Streamlit's).
PORT ?= 8501
run: $(STAMP)
	$(BIN)/python -c "from kindred_map import assets; assets.install_static()"
	$(BIN)/kindred-map dashboard --server.port $(PORT)

# Bytecode is written (and reused) during the tests even where the environment sets
# PYTHONDONTWRITEBYTECODE (this machine does): else every Python process of the run, each xdist
# worker, Streamlit server and CLI subprocess, compiles the package and pytest rewrites every test
# module again (4 s of CPU per pytest process, more per server; __pycache__/ is gitignored).
unexport PYTHONDONTWRITEBYTECODE

# The tests run in TEST_WORKERS processes (pytest-xdist; TEST_WORKERS=0 runs them in one,
# serially), each file whole in one worker (--dist loadfile), so that a module's servers, stores
# and databases are built once. The files under tests/browser/ (a Streamlit server and Chromium
# each) all go to ONE worker, one after another, first (collection order, --no-loadscope-reorder);
# the workers running the other files lower their priority (nice 10), so the browser lane's
# servers and Chromium keep the machine's (tests/conftest.py). Each test process writes its map
# files to a folder of its own (KINDRED_MAP_STATIC): a store write in one worker used to remove
# the published files another worker's dashboard was serving, which is what failed the browser
# waits of every earlier parallel run. Default 3 (the browser lane and two others): 9 min 31 s
# against 14 min 27 s serially, the same 746-750 CPU s, on a 2-core machine; 7 min 27-36 s on
# the next one (6 min 16-43 s after this session's servers' heap freeze and kept PostGIS
# connections), both CPUs 98% busy, so more workers or lanes do not help
# (benchmarks/results/suite.md).
TEST_WORKERS ?= 3
# pytest exit code 5 means "no tests collected": a failure, never a pass.
# The PostGIS store tests need a server: with none given (KINDRED_MAP_TEST_PG) and PostgreSQL
# installed, a throwaway cluster is started for the run and removed after it (.ci/pg_cluster).
test: $(STAMP)
	@status=0; pg_dir=""; \
	if [ -z "$$KINDRED_MAP_TEST_PG" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		pg_dir=$$(mktemp -d /tmp/kindred-map-pg.XXXXXX); \
		KINDRED_MAP_TEST_PG=$$(.ci/pg_cluster start "$$pg_dir" no-fsync) && export KINDRED_MAP_TEST_PG; \
	fi; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS) || status=$$?; \
	if [ -n "$$pg_dir" ]; then .ci/pg_cluster stop "$$pg_dir"; fi; \
	if [ $$status -eq 5 ]; then echo "make test: FAILED, pytest collected no tests" >&2; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

boundaries: $(STAMP)
	$(BIN)/kindred-map build-boundaries
