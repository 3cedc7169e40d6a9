import ast
import inspect
import sys
from pathlib import Path

import pytest

import encoders.losses.names as names
from encoders.losses import LOSSES, build_loss


def test_names_match_the_loss_classes_and_their_defaults():
    assert set(names.LOSS_OPTIONS) == set(LOSSES) and names.DEFAULT_LOSS in LOSSES
    for name, cls in LOSSES.items():
        parameters = list(inspect.signature(cls).parameters.values())
        assert {p.name: p.default for p in parameters} == names.LOSS_OPTIONS[name], name
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)


def test_names_imports_nothing_heavy():
    # The job configuration imports it to validate train.loss: standard library only.
    tree = ast.parse(Path(names.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= set(sys.stdlib_module_names) | {"__future__"}


def test_unknown_loss_names_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown loss 'triplet'; choose one of \['contrastive', 'infonce', 'neg'\]"):
        build_loss("triplet")


@pytest.mark.parametrize("value", [0, -2.0, float("inf"), True, "1"])
def test_option_values_must_be_positive_numbers(value):
    with pytest.raises(ValueError, match="must be a positive number"):
        names.check_options("neg", {"normalization": value})


def test_the_jobs_margin_goes_only_to_a_loss_with_a_margin():
    assert build_loss("contrastive", margin=2.5).margin == 2.5
    assert build_loss("contrastive").margin == 1.0
    assert vars(build_loss("neg", {"normalization": 4}, margin=2.5)) == {"exaggeration": 1.0, "normalization": 4}
