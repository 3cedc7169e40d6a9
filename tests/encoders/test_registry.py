import pytest
import torch

from encoders import ENCODERS, build_encoder


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_lenet_maps_images_to_output_dim(dim):
    model = build_encoder("lenet", output_dim=dim)
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, dim)


def test_unknown_encoder_names_the_valid_choices():
    with pytest.raises(ValueError, match="choose one of") as info:
        build_encoder("resnet-9000", output_dim=2)
    for name in ENCODERS:
        assert name in str(info.value)


def test_encoder_options_are_validated_and_applied():
    model = build_encoder("lenet", output_dim=2, options={"c1": 4, "c3": 8, "activation": "tanh"})
    assert model.c1.out_channels == 4 and model.c3.out_channels == 8 and model.act is torch.tanh
    with pytest.raises(ValueError, match=r"no option\(s\) \['width'\]; valid options: \['c1', 'c3', 'activation', 'pool'\]"):
        build_encoder("lenet", output_dim=2, options={"width": 3})
