import ast
import inspect
import sys
from pathlib import Path

import pytest

import encoders.catalog as catalog
from encoders.catalog import ENCODER_OPTIONS, check_options, encoder_options
from encoders.losses import LOSSES, build_loss
from encoders.registry import ENCODERS


def test_the_catalog_lists_every_encoder_with_its_constructors_options():
    assert set(ENCODER_OPTIONS) == set(ENCODERS)
    for name, cls in ENCODERS.items():
        taken = [p for p in inspect.signature(cls).parameters if p not in ("output_dim", "input_shape")]
        assert list(ENCODER_OPTIONS[name]) == taken, name


def test_unknown_names_and_options_name_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown encoder 'vgg'; choose one of \['lenet', 'mlp', 'resnet18'\]"):
        encoder_options("vgg")
    with pytest.raises(ValueError, match=r"encoder 'mlp' has no option\(s\) \['depth'\]; valid options: "
                                         r"\['hidden', 'layers', 'activation'\]"):
        check_options("mlp", {"depth": 3, "hidden": 8})
    check_options("mlp", {"hidden": 8})  # valid options pass


def test_the_catalog_lists_every_loss_with_its_options_and_defaults():
    assert set(catalog.LOSS_OPTIONS) == set(LOSSES) and catalog.DEFAULT_LOSS in LOSSES
    for name, cls in LOSSES.items():
        parameters = list(inspect.signature(cls).parameters.values())
        assert {p.name: p.default for p in parameters} == catalog.LOSS_OPTIONS[name], name
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)


def test_the_catalog_imports_nothing_heavy():
    # The job configuration imports it to validate train.loss: standard library only.
    tree = ast.parse(Path(catalog.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= set(sys.stdlib_module_names) | {"__future__"}


def test_unknown_loss_names_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown loss 'triplet'; choose one of \['contrastive', 'infonce', 'neg'\]"):
        build_loss("triplet")


@pytest.mark.parametrize("value", [0, -2.0, float("inf"), True, "1"])
def test_option_values_must_be_positive_numbers(value):
    with pytest.raises(ValueError, match="must be a positive number"):
        catalog.check_loss_options("neg", {"normalization": value})


def test_the_jobs_margin_goes_only_to_a_loss_with_a_margin():
    assert build_loss("contrastive", margin=2.5).margin == 2.5
    assert build_loss("contrastive").margin == 1.0
    assert vars(build_loss("neg", {"normalization": 4}, margin=2.5)) == {"exaggeration": 1.0, "normalization": 4,
                                                                        "dof": 1.0}
