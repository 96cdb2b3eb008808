# The two commands of the README: `make study` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: study status unlock mlflow-server test test-fast test-slow lint format clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# the distribution was renamed hnet → hnet-cl: drop the old one from venvs made before
	$(BIN)/python -m pip uninstall --quiet --disable-pip-version-check -y hnet 2>/dev/null || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## make study: run the default demo study on embedded data (no network, no GPU), then write
## its HTML report. Rerunning it trains nothing that is finished; a killed run resumes.
STUDY_CONFIG ?= workflow/config/default.yaml
STUDY_NAME = $(shell sed -n 's/^study: *\([^ #]*\).*/\1/p' $(STUDY_CONFIG))
SMK := $(BIN)/snakemake --profile workflow/profiles/local --configfile $(STUDY_CONFIG)
study: $(STAMP)
	@# the parse-time checks first, with YAML errors that name the line (Snakemake's do not)
	$(BIN)/python -m hnet.study.configfile $(STUDY_CONFIG)
	$(SMK)
	$(SMK) --report results/$(STUDY_NAME)/report.html
	@echo "hnet: study '$(STUDY_NAME)' done; report: results/$(STUDY_NAME)/report.html"

## make status: where the study stands (`hnet status`): cells done, running, interrupted, failed
## and not started, and the time left. The study as for make study (STUDY_CONFIG=...), or its
## results directory (RESULTS=results/<study>); STATUS_ARGS adds options, e.g. "--watch" or
## "--json" or "--jobs 200". Reads files only: safe while the study runs.
RESULTS ?=
STATUS_ARGS ?=
status: $(STAMP)
	@$(BIN)/hnet status $(or $(RESULTS),$(STUDY_CONFIG)) $(STATUS_ARGS)

## make unlock: after `kill -9` of a study run, Snakemake keeps its lock; release it (only when
## no other Snakemake runs in this directory).
unlock: $(STAMP)
	$(SMK) --unlock

## make mlflow-server: an MLflow tracking server for studies whose jobs log live (clusters).
## Bound to 127.0.0.1 unless MLFLOW_HOST says otherwise; MLFLOW_BACKEND may be a PostgreSQL URI
## (postgresql://user:password@host:5432/db; the driver comes with the `cluster` and `dev` extras);
## docs/cluster.md shows the PostgreSQL setup.
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_BACKEND ?= sqlite:///$(CURDIR)/results/mlflow-server.db
MLFLOW_ARTIFACTS ?= $(CURDIR)/results/mlflow-artifacts
## Each of the server's MLFLOW_WORKERS processes keeps its own pool of database connections:
## MLFLOW_DB_POOL open plus MLFLOW_DB_OVERFLOW on demand. SQLAlchemy's default (5 + 10) runs dry
## when dozens of jobs log at once ("QueuePool limit … reached" comes back as HTTP 400); keep
## workers × (pool + overflow) below PostgreSQL's max_connections (default 100).
MLFLOW_WORKERS ?= 4
MLFLOW_DB_POOL ?= 10
MLFLOW_DB_OVERFLOW ?= 10
mlflow-server: $(STAMP)
	mkdir -p results
	MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=$(MLFLOW_DB_POOL) \
	MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW=$(MLFLOW_DB_OVERFLOW) \
	MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE=3600 \
	$(BIN)/mlflow server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) --workers $(MLFLOW_WORKERS) \
		--backend-store-uri $(MLFLOW_BACKEND) --artifacts-destination $(MLFLOW_ARTIFACTS)

## make test: every tier — tests/unit, tests/integration (CLI, Snakemake, MLflow) and
## tests/cluster (a local SLURM that tests/cluster/slurm-up.sh starts as root; skipped with the
## reason otherwise). Slow tests are skipped (make test-slow runs them).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make test-fast: the unit tier only (no subprocesses), one pytest worker per core
## (pytest-xdist), for the edit-test loop: under a minute on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto tests/unit

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q --runslow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow/rules

clean-venv:
	rm -rf $(VENV)
