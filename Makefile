# The project's checks, as CI runs them (.ci/run runs the README's test command: `make test` in a fresh venv).
.PHONY: check test-unit test docs format

# Lint, formatting and types: ruff and mypy, configured in pyproject.toml.
check:
	ruff check .
	ruff format --check .
	mypy

# The unit tests: fast, no Ray cluster or CLI run (under two minutes here).
test-unit:
	python -m pytest -m "not integration"

# Everything CI runs: the checks, then every test (unit and integration).
test: check
	python -m pytest

# Rewrite the code in the project's format (ruff format) and apply ruff's safe fixes.
format:
	ruff check --fix .
	ruff format .
