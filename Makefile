# The project's checks, as CI runs them (.ci/run runs the README's test command: `make test` in a fresh venv).
.PHONY: check test-unit test docs docs-serve format

# Lint, formatting and types: ruff and mypy, configured in pyproject.toml.
check:
	ruff check .
	ruff format --check .
	mypy

# The unit tests: fast, no Ray cluster or CLI run (under two minutes here).
test-unit:
	python -m pytest -m "not integration"

# Everything CI runs: the checks, the documentation site, then every test (unit and integration).
test: check docs
	python -m pytest

# The documentation site (mkdocs.yml, docs/) into site/, strictly: a warning, a broken link or a missing reference
# fails it. Offline: nothing is fetched. (NO_MKDOCS_2_WARNING: Material's notice about its own future, not ours.)
docs:
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict

# The site on http://127.0.0.1:8000/, rebuilt on every change.
docs-serve:
	NO_MKDOCS_2_WARNING=1 mkdocs serve

# Rewrite the code in the project's format (ruff format) and apply ruff's safe fixes.
format:
	ruff check --fix .
	ruff format .
