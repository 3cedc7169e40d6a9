import pytest
import torch

from encoders import build_encoder
from pipeline.config.choices import ENCODERS


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
    with pytest.raises(ValueError, match=r"no option 'width'; valid options: \['c1', 'c3', 'activation', 'pool'\]"):
        build_encoder("lenet", output_dim=2, options={"width": 3})


def test_mlp_takes_any_input_shape_and_the_papers_norb_net_has_20_hidden_units():
    model = build_encoder(
        "mlp", output_dim=3, options={"hidden": 20, "layers": 1, "activation": "tanh"}, input_shape=(1, 96, 96)
    )
    assert model(torch.rand(4, 1, 96, 96)).shape == (4, 3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(96 * 96, 20), (20, 3)]
    assert build_encoder("mlp", output_dim=2, input_shape=(7,))(torch.rand(3, 7)).shape == (3, 2)
    with pytest.raises(ValueError, match="needs the input shape"):
        build_encoder("mlp", output_dim=2)


def test_an_encoder_refuses_samples_of_a_shape_it_cannot_take():
    model = build_encoder("lenet", output_dim=2, input_shape=(1, 28, 28))
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 2)  # the shape it takes
    with pytest.raises(
        ValueError, match=r"takes samples of shape \(1, 28, 28\), the data has \(64,\); choose encoder.name: mlp"
    ):
        build_encoder("lenet", output_dim=2, input_shape=(64,))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 96, 96)])
def test_resnet18_backbone_maps_grey_and_colour_images_to_output_dim(shape):
    torch.manual_seed(0)
    model = build_encoder("resnet18", output_dim=3, options={"projection": 16}, input_shape=shape).eval()
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert model.backbone.conv1.in_channels == shape[0]
    # Small images keep their resolution through the stem (no stride, no max pooling); large ones use ResNet's own.
    assert model.backbone.conv1.stride == ((1, 1) if shape[1] < 64 else (2, 2))
    assert sum(p.numel() for p in model.backbone.parameters()) > 11_000_000  # a real ResNet-18


def test_resnet18_needs_images():
    with pytest.raises(ValueError, match=r"takes images \(channels, height, width\), the data has shape \(64,\)"):
        build_encoder("resnet18", output_dim=2, input_shape=(64,))
