"""GANs: shapes per image size, the DCGAN layout and init, sampling, conditioning, errors,
and a few real adversarial steps on the 8x8 digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.gan import GANOutput

SIZES = [16, 28, 32, 64]


@pytest.mark.parametrize("img_size", SIZES)
def test_generator_and_discriminator_shapes(img_size):
    g = mz.create("dcgan_generator", img_size=img_size, in_chans=3, latent_dim=12, base_channels=4)
    d = mz.create("dcgan_discriminator", img_size=img_size, in_chans=3, base_channels=4)
    z = torch.randn(3, 12)
    with torch.no_grad():
        fake = g.eval()(z)
        assert fake.shape == (3, 3, img_size, img_size)
        assert fake.min() >= -1 and fake.max() <= 1  # tanh
        torch.testing.assert_close(g(z[:, :, None, None]), fake)  # the (B, nz, 1, 1) form
        assert d.eval()(fake).shape == (3,)


@pytest.mark.parametrize("img_size", SIZES)
def test_dcgan_and_cgan_shapes(img_size):
    gan = mz.create("dcgan", img_size=img_size, latent_dim=8, base_channels=4).eval()
    cgan = mz.create("cgan", img_size=img_size, latent_dim=8, base_channels=4, num_classes=5)
    with torch.no_grad():
        out = gan(torch.randn(2, 8))
        assert isinstance(out, GANOutput)
        assert out.fake.shape == (2, 1, img_size, img_size) and out.logits.shape == (2,)
        torch.testing.assert_close(out.logits, gan.discriminator(out.fake))
        out = cgan.eval()(torch.randn(2, 8), torch.tensor([0, 4]))
        assert out.fake.shape == (2, 1, img_size, img_size) and out.logits.shape == (2,)


def test_paper_layout_at_64_pixels():
    """With 64x64 RGB and width 64, the layers are those of Radford et al.'s figure 1."""
    gan = mz.create("dcgan", img_size=64, in_chans=3, latent_dim=100, base_channels=64)

    def convs(module, kind):
        return [
            (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
            for m in module.modules()
            if isinstance(m, kind)
        ]

    assert convs(gan.generator, nn.ConvTranspose2d) == [
        (100, 512, 4, 1),  # z -> 4x4x512
        (512, 256, 4, 2),
        (256, 128, 4, 2),
        (128, 64, 4, 2),
        (64, 3, 4, 2),
    ]
    assert convs(gan.discriminator, nn.Conv2d) == [
        (3, 64, 4, 2),
        (64, 128, 4, 2),
        (128, 256, 4, 2),
        (256, 512, 4, 2),
        (512, 1, 4, 1),
    ]
    # Batch norm everywhere but the generator's output and the discriminator's input.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gan.generator.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gan.discriminator.modules()) == 3
    assert sum(isinstance(m, nn.LeakyReLU) for m in gan.discriminator.modules()) == 4


def test_28_pixels_start_from_7x7():
    g = mz.create("dcgan_generator", img_size=28, base_channels=4)
    assert g.project(torch.randn(2, 100, 1, 1)).shape[-2:] == (7, 7)
    assert g.project[0].kernel_size == (7, 7)


def test_dcgan_init():
    torch.manual_seed(0)
    gan = mz.create("dcgan", img_size=32, base_channels=32)
    conv = torch.cat(
        [
            m.weight.flatten()
            for m in gan.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
        ]
    )
    bn = torch.cat([m.weight for m in gan.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(conv.mean().item()) < 1e-3 and abs(conv.std().item() - 0.02) < 1e-3
    assert abs(bn.mean().item() - 1) < 0.01 and abs(bn.std().item() - 0.02) < 0.01


def test_sample_is_reproducible_with_a_generator():
    gan = mz.create("dcgan", img_size=16, latent_dim=8, base_channels=4).eval()
    a = gan.sample(5, generator=torch.Generator().manual_seed(3))
    b = gan.sample(5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, 1, 16, 16) and torch.equal(a, b)
    assert not a.requires_grad
    assert not torch.equal(a, gan.sample(5, generator=torch.Generator().manual_seed(4)))


def test_cgan_labels_change_the_images_and_the_verdict():
    torch.manual_seed(0)
    cgan = mz.create("cgan", img_size=16, latent_dim=8, base_channels=4, num_classes=3).eval()
    assert cgan.generator.label_embed.num_embeddings == 3
    assert cgan.discriminator.label_embed.num_embeddings == 3
    z = torch.randn(1, 8).expand(3, 8)
    with torch.no_grad():
        images = cgan.generator(z, torch.tensor([0, 1, 2]))
        assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])
        same = images[:1].expand(3, -1, -1, -1)
        verdicts = cgan.discriminator(same, torch.tensor([0, 1, 2]))
        assert len(set(verdicts.tolist())) == 3
    # Default sample labels cycle through the classes: 0, 1, 2, 0, ...
    g = torch.Generator().manual_seed(0)
    cycled = cgan.sample(4, generator=g)
    again = cgan.sample(4, torch.tensor([0, 1, 2, 0]), torch.Generator().manual_seed(0))
    assert cycled.shape == (4, 1, 16, 16) and torch.equal(cycled, again)


@pytest.mark.parametrize("name", ["dcgan", "cgan", "dcgan_generator", "dcgan_discriminator"])
def test_builds_on_meta_device(name):
    with torch.device("meta"):
        model = mz.create(name, img_size=64, in_chans=3)
    assert all(p.is_meta for p in model.parameters())


def test_input_specs_follow_the_options():
    g = mz.create("dcgan_generator", latent_dim=7, num_classes=4)
    z, labels = mz.example_inputs(g, 3)
    assert z.shape == (3, 7) and labels.dtype == torch.long and labels.max() < 4
    assert g(z, labels).shape == (3, 1, 28, 28)
    d = mz.create("dcgan_discriminator", img_size=16, in_chans=3)
    (images,) = mz.example_inputs(d, 2)
    assert images.shape == (2, 3, 16, 16)


def test_errors_name_expected_and_actual():
    g = mz.create("dcgan_generator", base_channels=4)
    with pytest.raises(InputShapeError, match=r"latents of shape \(B, 100\).*\(2, 64\)"):
        g(torch.randn(2, 64))
    with pytest.raises(InputShapeError, match=r"float latents.*torch.int64"):
        g(torch.zeros(2, 100, dtype=torch.long))
    with pytest.raises(InputShapeError, match="unconditional and takes no labels"):
        g(torch.randn(2, 100), torch.tensor([0, 1]))
    d = mz.create("dcgan_discriminator", base_channels=4)
    with pytest.raises(InputShapeError, match=r"\(B, 1, 28, 28\).*\(2, 1, 32, 32\).*img_size=32"):
        d(torch.randn(2, 1, 32, 32))
    with pytest.raises(InputShapeError, match=r"\(B, 1, 28, 28\).*3 channels.*in_chans=3"):
        d(torch.randn(2, 3, 28, 28))
    cgan = mz.create("cgan", base_channels=4)
    z = torch.randn(2, 100)
    with pytest.raises(InputShapeError, match=r"labels in \[0, 10\); got labels in \[3, 10\]"):
        cgan(z, torch.tensor([3, 10]))
    with pytest.raises(InputShapeError, match=r"labels in \[0, 10\); got labels in \[-1, 2\]"):
        cgan(z, torch.tensor([-1, 2]))
    with pytest.raises(InputShapeError, match=r"labels of shape \(2,\).*\(3,\)"):
        cgan(z, torch.tensor([0, 1, 2]))
    with pytest.raises(InputShapeError, match="integer class labels.*labels.long"):
        cgan(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(InputShapeError, match="class-conditional: pass labels"):
        cgan.generator(z)
    for bad in (6, 31):
        with pytest.raises(ConfigError, match="even int of at least 8"):
            mz.create("dcgan", img_size=bad)
    with pytest.raises(ConfigError, match=r"img_size='28'\): expected an integer"):
        mz.create("dcgan", img_size="28")  # refused by the registry's type check
    with pytest.raises(ConfigError, match="num_classes >= 1"):
        mz.create("cgan", num_classes=0)


def test_label_value_check_is_skipped_while_exporting():
    cgan = mz.create("cgan", img_size=16, latent_dim=8, base_channels=4).eval()
    inputs = (torch.randn(2, 8), torch.tensor([1, 2]))
    exported = torch.export.export(cgan, inputs).module()
    with torch.no_grad():
        torch.testing.assert_close(exported(*inputs).fake, cgan(*inputs).fake)


def test_adversarial_steps_on_digits(one_thread):
    from sklearn.datasets import load_digits

    real_images = torch.tensor(load_digits().data, dtype=torch.float32).reshape(-1, 1, 8, 8)
    real_images = real_images / 8.0 - 1.0  # [0, 16] -> [-1, 1], the generator's range
    torch.manual_seed(0)
    gan = mz.create("dcgan", img_size=8, latent_dim=16, base_channels=8)
    gen, disc = gan.generator, gan.discriminator
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data_rng = torch.Generator().manual_seed(0)
    probe_real = real_images[:256]
    probe_z = torch.randn(256, 16, generator=torch.Generator().manual_seed(1))

    def d_accuracy() -> float:
        """How often D says real for real digits and fake for generated ones, in eval mode."""
        gan.eval()
        with torch.no_grad():
            real_ok = (disc(probe_real) > 0).float().mean()
            fake_ok = (disc(gen(probe_z)) < 0).float().mean()
        gan.train()
        return ((real_ok + fake_ok) / 2).item()

    assert d_accuracy() < 0.75  # chance, before training
    for _ in range(20):
        real = real_images[torch.randint(0, len(real_images), (64,), generator=data_rng)]
        fake = gen(torch.randn(64, 16, generator=data_rng))
        logits_real, logits_fake = disc(real), disc(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(
            logits_real, torch.ones_like(logits_real)
        ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        logits = disc(fake)  # the non-saturating generator loss
        g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert d_accuracy() > 0.9  # D separates real from fake early in training
