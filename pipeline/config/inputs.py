"""The sections that say which samples and which pairs: ``data`` and ``pairs``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Section
from pipeline.config.choices import DATA_SOURCES, INDEXES, PAIR_SOURCES, TRANSFORMS, is_factory_string
from pipeline.config.paths import climbs_out


def check_transforms(spec: dict[str, list[float]]) -> None:
    """Raise ``ValueError`` naming the problem for an unknown transform or an unusable parameter list."""
    for name, values in spec.items():
        TRANSFORMS.check(name)
        if not values:
            raise ValueError(f"transform {name!r} needs at least one parameter, e.g. {name}: [-3, 3]")
        if len(set(values)) != len(values):
            raise ValueError(f"transform {name!r} repeats a parameter: {values}")
        if "whole" in TRANSFORMS[name].traits and any(int(v) != v for v in values):
            raise ValueError(f"transform {name!r} shifts by whole pixels, got {values}")


class DataConfig(Section):
    """Where samples come from. MNIST: the first ``train_per_digit`` of each digit in the training set."""

    source: str = Field(
        "mnist",
        description="mnist (digits, *_per_digit, root, download apply), your own parquet/numpy files, "
        "norb (one airplane from the small NORB files under ROOT/norb), airplane (its synthetic stand-in) or "
        "infimnist (data.samples MNIST digits: the training digits, then deformed copies; MNIST's test digits)",
    )
    norb_instance: int = Field(4, ge=0, description="norb: which airplane instance")
    root: str | None = Field(
        None,
        description="data root (DATA_ROOT) unless --data-root is given; else "
        "DRLIM_DATA_ROOT, WORKDIR/data. A relative root is taken from the current directory",
    )
    path: str | None = Field(
        None,
        description="parquet/numpy: the training samples: a file, a folder of part "
        "files or a glob; a local path (absolute, or relative to DATA_ROOT, not climbing out "
        "of it with '..') or a URI (s3://, gs://, hdfs://, abfs://)",
    )
    test_path: str | None = Field(
        None, description="parquet/numpy: held-out samples; none = evaluate on training. Given like data.path"
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the URI's pyarrow filesystem, e.g. {endpoint_override: "
        "'http://127.0.0.1:9000', region: us-east-1} for S3; credentials otherwise come the usual way (AWS_* ...)",
    )
    feature_column: str = Field("features", min_length=1, description="parquet column / npz array of features")
    label_column: str | None = Field("label", description="parquet column / npz array of labels; null = none")
    feature_shape: list[int] | None = Field(None, description="reshape each sample, e.g. [1, 28, 28]")
    digits: list[int] = Field(default_factory=lambda: [4, 9])
    train_per_digit: int | None = Field(3000, gt=0, description="first N of each digit; null = all")
    samples: int = Field(
        1_000_000,
        gt=0,
        description="infimnist: training digits to make: MNIST's training "
        "digits of data.digits, then deformed copies of them, to this count",
    )
    test_per_digit: int | None = Field(None, gt=0, description="first N of each digit; null = all")
    download: bool = Field(True, description="download MNIST through torchvision when it is missing")
    transforms: dict[str, list[float]] = Field(
        default_factory=dict, description="transformed copies of every sample, e.g. {shift_x: [-6, -3, 3, 6]}"
    )

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return DATA_SOURCES.check(v)

    @model_validator(mode="after")
    def _files(self) -> DataConfig:
        reads_files = "files" in DATA_SOURCES[self.source].traits
        if reads_files and not self.path:
            raise ValueError(f"data.path: source {self.source!r} reads your files; set data.path to the training file")
        if self.storage_options and not any(p and "://" in p for p in (self.path, self.test_path)):
            raise ValueError("data.storage_options: set for a URI (s3://...) in data.path or data.test_path")
        if not reads_files and (self.path or self.test_path):
            raise ValueError(
                f"data.path: source {self.source!r} is read from the data root; set data.source: "
                f"parquet or numpy to read your own files"
            )
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


class AdjacentSpec(Section):
    step: float = Field(gt=0, description="largest difference that still counts as adjacent")
    period: float | None = Field(None, gt=0, description="measure around a circle of this period (e.g. 360)")


class PriorRule(Section):
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


class PairsConfig(Section):
    """Similar pairs: k nearest neighbours in input space (FAISS), written as Parquet shards."""

    sources: list[str] = Field(
        default_factory=lambda: ["knn"],
        description="knn: k nearest neighbours; transform: copies of one origin; transform_knn: a sample with "
        "the copies of its neighbours' origins (needs data.transforms); prior: the metadata rule pairs.prior; "
        "label: each labelled sample with pairs.k others of its label (prior knowledge from labels)",
    )
    prior: PriorRule | None = Field(None, description="metadata rule for the 'prior' source")
    k: int = Field(5, ge=1, description="neighbours per sample (self excluded)")
    symmetrize: Literal["union", "mutual"] = Field(
        "union", description="union: i~j when either is among the other's k nearest (the paper); mutual: both"
    )
    index: str = Field(
        "flat",
        description="FAISS index: flat = exact L2; ivf, hnsw = approximate, for large N; or any FAISS "
        "index-factory string, e.g. PCA64,IVF2048,Flat (784-d rows at 1M)",
    )
    index_options: dict[str, int] = Field(
        default_factory=dict,
        description="ivf: nlist, nprobe, train_size; hnsw: m, ef_construction, ef_search; "
        "a factory string: nprobe, ef_search, train_size",
    )
    recall_queries: int = Field(1000, ge=1, description="approximate indexes: queries checked against exact search")
    num_shards: int = Field(8, ge=1, le=4096, description="pair shards, by hash of the left id")
    index_parts: int | None = Field(
        None,
        ge=1,
        description="the kNN index in this many parts, one Ray actor each "
        "(each query shard visits every part); null = enough for ~1 GiB of features "
        "each, at most one per cluster CPU",
    )

    @model_validator(mode="after")
    def _index_options(self) -> PairsConfig:
        rules = [s for s in self.sources if "rule" in PAIR_SOURCES[s].traits]
        if bool(rules) != (self.prior is not None):
            raise ValueError(
                "the 'prior' source and the pairs.prior rule go together; "
                + ("add a rule, e.g. prior: {same: [object]}" if self.prior is None else "add 'prior' to pairs.sources")
            )
        neighbours = [s for s in self.sources if "extends_knn" in PAIR_SOURCES[s].traits]
        if self.symmetrize == "mutual" and neighbours:
            raise ValueError(
                f"pairs.symmetrize: mutual is decided where each pair shard is written, after "
                f"{neighbours[0]} has used the kNN edges; use symmetrize: union with {neighbours[0]}"
            )
        try:
            INDEXES.options("factory" if is_factory_string(self.index) else self.index, self.index_options)
        except ValueError as exc:
            raise ValueError(f"pairs.index_options: {exc}") from None
        return self

    @field_validator("index")
    @classmethod
    def _index(cls, v: str) -> str:
        if is_factory_string(v):
            return v  # FAISS itself checks the string when the pair stage starts, naming its reason
        try:
            if v == "factory":
                raise ValueError("name a FAISS index by its index-factory string")
            return INDEXES.check(v)
        except ValueError as exc:
            raise ValueError(f"{exc}, or a FAISS index-factory string such as PCA64,IVF2048,Flat") from None

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one source, e.g. [knn]")
        for name in v:
            PAIR_SOURCES.check(name)
        if len(set(v)) != len(v):
            raise ValueError(f"sources must not repeat, got {v}")
        neighbours = [s for s in v if "extends_knn" in PAIR_SOURCES[s].traits]
        if neighbours and "knn" not in v:
            raise ValueError(
                f"{neighbours[0]} extends the kNN pairs; list knn too, e.g. [knn, transform, {neighbours[0]}]"
            )
        return v
