"""U-Net and FCN: logits at the input size, arguments, input errors; torchvision segmenters."""

from __future__ import annotations

import pytest
import torch

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.segmentation import UNet
from modelzoo.train.tasks import SegmentationTask


def test_registered_segmenters_share_the_family_and_task() -> None:
    names = set(mz.list_models(family="segmentation"))
    assert {"unet_tiny", "unet", "fcn_resnet18", "fcn_resnet50"} <= names
    assert set(mz.list_models(task="segmentation")) == names


@pytest.mark.parametrize("size", [(64, 64), (37, 50), (1, 9), (17, 8)])
def test_unet_output_matches_any_input_size(size: tuple[int, int]) -> None:
    model = mz.create("unet_tiny", num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)


def test_unet_padding_does_not_shift_the_image() -> None:
    # An odd size is zero-padded at the bottom and right only, so the logits at (i, j)
    # belong to input pixel (i, j): the same as padding by hand and cropping.
    torch.manual_seed(0)
    model = mz.create("unet_tiny", depth=2).eval()
    image = torch.rand(1, 3, 61, 61)
    with torch.no_grad():
        cropped = model(image)
        padded = model(torch.nn.functional.pad(image, (0, 3, 0, 3)))[..., :61, :61]
    torch.testing.assert_close(cropped, padded)


def test_unet_widths_follow_base_channels_and_depth() -> None:
    model = UNet(num_classes=2, base_channels=8, depth=2)
    assert [d[1][0].out_channels for d in model.down] == [16, 32]
    assert model.head.in_channels == 8
    paper = mz.model_card("unet")
    assert paper.defaults["num_classes"] == 2
    # the paper's widths 64 ... 1024 give about 31M parameters with batch norm
    assert 30e6 < paper.num_params < 32e6


def test_unet_options_build_and_run() -> None:
    model = mz.create(
        "unet_tiny", in_chans=1, bilinear=True, norm_layer="identity", drop_rate=0.5
    ).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 32, 32)).shape == (1, 5, 32, 32)
    with pytest.raises(ConfigError, match="depth"):
        mz.create("unet_tiny", depth=0)


@pytest.mark.parametrize("skips", [0, 1, 2])
def test_fcn_logits_have_the_input_size(skips: int) -> None:
    model = mz.create("fcn_resnet18", num_classes=4, skips=skips).eval()
    assert len(model.skip_scores) == skips
    with torch.no_grad():
        assert model(torch.rand(1, 3, 45, 61)).shape == (1, 4, 45, 61)


def test_bad_input_raises_input_shape_error() -> None:
    unet = mz.create("unet_tiny").eval()
    with pytest.raises(InputShapeError, match="channels"):
        unet(torch.rand(1, 1, 32, 32))
    with pytest.raises(InputShapeError, match="unsqueeze"):
        unet(torch.rand(3, 32, 32))
    fcn = mz.create("fcn_resnet18").eval()
    with pytest.raises(InputShapeError, match="at least 32x32"):
        fcn(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("arch", ["fcn_resnet50", "deeplabv3_resnet50"])
def test_torchvision_segmenters_count_the_background_like_the_zoo(arch: str) -> None:
    torch.manual_seed(0)
    model = mz.create(f"torchvision/{arch}", num_classes=5).eval()  # no weights are fetched
    assert model.aux_classifier is None
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert out["out"].shape == (1, 5, 64, 64)
    # the segmentation task reads torchvision's dict output
    losses = SegmentationTask(model).losses(out["out"], torch.zeros(1, 64, 64, dtype=torch.long))
    assert torch.isfinite(losses["loss"])
