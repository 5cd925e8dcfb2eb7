# Two commands for a fresh clone: `make demo` and `make test`. Both install what they need
# (uv, then the locked dependencies into .venv) the first time.

UV := $(shell command -v uv 2>/dev/null || echo .cache/uv/bin/uv)

.PHONY: demo test lint format prism compile mutation bench bench-full

$(UV):
	python3 -m venv .cache/uv
	.cache/uv/bin/pip install --quiet uv

# Bytecode compiled at install: where Python does not write it by itself
# (PYTHONDONTWRITEBYTECODE, read-only images), every process would compile every module it
# imports, each time (`loa --help` took 5.8 s instead of 2.1 s on such a machine).
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	touch $@

SOURCES := campaigns ledger providers scripts worker benchmarks tests

compile: .venv/.synced
	$(UV) run --frozen python -m compileall -q $(SOURCES) >/dev/null

demo: compile
	$(UV) run --frozen loa demo

# Stoplight Prism serving Twilio's own API description: the Twilio adapter's judge in tests.
PRISM := .cache/prism/node_modules/.bin/prism
$(PRISM):
	npm install --prefix .cache/prism --no-audit --no-fund --silent @stoplight/prism-cli@5

prism: $(PRISM)

# Four pytest processes (pytest-xdist) on two cores: the failure tests spend most of
# their time waiting for outages and pauses to pass, and the command-line tests for
# their subprocesses; with two, the machine stood a third idle (user + system time was
# 1.3 cores over the run). The suite's duration is watched: the 15 slowest tests, then
# the total on the last line.
test: compile $(PRISM)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen pytest -n 4 --durations=15

# Mutation testing of the rule modules ([tool.mutmut] in pyproject.toml): too slow for every
# CI run (see the README's Development section for how long), run before changing a rule.
mutation: compile
	$(UV) run --frozen python -m benchmarks.mutation

# Every benchmark, each figure beside a reference measured in the same run (issue 25): one
# table, appended to benchmarks/RESULTS.md. Needs Redis and PostgreSQL on their usual ports.
bench: compile
	$(UV) run --frozen python -m benchmarks --quick

bench-full: compile
	$(UV) run --frozen python -m benchmarks

format: .venv/.synced
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .
