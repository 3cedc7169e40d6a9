"""What ``drlim tune`` searches: ``--search key=[v1, v2]`` arguments, their grid, and what trials may change.

Pure (no Ray): the grid is the product of every key's values, each point a list of ``key=value`` overrides that
``load_job`` applies on top of the job. Trials share the data and pair stages, built once, so a search may
change anything but the samples (``data``, ``evaluate.validation``) and the pairs (``pairs``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import yaml

from pipeline.config import JobConfig, load_job, parse_override
from pipeline.errors import ConfigError

# Keys whose change would need other samples or pairs than the trials share.
SHARED_STAGES = ("data.", "pairs.", "evaluate.validation")


def parse_search(texts: list[str]) -> dict[str, list]:
    """``["train.lr=[0.001, 0.003]"]`` -> ``{"train.lr": [0.001, 0.003]}``; errors name the argument."""
    if not texts:
        raise ConfigError("give at least one --search key=[values], e.g. --search train.lr=[0.0003,0.001]")
    search: dict[str, list] = {}
    for text in texts:
        keys, values = parse_override(text)
        key = ".".join(keys)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--search {text!r}: the values must be a non-empty YAML list, e.g. {key}=[1, 2]")
        if key in search:
            raise ConfigError(f"--search {text!r}: {key} is searched twice; give all its values in one list")
        if key.startswith(SHARED_STAGES):
            raise ConfigError(
                f"--search {text!r}: trials share the data and pair stages, so {key} cannot vary; tune training "
                f"and encoder settings (train.*, encoder.*, seed, evaluate.select), or run one tune per data set"
            )
        search[key] = values
    return search


def _yaml_value(value) -> str:
    """``value`` as ``--set`` parses it back: plain words stay plain (``neg``), everything else JSON (valid YAML)."""
    if isinstance(value, str) and yaml.safe_load(value) == value and "," not in value:
        return value
    return json.dumps(value)


def grid(search: dict[str, list]) -> list[list[str]]:
    """Every combination of the searched values, as ``key=value`` overrides."""
    keys = list(search)
    return [[f"{k}={_yaml_value(v)}" for k, v in zip(keys, point)] for point in itertools.product(*search.values())]


def trial_jobs(path: Path, overrides: list[str], points: list[list[str]]) -> list[JobConfig]:
    """The job of every grid point, validated before anything runs (an error names the point)."""
    jobs = []
    for point in points:
        try:
            jobs.append(load_job(path, [*overrides, *point]))
        except ConfigError as exc:
            raise ConfigError(f"search point {' '.join(point)}: {exc}") from None
    return jobs
