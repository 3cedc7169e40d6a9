import inspect

import pytest

from encoders.catalog import ENCODER_OPTIONS, check_options, encoder_options
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
