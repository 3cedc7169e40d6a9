"""The whole job: its sections, cross-checks between them, and loading it from YAML with ``--set`` overrides.

Errors name the job file (or the ``--set`` that gave the value), the dotted key, what was given and what is
allowed ("did you mean" for typos).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from pipeline.config.base import Section
from pipeline.config.choices import PAIR_SOURCES
from pipeline.config.inputs import DataConfig, PairsConfig
from pipeline.config.training import EncoderConfig, EvaluateConfig, TrackingConfig, TrainConfig, held_out_count
from pipeline.errors import ConfigError


class JobConfig(Section):
    """A whole job: its name and seed, and one section per stage; every field has a default."""

    name: str = Field(
        "mnist_4_9",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="job name: the MLflow run's name and the checkpoint folder's (checkpoints/NAME-KEY)",
    )
    seed: int = Field(0, description="seeds the model's initialisation and negative sampling (per epoch and worker)")
    data: DataConfig = Field(default_factory=DataConfig)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> JobConfig:
        uses_copies = {s for s in self.pairs.sources if "copies" in PAIR_SOURCES[s].traits}
        if uses_copies and not self.data.transforms:
            raise ValueError(
                f"pairs.sources: {sorted(uses_copies)} pair transformed copies, but data.transforms is empty; "
                f"add e.g. data.transforms: {{shift_x: [-6, -3, 3, 6]}} or drop them from pairs.sources"
            )
        unpaired = sorted(set(self.train.source_weights) - set(self.pairs.sources))
        if unpaired:
            raise ValueError(
                f"train.source_weights: {unpaired} weigh pairs that pairs.sources {self.pairs.sources} does not "
                f"make; drop them from train.source_weights or add them to pairs.sources"
            )
        if self.train.num_workers > self.pairs.num_shards:
            raise ValueError(
                f"train.num_workers: each of the {self.train.num_workers} workers reads its own pair shards, but "
                f"pairs.num_shards is {self.pairs.num_shards}; raise pairs.num_shards to at least "
                f"{self.train.num_workers} (a multiple of the workers balances them)"
            )
        if self.data.source == "mnist" and self.data.train_per_digit is not None:
            n_train = self.data.train_per_digit * len(self.data.digits)
            n_train -= held_out_count(n_train, self.evaluate.validation)
            if self.pairs.k >= n_train:
                raise ValueError(
                    f"pairs.k: k={self.pairs.k} needs more than k training samples, but the job "
                    f"selects {n_train} (after evaluate.validation); lower pairs.k or raise data.train_per_digit"
                )
        return self

    def flat(self) -> dict[str, Any]:
        """Dotted key -> value, for MLflow params."""
        return flatten(self.model_dump())


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at ``loc`` (the parent path of a bad key)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)


# pydantic appends the tried member of a union to the location (options.c1.int, options.c1.float).
_UNION_MEMBERS = {"int", "float", "str", "bool"}


def _format_error(err: Mapping[str, Any], source: str) -> str:
    loc = tuple(err["loc"])
    while len(loc) > 1 and loc[-1] in _UNION_MEMBERS:
        loc = loc[:-1]
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        known = _known_keys(JobConfig, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {'.'.join([*map(str, loc[:-1]), hint[0]])!r}?" if hint else f"valid keys here: {known}"
        return f"{source}: unknown key {key!r}; {fix}"
    msg = err["msg"].removeprefix("Value error, ")
    if "input" in err and err["type"] != "value_error":
        return f"{source}: {key}: {msg} (got {err['input']!r})"
    return f"{source}: {key}: {msg}" if loc else f"{source}: {msg}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` -> (["train", "epochs"], 3); the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. train.epochs=3")
    try:
        return key.strip().split("."), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {text!r}: the value {value!r} is not valid YAML ({_yaml_problem(exc)}); quote "
            f"strings and close brackets, e.g. data.digits=[1, 7]"
        ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What the YAML parser found, and where (1-based line and column)."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(exc).split())
    where = f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    return f"{where} ({context} at line {start.line + 1}, column {start.column + 1})" if context and start else where


def _scalar_parent(keys: list[str]) -> str | None:
    """The first of ``keys[:-1]`` that names a plain value (``seed`` in ``seed.x``), which cannot hold keys."""
    model: type[BaseModel] = JobConfig
    for i, part in enumerate(keys[:-1]):
        field = model.model_fields.get(part)
        if field is None:
            return None  # an unknown key: validation names it, with "did you mean"
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
            continue
        scalar = field.annotation in (int, float, str, bool) or get_origin(field.annotation) is Literal
        return ".".join(keys[: i + 1]) if scalar else None
    return None


def _apply_override(raw: dict, text: str) -> tuple[str, ...]:
    """Set one ``key=value`` in the raw job; returns the key path."""
    keys, value = parse_override(text)
    scalar = _scalar_parent(keys)
    if scalar:
        raise ConfigError(
            f"override {text!r}: {scalar!r} is a value, not a section; set it directly, e.g. {scalar}=..."
        )
    node = raw
    for part in keys[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {text!r}: {part!r} is not a section")
    node[keys[-1]] = value
    return tuple(keys)


def _error_source(loc: tuple, source: str, applied: dict[tuple[str, ...], str]) -> str:
    """Who set the value an error is about: the last ``--set`` of that key or a section above it, else the file."""
    for keys, text in reversed(applied.items()):
        if len(loc) >= len(keys) and tuple(map(str, loc[: len(keys)])) == keys:
            return f"--set {text}"
    return source


def load_job(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> JobConfig:
    """Load and validate a job file (``None``: all defaults), applying ``key=value`` overrides."""
    source = str(path) if path is not None else "<defaults>"
    raw: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"job file {path} does not exist; the shipped jobs are in jobs/*.yaml")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}; fix the syntax there") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path}: cannot read the job file ({exc.__class__.__name__}: {exc}); save it as UTF-8 text"
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    applied = {_apply_override(raw, text): text for text in overrides}
    try:
        return JobConfig.model_validate(raw)
    except ValidationError as exc:
        lines = list(
            dict.fromkeys(_format_error(e, _error_source(tuple(e["loc"]), source, applied)) for e in exc.errors())
        )
        raise ConfigError("invalid job configuration:\n  " + "\n  ".join(lines)) from None
