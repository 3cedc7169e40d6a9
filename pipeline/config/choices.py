"""Every plug-in a job may name, in one place: its name, the class that implements it, its options.

A plug-in is a class (a data source, a transform, a pair source, a FAISS index, an encoder, a loss, an optimizer)
registered here by one ``Choice`` line: its name, where its class is (``"module:Class"``, imported only when it
is built) and its options with their defaults. The job configuration derives its choices and its error messages
from these lines without importing any plug-in (a job loads without torch, Ray or FAISS); the stages build
plug-ins through them (``Choices.build``). Adding one is one new class plus one line here.

The classes take their options as keyword arguments without defaults of their own: the defaults are these.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Choice:
    """One plug-in. ``options``: option -> default (None: derived from the data when it is built). ``settings``:
    options set by fields of the job section beside the choice (e.g. the contrastive loss's margin is
    ``train.margin``), never by the options mapping. ``traits``: what the job configuration checks about it."""

    name: str
    target: str
    options: Mapping[str, Any] = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    traits: frozenset[str] = frozenset()

    def load(self) -> Any:
        """The class (or function) that implements the choice."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


def positive_number(value: Any) -> bool:
    # bool is an int; a number a loss cannot use (0, negative, inf, nan) is refused when the job loads.
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


def positive_integer(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


class Choices(Mapping[str, Choice]):
    """The plug-ins of one kind, in the order given (which may matter: see ``PAIR_SOURCES``), by name."""

    def __init__(
        self,
        kind: str,
        *choices: Choice,
        section: str = "",
        value: Callable[[Any], bool] | None = None,
        value_rule: str = "",
    ) -> None:
        self.kind, self.section = kind, section  # section: the job section whose fields are the settings
        self._choices = {c.name: c for c in choices}
        self._value, self._value_rule = value, value_rule

    def __getitem__(self, name: str) -> Choice:
        if name not in self._choices:
            listed = sorted(n for n, c in self._choices.items() if "unlisted" not in c.traits)
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {listed}")
        return self._choices[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __len__(self) -> int:
        return len(self._choices)

    @property
    def names(self) -> list[str]:
        return list(self._choices)

    def check(self, name: str) -> str:
        """``name`` when it is a choice; ``ValueError`` naming the choices otherwise."""
        return self[name].name

    def options(self, name: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options of ``name`` with ``given`` (a job's mapping) over the defaults; ``ValueError`` names an option
        it does not take (or one the job sets elsewhere) and a value it cannot use."""
        choice, given = self[name], dict(given or {})
        for key in given:
            if key in choice.settings:
                raise ValueError(f"the {name} {self.kind}'s {key} is {self.section}.{key}; set that instead")
        unknown = [key for key in given if key not in choice.options]
        if unknown:
            listed = ", ".join(map(repr, unknown))
            valid = [key for key in choice.options if key not in choice.settings] or "none"
            raise ValueError(
                f"{self.kind} {name!r} has no option{'s' if len(unknown) > 1 else ''} {listed}; valid options: {valid}"
            )
        self._check_values(name, given)
        return {**choice.options, **given}

    def _check_values(self, name: str, values: Mapping[str, Any]) -> None:
        if self._value is not None:
            for key, value in values.items():
                if not self._value(value):
                    raise ValueError(f"{self.kind} {name!r}: option {key!r} must be {self._value_rule}, got {value!r}")

    def build(
        self,
        name: str,
        given: Mapping[str, Any] | None = None,
        *args: Any,
        settings: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> Any:
        """An instance of ``name``: ``args`` and ``context`` (what the data or the caller gives), its options
        (``options``) and, of ``settings`` (the job section's fields), those it takes."""
        choice = self[name]
        taken = {k: v for k, v in (settings or {}).items() if k in choice.settings}
        self._check_values(name, taken)
        return choice.load()(*args, **{**self.options(name, given), **taken, **context})


# Where samples come from (data.source). Traits: "files" = reads the user's files at data.path / data.test_path.
DATA_SOURCES = Choices(
    "data source",
    Choice("mnist", "pipeline.data.mnist:MnistSource"),
    Choice("parquet", "pipeline.data.files:FileSource", traits=frozenset({"files"})),
    Choice("numpy", "pipeline.data.files:FileSource", traits=frozenset({"files"})),
    Choice("norb", "pipeline.data.norb:NorbSource"),
    Choice("airplane", "pipeline.data.norb:AirplaneSource"),
    Choice("infimnist", "pipeline.data.infimnist:InfiniteMnistSource"),
)

# Transformed copies of every sample (data.transforms: name -> parameters). Traits: "whole" = whole pixels only.
TRANSFORMS = Choices(
    "transform",
    Choice("rotate", "pipeline.data.transforms:rotate"),
    Choice("shift_x", "pipeline.data.transforms:shift_x", traits=frozenset({"whole"})),
    Choice("shift_y", "pipeline.data.transforms:shift_y", traits=frozenset({"whole"})),
)

# How similar pairs are found (pairs.sources). The order is the pair shards' (their source column's dictionary) and
# the precedence when several find one pair: the earlier name is recorded. Traits: "extends_knn" = made from the
# kNN edges (needs the knn source; before symmetrisation, so not with symmetrize: mutual), "copies" = pairs
# transformed copies (needs data.transforms), "rule" = the metadata rule pairs.prior, "labels" = pairs labelled
# samples (needs labels). New sources go at the end: the order is on disk.
PAIR_SOURCES = Choices(
    "pair source",
    Choice("knn", "pipeline.pairs.pair_sources:KnnPairs"),
    Choice("prior", "pipeline.pairs.prior:PriorPairs", traits=frozenset({"rule"})),
    Choice("transform", "pipeline.pairs.copies:TransformPairs", traits=frozenset({"copies"})),
    Choice("transform_knn", "pipeline.pairs.copies:TransformKnnPairs", traits=frozenset({"copies", "extends_knn"})),
    Choice("label", "pipeline.pairs.labels:LabelPairs", traits=frozenset({"labels"})),
)

# FAISS indexes of the kNN graph (pairs.index, pairs.index_options).
INDEXES = Choices(
    "index",
    Choice("flat", "pipeline.pairs.knn:FlatIndex"),
    Choice("ivf", "pipeline.pairs.knn:IVFIndex", {"nlist": None, "nprobe": 8, "train_size": None}),
    Choice("hnsw", "pipeline.pairs.knn:HNSWIndex", {"m": 32, "ef_construction": 80, "ef_search": 64}),
    # Named by a FAISS index-factory string (is_factory_string), never by "factory": unlisted among the choices.
    Choice(
        "factory",
        "pipeline.pairs.knn:FactoryIndex",
        {"nprobe": 8, "ef_search": 64, "k_factor": 4, "train_size": None},
        traits=frozenset({"unlisted"}),
    ),
    value=positive_integer,
    value_rule="a positive integer",
)


def is_factory_string(index: str) -> bool:
    """Whether ``pairs.index`` names a FAISS index by its index-factory string (``PCA64,IVF2048,Flat``, ``HNSW32``,
    ``IVF4096,PQ16``: upper-case tokens, comma-separated) rather than by one of ``INDEXES``'s names."""
    return bool(re.fullmatch(r"[A-Z][A-Za-z0-9_.=]*(,[A-Za-z0-9_.=]+)*", index))


# Encoders G_W (encoder.name, encoder.options); output_dim and the samples' shape come from the job and the data.
ENCODERS = Choices(
    "encoder",
    Choice("lenet", "encoders.lenet:LeNetEncoder", {"c1": 15, "c3": 30, "activation": "relu", "pool": "avg"}),
    Choice("mlp", "encoders.mlp:MLPEncoder", {"hidden": 128, "layers": 2, "activation": "relu"}),
    Choice("resnet18", "encoders.resnet:ResNetEncoder", {"projection": 128}),
)

# Losses over similar / dissimilar pairs (train.loss, train.loss_options).
LOSSES = Choices(
    "loss",
    Choice("contrastive", "encoders.losses.contrastive:ContrastiveLoss", {"margin": 1.0}, settings=("margin",)),
    Choice("neg", "encoders.losses.neg:NegLoss", {"exaggeration": 1.0, "normalization": 1.0, "dof": 1.0}),
    Choice("infonce", "encoders.losses.infonce:InfoNCELoss", {"exaggeration": 1.0, "dof": 1.0}),
    section="train",
    value=positive_number,
    value_rule="a positive number",
)

# Optimizers (train.optimizer); their settings are fields of train.
OPTIMIZERS = Choices(
    "optimizer",
    Choice("sgd", "torch.optim:SGD", settings=("lr", "momentum", "weight_decay")),
    Choice("adam", "torch.optim:Adam", settings=("lr", "weight_decay")),
    Choice("adamw", "torch.optim:AdamW", settings=("lr", "weight_decay")),
    section="train",
)
