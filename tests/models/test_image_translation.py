"""pix2pix and CycleGAN networks: the reference layouts and parameter counts, shapes, skips,
the paired/unpaired wrappers, and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelzoo as mz
import modelzoo.models.image_translation  # noqa: F401  (registers the models until it is built in)
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.image_translation import (
    CycleGAN,
    CycleGANOutput,
    PatchDiscriminator,
    Pix2Pix,
    ResnetGenerator,
    TranslationOutput,
    UNetGenerator,
)


def _millions(module: nn.Module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 3)


def test_paper_configurations_have_the_reference_parameter_counts() -> None:
    """The counts the authors' code prints for its networks ("Total number of parameters")."""
    with torch.device("meta"):
        assert _millions(UNetGenerator(3, 3, img_size=256)) == 54.414  # pix2pix unet_256
        assert _millions(PatchDiscriminator(6, 64, 3, "batchnorm")) == 2.769  # pix2pix basic D
        assert _millions(ResnetGenerator(3, 3, 64, 9, "instancenorm")) == 11.378  # resnet_9blocks
        assert _millions(PatchDiscriminator(3, 64, 3, "instancenorm")) == 2.765  # CycleGAN D


def test_unet_layout_dropout_and_bottleneck_at_256() -> None:
    with torch.device("meta"):
        g = UNetGenerator(3, 3, img_size=256)
    convs = [(m.in_channels, m.out_channels) for m in g.downs.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 64), (64, 128), (128, 256), (256, 512)] + [(512, 512)] * 4
    # Dropout in the three 512-wide decoder blocks above the innermost, nowhere else.
    dropouts = [i for i, up in enumerate(g.ups) if any(isinstance(m, nn.Dropout) for m in up)]
    assert dropouts == [4, 5, 6]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.downs[0].modules())  # no norm first
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.downs[-1].modules())  # nor at 1x1


@pytest.mark.parametrize("img_size", [16, 32, 64])
def test_unet_goes_down_to_one_pixel_and_back(img_size: int) -> None:
    g = UNetGenerator(1, 3, img_size=img_size, base_channels=4).eval()
    x = torch.rand(2, 1, img_size, img_size) * 2 - 1
    with torch.no_grad():
        y = g(x)
        bottleneck = x
        for down in g.downs:
            bottleneck = down(bottleneck)
    assert y.shape == (2, 3, img_size, img_size)
    assert y.abs().max() <= 1  # tanh
    assert bottleneck.shape[-2:] == (1, 1)


def test_unet_skips_carry_the_input_detail() -> None:
    """The outermost skip reaches the output: changing one input pixel changes the output
    mostly near that pixel (a network without skips would route it through the 1x1 code)."""
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, img_size=32, base_channels=8).eval()
    x = torch.zeros(1, 1, 32, 32)
    bumped = x.clone()
    bumped[0, 0, 5, 5] = 1.0
    with torch.no_grad():
        delta = (g(bumped) - g(x)).abs()[0, 0]
    near = delta[2:9, 2:9].sum()
    assert near > 0.5 * delta.sum()


def test_patchgan_scores_patches_with_the_stated_receptive_field() -> None:
    d = PatchDiscriminator(3, 8, num_layers=2, norm_layer="batchnorm", img_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = d(x)
        assert logits.shape == (2, 1, d.output_size(64), d.output_size(64)) == (2, 1, 14, 14)
        # Each logit sees a 34x34 window: the top-left one cannot see the bottom-right corner.
        far = x.clone()
        far[:, :, -8:, -8:] = 5.0
        changed = d(far)
    assert torch.equal(changed[:, :, 0, 0], logits[:, :, 0, 0])
    assert not torch.equal(changed[:, :, -1, -1], logits[:, :, -1, -1])


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_resnet_generator_is_fully_convolutional(size: tuple[int, int]) -> None:
    g = ResnetGenerator(3, 1, base_channels=8, num_blocks=2).eval()
    with torch.no_grad():
        y = g(torch.randn(2, 3, *size))
    assert y.shape == (2, 1, *size) and y.abs().max() <= 1


def test_pix2pix_pairs_source_and_image_for_the_discriminator() -> None:
    model = Pix2Pix(1, 3, img_size=32, base_channels=8, d_base_channels=8, d_layers=2).eval()
    source = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        out = model(source)
        assert isinstance(out, TranslationOutput)
        assert out.fake.shape == (2, 3, 32, 32)
        torch.testing.assert_close(out.fake, model.translate(source))
        torch.testing.assert_close(
            out.logits, model.discriminator(torch.cat([source, out.fake], dim=1))
        )
    assert model.discriminator.in_chans == 4  # source + target channels


def test_cyclegan_forward_is_both_translations_and_both_cycles() -> None:
    model = CycleGAN(1, 3, base_channels=4, num_blocks=1, d_base_channels=4, d_layers=2).eval()
    a, b = torch.rand(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = model(a, b)
        assert isinstance(out, CycleGANOutput)
        torch.testing.assert_close(out.fake_b, model.translate(a, "ab"))
        torch.testing.assert_close(out.fake_a, model.translate(b, "ba"))
        torch.testing.assert_close(out.rec_a, model.generator_ba(out.fake_b))
        torch.testing.assert_close(out.rec_b, model.generator_ab(out.fake_a))
        torch.testing.assert_close(out.logits_b, model.discriminator_b(out.fake_b))
    assert out.fake_b.shape == (2, 3, 16, 16) and out.rec_a.shape == (2, 1, 16, 16)
    assert model.discriminator_a.in_chans == 1 and model.discriminator_b.in_chans == 3
    with pytest.raises(ConfigError, match="'ab' or 'ba'"):
        model.translate(a, "a2b")


def test_registered_builders_and_their_kwargs() -> None:
    names = {"pix2pix", "pix2pix_unet", "patchgan_discriminator", "cyclegan", "cyclegan_generator"}
    assert names <= set(mz.list_models(family="gan"))
    assert set(mz.list_models(task="image_translation")) == names
    model = mz.create("pix2pix", in_chans=1, out_chans=1, base_channels=8, d_layers=2)
    assert model.generator.in_chans == 1 and model.discriminator.num_layers == 2
    with pytest.raises(ConfigError, match="base_chanels"):
        mz.create("cyclegan", base_chanels=8)


def test_init_follows_the_reference() -> None:
    torch.manual_seed(0)
    g = UNetGenerator(3, 3, img_size=32, base_channels=16)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert weights.mean().abs() < 0.002 and abs(weights.std().item() - 0.02) < 0.002
    norms = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(norms.mean().item() - 1.0) < 0.01


def test_bias_only_where_no_batch_norm_follows() -> None:
    bn = UNetGenerator(3, 3, img_size=32, base_channels=4, norm_layer="batchnorm")
    inst = UNetGenerator(3, 3, img_size=32, base_channels=4, norm_layer="instancenorm")
    assert bn.downs[1][1].bias is None and inst.downs[1][1].bias is not None
    assert bn.ups[0][1].bias is not None  # the output layer always has one


def test_errors_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="multiple of 2\\*\\*num_downs"):
        UNetGenerator(3, 3, img_size=48, num_downs=5)
    g = UNetGenerator(3, 3, img_size=32, base_channels=4)
    with pytest.raises(InputShapeError, match="multiples of 32"):
        g(torch.randn(1, 3, 48, 40))
    with pytest.raises(InputShapeError, match="1 channels|in_chans=1"):
        g(torch.randn(1, 1, 32, 32))
    d = PatchDiscriminator(3, 4, num_layers=3)
    with pytest.raises(InputShapeError, match="at least 24x24"):
        d(torch.randn(1, 3, 16, 16))
    with pytest.raises(InputShapeError, match="multiples of 4"):
        ResnetGenerator(3, 3, 4, 1)(torch.randn(1, 3, 18, 18))
