"""Typed job configuration: YAML -> validated, frozen objects.

Every field has a default that serves the paper's MNIST 4/9 set-up, so an empty job file is a valid job.
Errors name the job file, the dotted key, what was given and what is allowed ("did you mean" for typos).
Loading a job imports nothing heavy (no Ray, FAISS or torch): the choices it checks come from the stages'
import-light catalogs; checks that need the data (an encoder against the samples' shape, k against their
number) run in the stages.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from encoders.catalog import ENCODER_OPTIONS, check_loss, check_loss_options, check_options
from pipeline.data.catalog import check_transforms
from pipeline.data.paths import climbs_out
from pipeline.errors import ConfigError
from pipeline.pairs.catalog import check_index_options


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where samples come from. MNIST: the first ``train_per_digit`` of each digit in the training set."""

    source: Literal["mnist", "parquet", "numpy", "norb", "airplane"] = Field(
        "mnist", description="mnist (digits, *_per_digit, root, download apply), your own parquet/numpy files, "
        "norb (one airplane from the small NORB files under ROOT/norb) or airplane (its synthetic stand-in)",
    )
    norb_instance: int = Field(4, ge=0, description="norb: which airplane instance")
    root: str | None = Field(None, description="data root (DATA_ROOT) unless --data-root is given; else "
                             "DRLIM_DATA_ROOT, WORKDIR/data. A relative root is taken from the current directory")
    path: str | None = Field(None, description="parquet/numpy: the training samples file. Absolute, or relative to "
                             "DATA_ROOT; a relative path may not climb out of DATA_ROOT with '..' (use an absolute "
                             "path for a file elsewhere)")
    test_path: str | None = Field(None, description="parquet/numpy: held-out samples; none = evaluate on training. "
                                  "Resolved like data.path")
    feature_column: str = Field("features", min_length=1, description="parquet column / npz array of features")
    label_column: str | None = Field("label", description="parquet column / npz array of labels; null = none")
    feature_shape: list[int] | None = Field(None, description="reshape each sample, e.g. [1, 28, 28]")
    digits: list[int] = Field(default_factory=lambda: [4, 9])
    train_per_digit: int | None = Field(3000, gt=0, description="first N of each digit; null = all")
    test_per_digit: int | None = Field(None, gt=0, description="first N of each digit; null = all")
    download: bool = Field(True, description="download MNIST through torchvision when it is missing")
    transforms: dict[str, list[float]] = Field(
        default_factory=dict, description="transformed copies of every sample, e.g. {shift_x: [-6, -3, 3, 6]}"
    )

    @model_validator(mode="after")
    def _files(self) -> DataConfig:
        if self.source in ("parquet", "numpy") and not self.path:
            raise ValueError(f"data.path: source {self.source!r} reads your files; set data.path to the training file")
        if self.source == "mnist" and (self.path or self.test_path):
            raise ValueError("data.path: MNIST is read from the data root; set data.source: parquet or numpy "
                             "to read your own files")
        if self.feature_shape is not None and (not self.feature_shape or min(self.feature_shape) < 1):
            raise ValueError(f"data.feature_shape: must be positive sizes, e.g. [1, 28, 28], got {self.feature_shape}")
        return self

    @field_validator("path", "test_path")
    @classmethod
    def _inside_data_root(cls, v: str | None) -> str | None:
        if v and climbs_out(v):
            raise ValueError(
                f"{v!r} climbs out of the data root with '..' (relative paths are read from DATA_ROOT: --data-root, "
                f"data.root, DRLIM_DATA_ROOT or WORKDIR/data); put the file under DATA_ROOT, or use an absolute path "
                f"if you really mean a file outside DATA_ROOT"
            )
        return v

    @field_validator("transforms")
    @classmethod
    def _transforms(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        check_transforms(v)
        return v

    @field_validator("digits")
    @classmethod
    def _digits(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("must name at least one digit, e.g. [4, 9]")
        bad = [d for d in v if not 0 <= d <= 9]
        if bad:
            raise ValueError(f"digits must be in 0..9, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"digits must not repeat, got {v}")
        return sorted(v)


class AdjacentSpec(_Section):
    step: float = Field(gt=0, description="largest difference that still counts as adjacent")
    period: float | None = Field(None, gt=0, description="measure around a circle of this period (e.g. 360)")


class PriorRule(_Section):
    """Similar when equal in ``same``, within ``step`` in each ``adjacent`` column; other columns are free."""

    same: list[str] = Field(default_factory=list, description="metadata columns that must be equal")
    adjacent: dict[str, AdjacentSpec] = Field(default_factory=dict, description="columns that must be close")
    max_differing: int | None = Field(None, ge=0, description="at most this many adjacent columns may differ")

    @model_validator(mode="after")
    def _not_empty(self) -> PriorRule:
        if not self.same and not self.adjacent:
            raise ValueError("a prior rule needs 'same' or 'adjacent' columns, e.g. same: [object]")
        overlap = sorted(set(self.same) & set(self.adjacent))
        if overlap:
            raise ValueError(f"columns {overlap} are in both 'same' and 'adjacent'")
        return self

    @property
    def columns(self) -> list[str]:
        return [*self.same, *self.adjacent]


class PairsConfig(_Section):
    """Similar pairs: k nearest neighbours in input space (FAISS), written as Parquet shards."""

    sources: list[Literal["knn", "transform", "transform_knn", "prior"]] = Field(
        default_factory=lambda: ["knn"],
        description="knn: k nearest neighbours; transform: copies of one origin; transform_knn: a sample with "
        "the copies of its neighbours' origins (needs data.transforms); prior: the metadata rule pairs.prior",
    )
    prior: PriorRule | None = Field(None, description="metadata rule for the 'prior' source")
    k: int = Field(5, ge=1, description="neighbours per sample (self excluded)")
    symmetrize: Literal["union", "mutual"] = Field(
        "union", description="union: i~j when either is among the other's k nearest (the paper); mutual: both"
    )
    index: Literal["flat", "ivf", "hnsw"] = Field(
        "flat", description="FAISS index: flat = exact L2; ivf, hnsw = approximate, for large N"
    )
    index_options: dict[str, int] = Field(
        default_factory=dict, description="ivf: nlist, nprobe, train_size; hnsw: m, ef_construction, ef_search"
    )
    recall_queries: int = Field(1000, ge=1, description="approximate indexes: queries checked against exact search")
    num_shards: int = Field(8, ge=1, le=4096, description="pair shards, by hash of the left id")
    num_tasks: int | None = Field(None, ge=1, description="Ray search tasks; null = 2 per cluster CPU")

    @model_validator(mode="after")
    def _index_options(self) -> PairsConfig:
        if ("prior" in self.sources) != (self.prior is not None):
            raise ValueError(
                "the 'prior' source and the pairs.prior rule go together; "
                + ("add a rule, e.g. prior: {same: [object]}" if self.prior is None else "add 'prior' to pairs.sources")
            )
        try:
            check_index_options(self.index, self.index_options)
        except ValueError as exc:
            raise ValueError(f"pairs.index_options: {exc}") from None
        return self

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one source, e.g. [knn]")
        if len(set(v)) != len(v):
            raise ValueError(f"sources must not repeat, got {v}")
        if "transform_knn" in v and "knn" not in v:
            raise ValueError("transform_knn extends the kNN pairs; list knn too, e.g. [knn, transform, transform_knn]")
        return v


class EncoderConfig(_Section):
    name: str = Field("lenet", description="encoder from the registry in encoders/")
    output_dim: int = Field(2, ge=1)
    options: dict[str, int | float | str] = Field(default_factory=dict, description="encoder keyword options")

    def spec(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """``build_encoder`` keyword arguments for samples of ``input_shape`` (also stored in checkpoints)."""
        return {"name": self.name, "output_dim": self.output_dim, "options": dict(self.options),
                "input_shape": list(input_shape)}


class TrainConfig(_Section):
    num_workers: int = Field(2, ge=1, description="Ray Train workers")
    cpus_per_worker: float = Field(1.0, gt=0)
    use_gpu: bool | Literal["auto"] = Field("auto", description="auto: GPUs when the cluster has them")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="encoder forward pass: auto = bf16 autocast on GPU, fp32 on CPU; the loss is fp32"
    )
    mode: Literal["per_pair", "batch"] = Field(
        "batch", description="per_pair: the paper's sampled pairs; batch: also score all pairs in a batch"
    )
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1, description="similar pairs per step and worker")
    negatives_per_positive: float = Field(
        0.25, ge=0, description="per_pair: dissimilar pairs drawn per similar pair; batch: their weight ratio"
    )
    loss: str = Field("contrastive", description="contrastive (the paper's), neg (UMAP-like) or infonce "
                      "(t-SNE-like); see encoders/losses")
    loss_options: dict[str, float] = Field(
        default_factory=dict, description="neg: exaggeration, normalization; infonce: exaggeration"
    )
    margin: float = Field(1.0, gt=0, description="m in the contrastive loss")
    optimizer: Literal["sgd", "adam", "adamw"] = Field(
        "adam", description="adamw: Adam with decoupled weight decay (adam adds weight_decay to the gradient)"
    )
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = Field("cosine", description="cosine: decays to 0 by the last step")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="keep an exponential moving average of the weights (updated every step) "
        "and return it as the trained model; null = the last weights",
    )
    features: Literal["auto", "device", "stream"] = Field(
        "auto", description="device: the training features copied to the device once; stream: read by id from "
        "the sample store per step (pinned, copied without blocking); auto: device when they take at most a "
        "quarter of its free memory",
    )
    prefetch: Literal["auto"] | int = Field(
        "auto", description="steps prepared ahead in a background thread; 0 = inline; auto: 2 on GPU, 0 on CPU "
        "(where the thread only competes with the worker's own compute)",
    )

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        check_loss(v)
        return v

    @field_validator("loss_options")
    @classmethod
    def _loss_options(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        if "loss" not in info.data:
            return v  # train.loss is wrong, and says so
        check_loss_options(info.data["loss"], v)
        if "margin" in v:
            raise ValueError("the contrastive loss's margin is train.margin; set that instead")
        return v

    @field_validator("prefetch", mode="before")
    @classmethod
    def _prefetch(cls, v: Any) -> Any:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 64):
            return v
        raise ValueError(f"must be 'auto' or a number of steps from 0 to 64 (got {v!r})")


class EvaluateConfig(_Section):
    trustworthiness_k: list[int] = Field(default_factory=lambda: [5, 12])
    knn_k: int = Field(5, ge=1, description="k of the k-NN classifier inside the embedding")
    thumbnails: int = Field(400, ge=0, description="digit thumbnails drawn on the map")
    batch_size: int = Field(1024, ge=1)
    validation: float = Field(
        0.1, ge=0, description="training samples held out of the pairs and of training, to choose settings on: "
        "a fraction (< 1) or a count (>= 1) of the training originals (their transformed copies go with them), "
        "drawn with a fixed seed; 0 = none (the paper's set-up)",
    )
    validation_every: int = Field(5, ge=0, description="score the validation samples every N epochs during "
                                  "training (and after the last); 0 = only at the end")
    validation_samples: int = Field(1000, ge=10, description="validation originals scored during training "
                                    "(a fixed random subset; the end of the run scores all of them)")
    select: Literal["last", "best"] = Field(
        "last", description="the trained model: the last epoch's, or the epoch with the best validation "
        "trustworthiness at the first trustworthiness_k (needs validation)",
    )

    @field_validator("trustworthiness_k")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError(f"must be a non-empty list of integers >= 1, got {v}")
        return v

    @field_validator("validation")
    @classmethod
    def _fraction_or_count(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError(f"a fraction below 1 or a whole count of samples, got {v}")
        return v

    @model_validator(mode="after")
    def _select_needs_validation(self) -> EvaluateConfig:
        if self.select == "best" and not self.validation:
            raise ValueError("evaluate.select: 'best' picks the epoch by its validation score; set "
                             "evaluate.validation (e.g. 0.1) or use select: last")
        return self


class TrackingConfig(_Section):
    experiment: str = Field("drlim", min_length=1)
    registered_model: str = Field("drlim-mnist-4-9", min_length=1)
    alias: str = Field("champion", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", description="set on each new version")

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        # MLflow reserves "latest" and version-like aliases ("v3").
        if v.lower() == "latest" or (v[:1] in "vV" and v[1:].isdigit()):
            raise ValueError(f"alias {v!r} is reserved by MLflow; use a name such as 'champion' or 'staging'")
        return v


class JobConfig(_Section):
    name: str = Field("mnist_4_9", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> JobConfig:
        if self.encoder.name not in ENCODER_OPTIONS:
            raise ValueError(
                f"encoder.name: unknown encoder {self.encoder.name!r}; choose one of {sorted(ENCODER_OPTIONS)}"
            )
        try:
            check_options(self.encoder.name, self.encoder.options)
        except ValueError as exc:
            raise ValueError(f"encoder.options: {exc}") from None
        uses_copies = {"transform", "transform_knn"} & set(self.pairs.sources)
        if uses_copies and not self.data.transforms:
            raise ValueError(
                f"pairs.sources: {sorted(uses_copies)} pair transformed copies, but data.transforms is empty; "
                f"add e.g. data.transforms: {{shift_x: [-6, -3, 3, 6]}} or drop them from pairs.sources"
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


def held_out_count(n: int, validation: float) -> int:
    """How many of ``n`` training originals ``evaluate.validation`` holds out (a fraction, or a count)."""
    return int(validation) if validation >= 1 else round(validation * n)


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


def _format_error(err: dict, source: str) -> str:
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
        raise ConfigError(f"override {text!r}: the value {value!r} is not valid YAML ({_yaml_problem(exc)}); quote "
                          f"strings and close brackets, e.g. data.digits=[1, 7]") from None


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
        raise ConfigError(f"override {text!r}: {scalar!r} is a value, not a section; set it directly, e.g. "
                          f"{scalar}=...")
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
            raise ConfigError(f"{path}: cannot read the job file ({exc.__class__.__name__}: {exc}); save it as "
                              f"UTF-8 text") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    applied = {_apply_override(raw, text): text for text in overrides}
    try:
        return JobConfig.model_validate(raw)
    except ValidationError as exc:
        lines = list(dict.fromkeys(_format_error(e, _error_source(tuple(e["loc"]), source, applied))
                                   for e in exc.errors()))
        raise ConfigError("invalid job configuration:\n  " + "\n  ".join(lines)) from None
