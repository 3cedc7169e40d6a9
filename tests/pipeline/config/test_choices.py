"""The plug-in registry: every line names a class that takes exactly its options, and the job configuration
derives its choices and messages from it without importing a plug-in."""

import ast
import inspect
import sys

import pytest

from pipeline.config import choices
from pipeline.config.choices import INDEXES, LOSSES, PAIR_SOURCES, Choices

KINDS = {name: value for name, value in vars(choices).items() if isinstance(value, Choices)}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_choice_loads_and_its_class_takes_exactly_its_options(kind):
    for choice in KINDS[kind].values():
        target = choice.load()
        if not inspect.isclass(target) or not choice.options:
            continue  # a function (a transform), or a class with no options of its own
        keyword_only = [p.name for p in inspect.signature(target).parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert keyword_only == list(choice.options), f"{kind} {choice.name}"
        defaults = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.name in choice.options and p.default is not p.empty
        ]
        assert not defaults, f"{kind} {choice.name}: the defaults are the registry's, not the class's"


def test_the_registry_imports_nothing_heavy():
    # The job configuration imports it to validate every choice: the standard library only.
    tree = ast.parse(inspect.getsource(choices))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_pair_sources_keep_the_order_of_the_shards_dictionary():
    # The source column's dictionary on disk, and which source a pair found by several is recorded under.
    assert PAIR_SOURCES.names[:4] == ["knn", "prior", "transform", "transform_knn"]  # the first, and new ones after


def test_options_are_checked_and_defaults_filled_in():
    assert INDEXES.options("ivf", {"nprobe": 4}) == {"nlist": None, "nprobe": 4, "train_size": None}
    with pytest.raises(ValueError, match=r"unknown index 'lsh'; choose one of \['flat', 'hnsw', 'ivf'\]"):
        INDEXES.options("lsh")
    with pytest.raises(
        ValueError,
        match=r"index 'hnsw' has no option 'nprobe'; valid options: "
        r"\['m', 'ef_construction', 'ef_search'\]",
    ):
        INDEXES.options("hnsw", {"nprobe": 4})
    with pytest.raises(ValueError, match=r"index 'flat' has no options 'm', 'k'; valid options: none"):
        INDEXES.options("flat", {"m": 8, "k": 2})
    with pytest.raises(ValueError, match="index 'ivf': option 'nprobe' must be a positive integer, got 0"):
        INDEXES.options("ivf", {"nprobe": 0})


@pytest.mark.parametrize("value", [0, -2.0, float("inf"), float("nan"), True, "1"])
def test_loss_option_values_must_be_positive_numbers(value):
    with pytest.raises(ValueError, match="must be a positive number"):
        LOSSES.options("neg", {"normalization": value})


def test_a_setting_comes_from_its_field_and_goes_only_to_a_choice_that_takes_it():
    with pytest.raises(ValueError, match="the contrastive loss's margin is train.margin; set that instead"):
        LOSSES.options("contrastive", {"margin": 2})
    assert LOSSES.build("contrastive", None, settings={"margin": 2.5, "lr": 1}).margin == 2.5
    assert LOSSES.build("contrastive").margin == 1.0
    assert vars(LOSSES.build("neg", {"normalization": 4}, settings={"margin": 2.5})) == {
        "exaggeration": 1.0,
        "normalization": 4,
        "dof": 1.0,
    }
